//! Remove leftovers of crashed fixture runs (dead owner): `cargo run -p testbed --example remove_stale`.
fn main() -> anyhow::Result<()> {
    testbed::remove_stale_runs()
}
