//! # genesys-dlq-triage
//!
//! Turns a batch of Amazon EventBridge dead-letter messages carrying Genesys Cloud events
//! into a root-cause report and byte-exact replay payloads.
//!
//! The pipeline ([`run`]) is free of AWS and HTTP types: it takes the batch
//! ([`parse_batch`], a Lambda `SqsEvent`, or messages received from SQS), an
//! [`ArtifactStore`] and a [`Correlate`] port, and returns the report plus which records may
//! be acknowledged. The Lambda ([`Handler`]) and `dlq-triage poll` run it through one triage
//! service; the CLI ([`cli`]) holds the subcommands. The library exports only what the two
//! binaries, the tests and the benchmarks use. `docs/architecture.md` walks through the
//! flow and every no-loss rule; `docs/contract.md` is the contract operators rely on.

#![deny(missing_docs)]
// An item `pub` in a private module says nothing true about who may use it: `pub(crate)`
// inside the crate, `pub` only for what this file re-exports (or a public module holds).
#![deny(unreachable_pub)]

/// mimalloc, for every binary of the crate: the pipeline allocates many small strings,
/// and glibc's allocator spent a third of the benchmark consolidating them. The
/// `system-alloc` feature turns it off, so heap profilers that hook `malloc` (heaptrack,
/// valgrind) see every allocation.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod artifacts;
mod aws_error;
mod classify;
pub mod cli;
mod config;
mod connection;
mod correlate;
mod dlq;
mod doctor;
pub mod genesys;
mod health;
mod http;
pub mod incidents;
mod lambda;
mod memory;
mod metrics;
mod notify;
mod page;
mod queue;
mod recover;
mod redrive;
mod replay;
mod report;
mod reports;
mod secrets;
mod service;
mod summarize;
mod targets;
mod text;
mod triage;

// What the two binaries, the tests, the benchmarks and the fuzz targets use; everything
// else stays inside the crate.
pub use artifacts::{
    Artifact, ArtifactStore, Layout, MemoryStore, ReportKeys, StoreError, path_style_from_env,
    s3_client,
};
pub use classify::{FailureCategory, classify};
pub use config::{LambdaConfig, lookup_from_pairs};
pub use connection::{
    AuthHeaders, AwsConnectionAuth, ConnectionAuth, ConnectionError, MemoryConnectionAuth,
    Parameter,
};
pub use correlate::{
    CacheTtl, ConversationCache, Correlate, GenesysCorrelator, InteractionInfo, LookupFailure,
    MemoryCorrelator,
};
pub use dlq::{DeadLetter, FailureContext, SystemAttributes, parse_batch};
pub use lambda::{Handler, HandlerError, Response};
pub use memory::tune_allocator;
pub use redrive::{RedriveMode, RedrivePolicy};
pub use replay::{EditError, RuleContext, TargetInput, apply as apply_input_transformation};
pub use report::{Disposition, ReplaySource};
pub use reports::ReportDigest;
pub use service::{ArtifactsAt, PortSettings, Services, TriageService, Triaged};
pub use triage::{Outcome, TriageOptions, run, run_taking_bodies};
