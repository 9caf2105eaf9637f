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

/// mimalloc, for every binary of the crate: the pipeline allocates many small strings,
/// and glibc's allocator spent a third of the benchmark consolidating them. The
/// `system-alloc` feature turns it off, so heap profilers that hook `malloc` (heaptrack,
/// valgrind) see every allocation.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the process's resident memory close to what it uses; each binary calls it first
/// thing in `main`. Measured on `analyze` of 10,000 records (docs/benchmarks.md): peak RSS
/// 86 MB → 58 MB, at no measurable cost in time.
/// - Transparent huge pages off for this process (`PR_SET_THP_DISABLE`): mimalloc asks
///   for huge pages where the kernel allows them (`madvise` mode), and a few touched bytes
///   then make 2 MiB resident.
/// - mimalloc returns freed memory to the system at once (`purge_delay` 0) instead of
///   10 ms later: a batch's bodies are freed before its report is built, and the report
///   should reuse that memory, not add to it.
pub fn tune_allocator() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    purge_freed_memory_after(0);
}

/// How long mimalloc keeps memory freed before returning it to the system, in
/// milliseconds (`tune_allocator` makes it 0). A no-op with the `system-alloc` feature.
pub(crate) fn purge_freed_memory_after(ms: i64) {
    #[cfg(not(feature = "system-alloc"))]
    // SAFETY: setting an option is allowed at any time; both arguments are plain integers.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms as std::ffi::c_long)
    };
    #[cfg(feature = "system-alloc")]
    let _ = ms;
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the same index in its v2 and v3),
/// which `libmimalloc-sys` does not name; a test checks it against the linked library.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

mod aws_error;
mod classify;
pub mod cli;
mod config;
mod correlate;
mod dlq;
pub mod genesys;
mod health;
mod http;
mod incidents;
mod lambda;
mod metrics;
mod notify;
mod page;
mod replay;
mod report;
mod secrets;
mod service;
mod source;
mod store;
mod stored;
mod summarize;
mod targets;
mod text;
mod triage;

// What the two binaries, the tests, the benchmarks and the fuzz targets use; everything
// else stays inside the crate.
pub use classify::{FailureCategory, classify};
pub use config::{LambdaConfig, lookup_from_pairs};
pub use correlate::{
    CacheTtl, ConversationCache, Correlate, GenesysCorrelator, InteractionInfo, LookupFailure,
    MemoryCorrelator,
};
pub use dlq::{DeadLetter, FailureContext, SystemAttributes, parse_batch};
pub use lambda::{Handler, HandlerError, Response};
pub use replay::{RuleContext, TargetInput, apply as apply_input_transformation};
pub use report::{Disposition, ReplaySource};
pub use store::{
    Artifact, ArtifactStore, Layout, MemoryStore, ReportKeys, StoreError, path_style_from_env,
    s3_client,
};
pub use stored::ReportDigest;
pub use triage::{Outcome, TriageOptions, run, run_taking_bodies};

#[cfg(test)]
mod tests {
    /// mimalloc reads `MIMALLOC_PURGE_DELAY` into its purge-delay option: in a child
    /// process started with that variable, the option at [`super::MI_OPTION_PURGE_DELAY`]
    /// must hold the value. Fails if the linked mimalloc numbers its options differently.
    #[test]
    fn the_purge_delay_option_number_is_mimallocs() {
        const CHILD: &str = "DLQ_TRIAGE_MI_OPTION_CHILD";
        if std::env::var_os(CHILD).is_some() {
            // SAFETY: reading an option is allowed at any time; the index is a plain integer.
            let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
            assert_eq!(
                value,
                4321,
                "option {} is not purge_delay",
                super::MI_OPTION_PURGE_DELAY
            );
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::the_purge_delay_option_number_is_mimallocs",
            ])
            .env(CHILD, "1")
            .env("MIMALLOC_PURGE_DELAY", "4321")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the child's check failed");
    }
}
