//! The root-cause report: its contract types ([`schema`]), the aggregation that builds it
//! from records ([`summary`]), and its Markdown rendering ([`markdown`]).

mod markdown;
mod schema;
mod summary;

pub use markdown::{headline, render_markdown, short_arn};
pub use schema::{
    Disposition, Incident, NO_TARGET, ReplaySource, Report, SCHEMA_VERSION, Summary, TriageRecord,
};
