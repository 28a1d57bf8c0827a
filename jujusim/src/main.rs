//! `jujusim`: the multi-call hook-tool binary (see `jujusim::tools`).

fn main() {
    std::process::exit(jujusim::tools::main_entry());
}
