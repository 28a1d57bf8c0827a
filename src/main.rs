fn main() {
    std::process::exit(lxd_integrator::dispatch::main());
}
