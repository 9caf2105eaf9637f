//! The `dlq-triage` subcommands, one module each, and the CLI's configuration. The binary
//! parses the command line and calls one of these; each returns `Err` with a one-line
//! reason, which the binary prints and turns into exit status 1.

mod analyze;
mod config;
mod doctor;
mod incidents;
mod poll;
mod recover;
mod redrive;
mod replay;
mod summarize;

use std::io::Write;

pub use analyze::{AnalyzeArgs, analyze};
pub use config::CliConfig;
use config::NO_CREDENTIALS;
pub use doctor::{DoctorArgs, doctor};
pub use incidents::{IncidentsArgs, incidents};
pub use poll::{PollArgs, poll};
pub use recover::{RecoverArgs, recover};
pub use redrive::{RedriveAction, RedriveArgs, redrive};
pub use replay::{ReplayArgs, replay_reports};
pub use summarize::{SummarizeArgs, summarize};

use crate::classify::FailureCategory;
use crate::correlate::{Connector, Correlation, MemoryCorrelator};
use crate::reports::{WhenError, Window, parse_when};

/// Why a subcommand failed: the one line the binary prints, and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailure {
    /// One line naming the problem.
    pub message: String,
    /// The exit status: 1, or [`EXIT_EMPTY_INPUT`].
    pub status: u8,
}

/// `analyze`'s exit status when its input is empty (what `aws sqs receive-message` prints
/// for an empty queue): nothing was analysed, and nothing failed.
pub const EXIT_EMPTY_INPUT: u8 = 3;

impl From<String> for CommandFailure {
    fn from(message: String) -> CommandFailure {
        CommandFailure { message, status: 1 }
    }
}

impl CommandFailure {
    /// A command's error as its one line, exit status 1.
    pub fn of(error: impl std::fmt::Display) -> CommandFailure {
        CommandFailure::from(error.to_string())
    }
}

/// How many conversations a CLI run remembers.
const CACHE_CAPACITY: usize = 100_000;

/// The correlation a CLI run uses: the Genesys API when credentials are set and
/// `--no-correlate` is not, else every conversation `skipped` with the reason.
pub(crate) fn correlation(config: &CliConfig, no_correlate: bool) -> Correlation {
    match &config.genesys {
        _ if no_correlate => Correlation::Fixed(MemoryCorrelator::skipped("--no-correlate")),
        None => Correlation::Fixed(MemoryCorrelator::skipped(NO_CREDENTIALS)),
        Some((credentials, endpoints)) => Correlation::Genesys(
            Connector::new(config.analytics.clone(), CACHE_CAPACITY)
                .connect(endpoints, credentials.clone()),
        ),
    }
}

/// The Genesys Cloud domain of `GENESYS_REGION`, which pages link conversations to.
pub(crate) fn genesys_ui_domain() -> Option<&'static str> {
    std::env::var("GENESYS_REGION")
        .ok()
        .and_then(|r| crate::genesys::domain_for(&r).ok())
}

/// A `--category`, `--since` or `--until` value that cannot be used: the line printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FlagError {
    /// `--category` names no category.
    #[error(
        "--category {value}: not a category; one of {}",
        FailureCategory::ALL.map(|k| k.as_str()).join(", ")
    )]
    NotACategory { value: String },
    /// `--since` or `--until` (`flag`) is neither a time nor a duration.
    /// (`error` is said in the line, so not its `source()` too.)
    #[error("{flag} {error}")]
    When {
        flag: &'static str,
        error: WhenError,
    },
    /// The window ends before it starts.
    #[error("--since is later than --until")]
    SinceAfterUntil,
}

/// `--category` values as categories (any letter case); for a value that is not, the
/// error names the valid ones.
pub(crate) fn categories(names: &[String]) -> Result<Vec<FailureCategory>, FlagError> {
    names
        .iter()
        .map(|c| {
            FailureCategory::ALL
                .into_iter()
                .find(|k| k.as_str().eq_ignore_ascii_case(c))
                .ok_or_else(|| FlagError::NotACategory { value: c.clone() })
        })
        .collect()
}

/// `--since` / `--until` as a window (RFC 3339, or a duration back from `now`).
pub(crate) fn window(
    since: &Option<String>,
    until: &Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Window, FlagError> {
    let when = |flag: &'static str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| parse_when(v, now).map_err(|error| FlagError::When { flag, error }))
            .transpose()
    };
    let window = Window {
        since: when("--since", since)?,
        until: when("--until", until)?,
    };
    if let (Some(since), Some(until)) = (window.since, window.until)
        && since > until
    {
        return Err(FlagError::SinceAfterUntil);
    }
    Ok(window)
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

/// The SDK configuration of a command from the environment, each call bounded: `connect`
/// to open a connection, `operation` for the whole call with the SDK's retries.
async fn bounded_sdk(
    connect: std::time::Duration,
    operation: std::time::Duration,
) -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest())
        .await
        .to_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(connect)
                .operation_timeout(operation)
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each flag error is the one line printed, naming the flag.
    #[test]
    fn a_flag_that_cannot_be_used_is_one_line_naming_it() {
        let e = categories(&["rate_limit_exceeded".into(), "nope".into()]).unwrap_err();
        assert_eq!(
            e,
            FlagError::NotACategory {
                value: "nope".into()
            }
        );
        let line = e.to_string();
        assert!(
            line.starts_with("--category nope: not a category; one of ")
                && line.contains("RATE_LIMIT_EXCEEDED, ")
                && !line.contains('\n'),
            "{line}"
        );
        let now = chrono::Utc::now();
        let e = window(&None, &Some("soon".into()), now).unwrap_err();
        assert!(matches!(
            e,
            FlagError::When {
                flag: "--until",
                ..
            }
        ));
        assert_eq!(crate::aws_error::said_twice(&e), Vec::<String>::new());
        assert_eq!(
            e.to_string(),
            "--until \"soon\" is neither an RFC 3339 time (2026-12-04T09:00:00Z) nor a duration back from now (90m, 6h, 7d)"
        );
        let e = window(&Some("1h".into()), &Some("2h".into()), now).unwrap_err();
        assert_eq!(e.to_string(), "--since is later than --until");
        assert!(window(&Some("2h".into()), &Some("1h".into()), now).is_ok());
    }
}
