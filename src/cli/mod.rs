//! The `dlq-triage` subcommands, one module each, and the CLI's configuration. The binary
//! parses the command line and calls one of these; each returns `Err` with a one-line
//! reason, which the binary prints and turns into exit status 1.

mod analyze;
mod config;
mod poll;
mod replay;

use std::io::Write;
use std::sync::Arc;

pub use analyze::{AnalyzeArgs, analyze};
pub use config::{CliConfig, NO_CREDENTIALS};
pub use poll::{PollArgs, poll};
pub use replay::{ReplayArgs, headers_from_env, replay_reports};

use crate::correlate::{
    CacheTtl, ConversationCache, Correlate, GenesysCorrelator, InteractionInfo, MemoryCorrelator,
};

/// How many conversations a CLI run remembers.
const CACHE_CAPACITY: usize = 100_000;

/// The correlation a CLI run uses: the Genesys API when credentials are set and
/// `--no-correlate` is not, else every conversation `skipped` with the reason.
pub(crate) enum CliCorrelation {
    Skipped(MemoryCorrelator),
    Genesys(GenesysCorrelator),
}

impl CliCorrelation {
    pub(crate) fn new(config: &CliConfig, no_correlate: bool) -> CliCorrelation {
        match &config.genesys {
            _ if no_correlate => {
                CliCorrelation::Skipped(MemoryCorrelator::skipped("--no-correlate"))
            }
            None => CliCorrelation::Skipped(MemoryCorrelator::skipped(NO_CREDENTIALS)),
            Some((credentials, endpoints)) => CliCorrelation::Genesys(GenesysCorrelator::connect(
                reqwest::Client::builder()
                    .user_agent(concat!("genesys-dlq-triage/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .unwrap_or_default(),
                endpoints,
                credentials.clone(),
                config.analytics.clone(),
                Arc::new(ConversationCache::new(CACHE_CAPACITY, CacheTtl::default())),
            )),
        }
    }

    /// Requests sent to Genesys Cloud, when it is used.
    pub(crate) fn calls(&self) -> Option<u64> {
        match self {
            CliCorrelation::Skipped(_) => None,
            CliCorrelation::Genesys(c) => Some(c.calls()),
        }
    }
}

impl Correlate for CliCorrelation {
    async fn correlate(
        &self,
        ids: &[String],
        budget: std::time::Duration,
    ) -> std::collections::HashMap<String, InteractionInfo> {
        match self {
            CliCorrelation::Skipped(c) => c.correlate(ids, budget).await,
            CliCorrelation::Genesys(c) => c.correlate(ids, budget).await,
        }
    }
}

/// Writes lines to standard output. A reader that went away (`| head`) is not an error:
/// the work is done and stored, so the rest of the output is dropped silently.
pub(crate) struct Stdout {
    gone: bool,
}

impl Stdout {
    pub(crate) fn new() -> Stdout {
        Stdout { gone: false }
    }

    pub(crate) fn line(&mut self, text: impl std::fmt::Display) {
        if self.gone {
            return;
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
            // Anything else (a full disk behind a redirect) is as final for a summary line.
            let _ = e;
            self.gone = true;
        }
    }
}
