//! The CLI's configuration from the environment: Genesys credentials and location, and the
//! look-up tuning, read like the Lambda's ([`crate::LambdaConfig`]), one error naming
//! every problem.

use crate::config::{ConfigError, Env, GenesysSettings, analytics_config, incident_settings};
use crate::genesys::{AnalyticsConfig, ClientCredentials, Endpoints, Secret, resolve_endpoints};
use crate::incidents::IncidentSettings;

/// What the CLI reads from its environment.
#[derive(Debug, Clone)]
pub struct CliConfig {
    /// `GENESYS_CLIENT_ID` and `GENESYS_CLIENT_SECRET`, with where to reach Genesys Cloud;
    /// `None` when either is unset (correlation is then skipped).
    pub genesys: Option<(ClientCredentials, Endpoints)>,
    /// `GENESYS_CHUNK_SIZE`, `GENESYS_CONCURRENCY`, `GENESYS_REQUEST_TIMEOUT_MS`.
    pub analytics: AnalyticsConfig,
    /// `NOTIFY_EVENT_BUS`: where `poll --bucket` announces each stored report, as the
    /// Lambda does.
    pub notify_event_bus: Option<String>,
    /// `INCIDENT_TABLE`: the incident table `poll` keeps and `incidents` reads.
    pub incident_table: Option<String>,
    /// `INCIDENT_QUIET_MINUTES`, `INCIDENT_UPDATE_MINUTES`, `INCIDENT_RETENTION_DAYS`.
    pub incidents: IncidentSettings,
}

/// Why correlation is skipped when credentials are absent.
pub(super) const NO_CREDENTIALS: &str =
    "no Genesys credentials (GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET unset)";

impl CliConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<CliConfig, ConfigError> {
        CliConfig::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads through `get`; one error lists every problem. The location variables
    /// (`GENESYS_REGION`, `GENESYS_API_BASE`, `GENESYS_LOGIN_BASE`) are checked only when
    /// credentials are set, as nothing else uses them.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<CliConfig, ConfigError> {
        let mut env = Env::new(get);
        let analytics = analytics_config(&mut env);
        let notify_event_bus = env.optional("NOTIFY_EVENT_BUS");
        let incident_table = env.optional("INCIDENT_TABLE");
        let incidents = incident_settings(&mut env);
        let credentials = match (
            env.optional("GENESYS_CLIENT_ID"),
            env.optional("GENESYS_CLIENT_SECRET"),
        ) {
            (Some(client_id), Some(secret)) => Some(ClientCredentials {
                client_id,
                client_secret: Secret::new(secret),
            }),
            _ => None,
        };
        let genesys = match credentials {
            Some(credentials) => {
                let settings = GenesysSettings::read(&env);
                match resolve_endpoints(
                    settings.region.as_deref(),
                    settings.api_base.as_deref(),
                    settings.login_base.as_deref(),
                ) {
                    Ok(endpoints) => Some((credentials, endpoints)),
                    Err(e) => {
                        env.problem(e.to_string());
                        None
                    }
                }
            }
            None => None,
        };
        env.finish().map(|()| CliConfig {
            genesys,
            analytics,
            notify_event_bus,
            incident_table,
            incidents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_from_pairs;

    fn config(vars: &[(&str, &str)]) -> Result<CliConfig, ConfigError> {
        CliConfig::from_lookup(&lookup_from_pairs(vars))
    }

    #[test]
    fn without_credentials_there_is_nothing_to_correlate_with() {
        let c = config(&[("GENESYS_CLIENT_ID", "only-the-id")]).unwrap();
        assert!(c.genesys.is_none());
    }

    #[test]
    fn credentials_resolve_their_region() {
        let c = config(&[
            ("GENESYS_CLIENT_ID", "id"),
            ("GENESYS_CLIENT_SECRET", "s"),
            ("GENESYS_REGION", "eu-west-1"),
        ])
        .unwrap();
        let (_, endpoints) = c.genesys.unwrap();
        assert!(
            endpoints.api_base.as_str().contains("mypurecloud.ie"),
            "{endpoints:?}"
        );
    }

    #[test]
    fn one_error_names_every_problem_and_never_the_secret() {
        let err = config(&[
            ("GENESYS_CLIENT_ID", "id"),
            ("GENESYS_CLIENT_SECRET", "very-secret-value"),
            ("GENESYS_API_BASE", "http://api.example.com"),
            ("GENESYS_CHUNK_SIZE", "0"),
        ])
        .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(!err.to_string().contains("very-secret-value"));
    }
}
