//! # genesys-dlq-triage
//!
//! Turns a batch of Amazon EventBridge dead-letter messages carrying Genesys Cloud events
//! into a root-cause report and byte-exact replay payloads.
//!
//! The pipeline ([`triage::run`]) is free of AWS and HTTP types: it takes the batch
//! ([`dlq::parse_batch`] or a Lambda `SqsEvent`), an [`store::ArtifactStore`] and a
//! [`triage::Correlate`] port, and returns the report plus which records may be
//! acknowledged. The CLI (`dlq-triage`) and the Lambda are thin adapters around it.

#![warn(missing_docs)]

pub mod classify;
pub mod config;
pub mod correlate;
pub mod dlq;
pub mod genesys;
pub mod lambda;
pub mod metrics;
pub mod report;
pub mod secrets;
pub mod store;
pub mod triage;

pub use classify::{Classification, Evidence, FailureCategory};
pub use dlq::{BodyKind, DeadLetter, FailureContext};
pub use report::{Incident, Report, TriageRecord};
pub use store::ArtifactStore;
