//! Configuration from the environment (the names are a **contract**: `docs/contract.md`).
//!
//! Every problem is collected, so one error names every missing or invalid variable.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::genesys::AnalyticsConfig;
use crate::incidents::IncidentSettings;
use crate::redrive::{RedriveMode, RedrivePolicy};

/// A lookup over fixed `NAME=value` pairs, for tests and for callers that hold their
/// configuration in memory rather than in the process environment.
pub fn lookup_from_pairs(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Every configuration problem found, one per variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0.join("; "))
    }
}

impl std::error::Error for ConfigError {}

/// Reads variables through a lookup function, so tests need not touch the process environment.
pub struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl<'a> Env<'a> {
    /// Reads through `get`.
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Env<'a> {
        Env {
            get,
            problems: Vec::new(),
        }
    }

    /// A variable's trimmed value; empty counts as unset.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.get)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A required variable; its absence is recorded.
    pub fn required(&mut self, name: &str, what: &str) -> String {
        match self.optional(name) {
            Some(v) => v,
            None => {
                self.problems.push(format!("{name} is required ({what})"));
                String::new()
            }
        }
    }

    /// A number within `range`, or `default` when unset; a bad value is recorded.
    pub fn number<T>(&mut self, name: &str, default: T, range: std::ops::RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        match self.optional(name) {
            None => default,
            Some(raw) => match raw.parse::<T>() {
                Ok(v) if range.contains(&v) => v,
                _ => {
                    self.problems.push(format!(
                        "{name}={raw:?} must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ));
                    default
                }
            },
        }
    }

    /// Records a problem found by the caller.
    pub fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    /// `Ok` when nothing was wrong.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.problems))
        }
    }
}

/// Where to reach Genesys Cloud, from `GENESYS_REGION`, `GENESYS_API_BASE`,
/// `GENESYS_LOGIN_BASE`, and the look-up tuning knobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenesysSettings {
    /// `GENESYS_REGION`.
    pub region: Option<String>,
    /// `GENESYS_API_BASE`.
    pub api_base: Option<String>,
    /// `GENESYS_LOGIN_BASE`.
    pub login_base: Option<String>,
}

impl GenesysSettings {
    /// Reads the three location variables.
    pub fn read(env: &Env<'_>) -> GenesysSettings {
        GenesysSettings {
            region: env.optional("GENESYS_REGION"),
            api_base: env.optional("GENESYS_API_BASE"),
            login_base: env.optional("GENESYS_LOGIN_BASE"),
        }
    }
}

/// Reads `GENESYS_CHUNK_SIZE`, `GENESYS_CONCURRENCY`, `GENESYS_REQUEST_TIMEOUT_MS`.
pub(crate) fn analytics_config(env: &mut Env<'_>) -> AnalyticsConfig {
    let defaults = AnalyticsConfig::default();
    AnalyticsConfig {
        chunk_size: env.number("GENESYS_CHUNK_SIZE", defaults.chunk_size, 1..=1000),
        concurrency: env.number("GENESYS_CONCURRENCY", defaults.concurrency, 1..=64),
        request_timeout: Duration::from_millis(env.number(
            "GENESYS_REQUEST_TIMEOUT_MS",
            defaults.request_timeout.as_millis() as u64,
            100..=120_000,
        )),
        ..defaults
    }
}

