//! `cargo xtask <command>`: packaging tasks for the lxd-integrator charm.
//!
//! ```text
//! cargo xtask pack [--binary PATH] [--build-dir DIR]   assemble DIR/charm and zip DIR/lxd-integrator_<arch>.charm
//! cargo xtask assemble --binary PATH --dest DIR         only assemble an unpacked charm dir
//! cargo xtask list FILE.charm                           print entries with modes and link targets
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const DEFAULT_BINARY: &str = "target/x86_64-unknown-linux-musl/release/lxd-integrator";
const USAGE: &str = "usage:
  xtask pack [--binary PATH] [--build-dir DIR]
  xtask assemble --binary PATH --dest DIR
  xtask list FILE.charm";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn flag(args: &[String], name: &str) -> Result<Option<PathBuf>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args.get(i + 1).map(|v| Some(PathBuf::from(v))).ok_or_else(|| format!("{name} needs a value")),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let root = repo_root();
    match args.first().map(String::as_str) {
        Some("pack") => {
            let binary = flag(args, "--binary")?.unwrap_or_else(|| root.join(DEFAULT_BINARY));
            let build_dir = flag(args, "--build-dir")?.unwrap_or_else(|| root.join("build"));
            if !binary.is_file() {
                return Err(format!("{} not found: build it first with `make build`", binary.display()));
            }
            let out = xtask::pack(&binary, &build_dir).map_err(|e| e.to_string())?;
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            println!("packed {} ({size} bytes)", out.display());
            Ok(())
        }
        Some("assemble") => {
            let binary = flag(args, "--binary")?.ok_or("--binary is required")?;
            let dest = flag(args, "--dest")?.ok_or("--dest is required")?;
            xtask::assemble_charm_dir(&binary, &dest).map_err(|e| e.to_string())?;
            println!("assembled {}", dest.display());
            Ok(())
        }
        Some("list") => {
            let file = args.get(1).ok_or("list needs a .charm file")?;
            for e in xtask::list_charm(Path::new(file)).map_err(|e| e.to_string())? {
                match e.link_target {
                    Some(t) => println!("{:07o} {:>9} {} -> {t}", e.mode, e.size, e.name),
                    None => println!("{:07o} {:>9} {}", e.mode, e.size, e.name),
                }
            }
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
