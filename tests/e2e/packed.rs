//! TODO
use crate::bed::Bed;

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    let _: Option<fn(&mut Bed) -> anyhow::Result<()>> = None;
    vec![]
}