/// The Lambda's configuration (every variable is listed in `docs/contract.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaConfig {
    /// `REPORT_BUCKET` (required).
    pub report_bucket: String,
    /// `REPORT_PREFIX`, default `genesys-dlq/`.
    pub report_prefix: String,
    /// `GENESYS_SECRET_ID`: without it, correlation is skipped.
    pub genesys_secret_id: Option<String>,
    /// Location overrides.
    pub genesys: GenesysSettings,
    /// Look-up tuning.
    pub analytics: AnalyticsConfig,
    /// `CORRELATION_MAX_RECEIVES`, default 3.
    pub correlation_max_receives: u32,
    /// `CORRELATION_BUDGET_MS`, default 20 000: upper bound for the Genesys look-ups.
    pub correlation_budget: Duration,
    /// `DEADLINE_MARGIN_MS`, default 3 000: no new work this close to the deadline.
    pub deadline_margin: Duration,
    /// `S3_CONCURRENCY`, default 16.
    pub s3_concurrency: usize,
    /// `SECRET_TTL_SECONDS`, default 300: how long the secret is cached.
    pub secret_ttl: Duration,
    /// `CACHE_CAPACITY`, default 10 000 conversations.
    pub cache_capacity: usize,
    /// `METRICS_NAMESPACE`, default `GenesysDlqTriage`.
    pub metrics_namespace: String,
    /// `REPLAY_ENDPOINT`: shown as every record's `replayEndpoint`.
    pub replay_endpoint: Option<String>,
    /// `SSE_KMS_KEY_ID`: encrypt with this KMS key instead of SSE-S3.
    pub sse_kms_key_id: Option<String>,
    /// `NOTIFY_EVENT_BUS`: put one event per stored report on this bus (name or ARN).
    pub notify_event_bus: Option<String>,
    /// `INCIDENT_TABLE`: keep incidents in this DynamoDB table; unset, none are kept.
    pub incident_table: Option<String>,
    /// `INCIDENT_QUIET_MINUTES`, `INCIDENT_UPDATE_MINUTES`, `INCIDENT_RETENTION_DAYS`.
    pub incidents: IncidentSettings,
    /// `REDRIVE`, `REDRIVE_CATEGORIES`, `REDRIVE_MAX_AGE_HOURS`, `REDRIVE_ATTEMPTS`,
    /// `REDRIVE_SHARE`, `REDRIVE_RATE`.
    pub redrive: RedrivePolicy,
}

impl LambdaConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<LambdaConfig, ConfigError> {
        LambdaConfig::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads through `get`; one error lists every problem.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<LambdaConfig, ConfigError> {
        let mut env = Env::new(get);
        let report_bucket = env.required(
            "REPORT_BUCKET",
            "the S3 bucket for reports and replay payloads",
        );
        if !report_bucket.is_empty() && !valid_bucket_name(&report_bucket) {
            env.problem(format!(
                "REPORT_BUCKET={report_bucket:?} is not a valid S3 bucket name"
            ));
        }
        let report_prefix = env
            .optional("REPORT_PREFIX")
            .unwrap_or_else(|| "genesys-dlq/".to_owned());
        if report_prefix.contains("..") || report_prefix.starts_with('/') {
            env.problem(format!(
                "REPORT_PREFIX={report_prefix:?} must be a relative key prefix"
            ));
        }
        let genesys = GenesysSettings::read(&env);
        if let Some(region) = &genesys.region
            && genesys.api_base.is_none()
            && let Err(e) = crate::genesys::domain_for(region)
        {
            env.problem(format!("GENESYS_REGION: {e}"));
        }
        if genesys.api_base.is_some() || genesys.login_base.is_some() {
            let probe_region = genesys.region.as_deref().or(Some("us-east-1"));
            if let Err(e) = crate::genesys::resolve_endpoints(
                probe_region,
                genesys.api_base.as_deref(),
                genesys.login_base.as_deref(),
            ) {
                env.problem(e.to_string());
            }
        }
        let config = LambdaConfig {
            report_bucket,
            report_prefix,
            genesys_secret_id: env.optional("GENESYS_SECRET_ID"),
            genesys,
            analytics: analytics_config(&mut env),
            correlation_max_receives: env.number("CORRELATION_MAX_RECEIVES", 3, 1..=1000),
            correlation_budget: Duration::from_millis(env.number(
                "CORRELATION_BUDGET_MS",
                20_000,
                0..=900_000,
            )),
            deadline_margin: Duration::from_millis(env.number(
                "DEADLINE_MARGIN_MS",
                3_000,
                0..=600_000,
            )),
            s3_concurrency: env.number("S3_CONCURRENCY", 16, 1..=256),
            secret_ttl: Duration::from_secs(env.number("SECRET_TTL_SECONDS", 300, 0..=86_400)),
            cache_capacity: env.number("CACHE_CAPACITY", 10_000, 0..=1_000_000),
            metrics_namespace: env
                .optional("METRICS_NAMESPACE")
                .unwrap_or_else(|| "GenesysDlqTriage".to_owned()),
            replay_endpoint: env.optional("REPLAY_ENDPOINT"),
            sse_kms_key_id: env.optional("SSE_KMS_KEY_ID"),
            notify_event_bus: env.optional("NOTIFY_EVENT_BUS"),
            incident_table: env.optional("INCIDENT_TABLE"),
            incidents: incident_settings(&mut env),
            redrive: redrive_policy(&mut env),
        };
        if config.redrive.mode == RedriveMode::Auto && config.incident_table.is_none() {
            env.problem("REDRIVE=auto needs INCIDENT_TABLE (the redrive's journal)".to_owned());
        }
        env.finish().map(|()| config)
    }
}

