fn main() {
    map_large_blocks_on_their_own();
    std::process::exit(lxd_integrator::dispatch::main());
}

/// The shipped binary is static musl, whose malloc maps every large block on its own and
/// unmaps it when freed, so a pass holds only what it uses: 7.6 MiB reading 100 databags of
/// 1 MiB (`tests/e2e/volume.rs` v3). glibc's malloc instead raises its mmap threshold to the
/// largest block freed so far; after the first 1 MiB databag, every later one comes from the
/// arena of the thread reading it and stays there once freed, one arena per reading thread:
/// 21 MiB for the same reads in a glibc build (the tests'). Pinning the threshold at its
/// default keeps any build's memory what the charm uses.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn map_large_blocks_on_their_own() {
    /// `M_MMAP_THRESHOLD` in glibc's `malloc.h`; setting it turns the dynamic threshold off.
    const M_MMAP_THRESHOLD: i32 = -3;
    /// glibc's default threshold.
    const LARGE: i32 = 128 * 1024;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only sets one of malloc's parameters, before any other thread exists.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, LARGE);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn map_large_blocks_on_their_own() {}
