fn main() {
    lxd_integrator::timeline::mark("main");
    let code = lxd_integrator::dispatch::main();
    lxd_integrator::timeline::mark("exit");
    std::process::exit(code);
}