/// `INCIDENT_QUIET_MINUTES` (15), `INCIDENT_UPDATE_MINUTES` (30),
/// `INCIDENT_RETENTION_DAYS` (30): read by the Lambda and by the CLI alike.
pub(crate) fn incident_settings(env: &mut Env) -> IncidentSettings {
    IncidentSettings {
        quiet: chrono::Duration::minutes(env.number("INCIDENT_QUIET_MINUTES", 15, 1..=1440)),
        update: chrono::Duration::minutes(env.number("INCIDENT_UPDATE_MINUTES", 30, 1..=1440)),
        retention: chrono::Duration::days(env.number("INCIDENT_RETENTION_DAYS", 30, 1..=3650)),
    }
}

/// The redrive policy: `REDRIVE` (`off`|`auto`, default `off`), `REDRIVE_CATEGORIES`
/// (comma list of category names; default the categories needing no fix on our side),
/// `REDRIVE_MAX_AGE_HOURS` (24, 1–336), `REDRIVE_ATTEMPTS` (3, 1–10), `REDRIVE_SHARE`
/// (0.5, above 0 up to 1), `REDRIVE_RATE` (5 per second, above 0 up to 100).
pub(crate) fn redrive_policy(env: &mut Env) -> RedrivePolicy {
    let defaults = RedrivePolicy::default();
    let mode = match env.optional("REDRIVE").as_deref() {
        None | Some("off") => RedriveMode::Off,
        Some("auto") => RedriveMode::Auto,
        Some(other) => {
            env.problem(format!("REDRIVE={other:?} must be off or auto"));
            RedriveMode::Off
        }
    };
    let categories = match env.optional("REDRIVE_CATEGORIES") {
        None => defaults.categories.clone(),
        Some(list) => {
            let mut found = Vec::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match crate::classify::FailureCategory::ALL
                    .into_iter()
                    .find(|c| c.as_str() == name)
                {
                    Some(c) if !found.contains(&c) => found.push(c),
                    Some(_) => {}
                    None => env.problem(format!(
                        "REDRIVE_CATEGORIES: {name:?} is not a failure category (docs/contract.md §2)"
                    )),
                }
            }
            found
        }
    };
    RedrivePolicy {
        mode,
        categories,
        max_age: chrono::Duration::hours(env.number("REDRIVE_MAX_AGE_HOURS", 24, 1..=336)),
        attempts: env.number("REDRIVE_ATTEMPTS", defaults.attempts, 1..=10),
        share: fraction(env, "REDRIVE_SHARE", defaults.share, 1.0),
        rate: fraction(env, "REDRIVE_RATE", defaults.rate, 100.0),
    }
}

/// A number above 0 and at most `max`, or `default` when unset; a bad value is recorded.
fn fraction(env: &mut Env, name: &str, default: f64, max: f64) -> f64 {
    match env.optional(name) {
        None => default,
        Some(raw) => match raw.parse::<f64>() {
            Ok(v) if v > 0.0 && v <= max => v,
            _ => {
                env.problem(format!(
                    "{name}={raw:?} must be a number above 0, at most {max}"
                ));
                default
            }
        },
    }
}

