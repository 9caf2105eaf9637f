//! The sentences `report.md`, `summary.md` and the pages say alike, written once; each
//! document escapes them its own way.

use super::{NO_TARGET, short_arn};

/// The label of an incident's failures that came from an archive replay.
pub(crate) const REPLAY_FAILED_AGAIN: &str = "A replay failed again";
/// What a replay's failure means, after the replays are named.
pub(crate) const NOT_A_NEW_FAILURE: &str =
    "not a new failure; the first failure's cause is not fixed yet";

/// A target as people name it: the short form of its ARN, or the no-target label.
pub(crate) fn target(arn: Option<&str>) -> String {
    arn.map(short_arn).unwrap_or_else(|| NO_TARGET.into())
}

/// An error code with how many failures gave it (`THROTTLING ×3`).
pub(crate) fn times(code: &str, n: usize) -> String {
    format!("{code} ×{n}")
}
