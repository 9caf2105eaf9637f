//! # genesys-dlq-triage
//!
//! Turns a batch of Amazon EventBridge dead-letter messages carrying Genesys Cloud events
//! into a root-cause report and byte-exact replay payloads.
//!
//! The pipeline ([`run`]) is free of AWS and HTTP types: it takes the batch
//! ([`parse_batch`], a Lambda `SqsEvent`, or messages received from SQS), an
//! [`ArtifactStore`] and a [`Correlate`] port, and returns the report plus which records may
//! be acknowledged. The Lambda ([`Handler`]) and the CLI ([`cli`]) are thin adapters around
//! it. `docs/architecture.md` walks through the flow and every no-loss rule;
//! `docs/contract.md` is the contract operators rely on.

#![deny(missing_docs)]

/// mimalloc, for every binary of the crate: the pipeline allocates many small strings,
/// and glibc's allocator spent a third of the benchmark consolidating them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod classify;
pub mod cli;
mod config;
mod correlate;
mod dlq;
pub mod genesys;
mod lambda;
mod metrics;
pub mod replay;
mod report;
mod secrets;
pub mod source;
mod store;
mod triage;

pub use classify::{
    Classification, ERROR_CODES, Evidence, FailureCategory, GENERIC_ERROR_CODES, KEYWORDS, Rule,
    category_for_status, classify, find_http_status,
};
pub use config::{
    ConfigError, Env, GenesysSettings, LambdaConfig, analytics_config, lookup_from_pairs,
};
pub use correlate::{
    CacheTtl, ConversationCache, ConversationSummary, Correlate, GenesysCorrelator,
    InteractionInfo, LookupFailure, MemoryCorrelator,
};
pub use dlq::{
    BatchError as InputError, BodyKind, DeadLetter, EventEnvelope, FailureContext,
    SystemAttributes, attr, parse_batch, parse_batch_from_reader,
};
pub use lambda::{Handler, HandlerError, deadline_instant, to_dead_letter};
pub use metrics::InvocationMetrics;
pub use report::{
    Disposition, Incident, NO_TARGET, ReplaySource, Report, SCHEMA_VERSION, Summary, TriageRecord,
    headline, render_markdown, short_arn,
};
pub use secrets::{GenesysSecret, SecretCache, SecretError};
pub use store::{
    Artifact, ArtifactStore, FsStore, Layout, MemoryStore, S3Store, StoreError,
    path_style_from_env, s3_client, safe_file_stem,
};
pub use triage::{
    Analysis, BatchError, Outcome, TriageOptions, UnnamedRecords, report_id, run, run_owned,
};