/// S3's bucket naming rules, in short: 3–63 of `[a-z0-9.-]`, starting and ending alphanumeric.
fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<LambdaConfig, ConfigError> {
        LambdaConfig::from_lookup(&lookup_from_pairs(vars))
    }

    #[test]
    fn defaults_apply_with_only_the_bucket() {
        let c = config(&[("REPORT_BUCKET", "dlq-reports")]).unwrap();
        assert_eq!(c.report_prefix, "genesys-dlq/");
        assert_eq!(c.correlation_max_receives, 3);
        assert_eq!(c.genesys_secret_id, None);
        assert_eq!(c.analytics.chunk_size, 100);
    }

    #[test]
    fn one_error_names_every_problem() {
        let err = config(&[
            ("CORRELATION_MAX_RECEIVES", "zero"),
            ("GENESYS_CHUNK_SIZE", "0"),
            ("GENESYS_REGION", "mars-1"),
            ("S3_CONCURRENCY", "-1"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for name in [
            "REPORT_BUCKET is required",
            "CORRELATION_MAX_RECEIVES",
            "GENESYS_CHUNK_SIZE",
            "GENESYS_REGION",
            "S3_CONCURRENCY",
        ] {
            assert!(text.contains(name), "{name} missing from: {text}");
        }
        assert_eq!(err.0.len(), 5);
    }

    #[test]
    fn bad_bucket_names_and_http_bases_are_rejected() {
        let err = config(&[
            ("REPORT_BUCKET", "Bad_Bucket"),
            ("GENESYS_API_BASE", "http://api.example.com"),
        ])
        .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn the_redrive_is_off_by_default_with_the_categories_needing_no_fix() {
        let c = config(&[("REPORT_BUCKET", "b-1")]).unwrap();
        assert_eq!(c.redrive, RedrivePolicy::default());
        assert_eq!(c.redrive.mode, RedriveMode::Off);
        assert!(c.redrive.allows("RATE_LIMIT_EXCEEDED"));
        assert!(c.redrive.allows("ENDPOINT_UNREACHABLE"));
        assert!(c.redrive.allows("TARGET_ERROR"));
        assert!(!c.redrive.allows("PERMISSION_DENIED"));
        assert!(!c.redrive.allows("AUTHENTICATION_REJECTED"));
        assert_eq!(c.redrive.pace(Some(20)), 10.0);
        assert_eq!(c.redrive.pace(None), 5.0);
    }

    #[test]
    fn redrive_settings_are_read_and_bad_ones_named_in_one_error() {
        let c = config(&[
            ("REPORT_BUCKET", "b-1"),
            ("INCIDENT_TABLE", "t"),
            ("REDRIVE", "auto"),
            (
                "REDRIVE_CATEGORIES",
                "RATE_LIMIT_EXCEEDED, TARGET_NOT_FOUND",
            ),
            ("REDRIVE_SHARE", "0.25"),
            ("REDRIVE_ATTEMPTS", "5"),
        ])
        .unwrap();
        assert_eq!(c.redrive.mode, RedriveMode::Auto);
        assert!(c.redrive.allows("TARGET_NOT_FOUND"));
        assert!(!c.redrive.allows("TARGET_ERROR"));
        assert_eq!(c.redrive.pace(Some(40)), 10.0);
        assert_eq!(c.redrive.attempts, 5);
        let err = config(&[
            ("REPORT_BUCKET", "b-1"),
            ("REDRIVE", "on"),
            ("REDRIVE_CATEGORIES", "RATE_LIMITED"),
            ("REDRIVE_SHARE", "1.5"),
            ("REDRIVE_RATE", "0"),
            ("REDRIVE_MAX_AGE_HOURS", "0"),
        ])
        .unwrap_err();
        assert_eq!(err.0.len(), 5, "{err}");
        let err = config(&[("REPORT_BUCKET", "b-1"), ("REDRIVE", "auto")]).unwrap_err();
        assert!(err.to_string().contains("needs INCIDENT_TABLE"), "{err}");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[
            ("REPORT_BUCKET", "b-1"),
            ("GENESYS_SECRET_ID", " "),
            ("REPORT_PREFIX", ""),
        ])
        .unwrap();
        assert_eq!(c.genesys_secret_id, None);
        assert_eq!(c.report_prefix, "genesys-dlq/");
    }
}
