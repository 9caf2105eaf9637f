//! The Genesys OAuth client from AWS Secrets Manager, read once per container and cached
//! with a TTL so that a rotated secret is picked up.
//!
//! The secret is JSON: `{"clientId", "clientSecret", "region"?, "apiBase"?, "loginBase"?}`.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::genesys::{ClientCredentials, Secret};

/// The parsed secret. Debug never shows the client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesysSecret {
    /// The OAuth client.
    pub credentials: ClientCredentials,
    /// `region`: a Genesys domain or AWS region name.
    pub region: Option<String>,
    /// `apiBase`.
    pub api_base: Option<String>,
    /// `loginBase`.
    pub login_base: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSecret {
    client_id: Option<String>,
    client_secret: Option<String>,
    region: Option<String>,
    api_base: Option<String>,
    login_base: Option<String>,
}

/// Why the secret could not be used. Messages never contain the secret's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Genesys secret {secret_id}: {message}")]
pub struct SecretError {
    /// Which secret.
    pub secret_id: String,
    /// What is wrong, and what to do.
    pub message: String,
    /// Whether a later attempt may succeed (throttling, network), as opposed to a
    /// configuration problem (missing secret, bad JSON, no permission).
    pub transient: bool,
}

/// Why a secret's text is not a Genesys secret: where the JSON broke or which fields are
/// missing, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretParseError {
    /// Not a JSON object of the documented shape.
    #[error(
        "is not a JSON object like {{\"clientId\": \"…\", \"clientSecret\": \"…\", \"region\": \"mypurecloud.ie\"}} (error at line {line}, column {column})"
    )]
    NotJsonObject {
        /// Where the parser stopped.
        line: usize,
        column: usize,
    },
    /// Required fields absent or blank, by name.
    #[error("lacks {}", .0.join(" and "))]
    Lacks(Vec<&'static str>),
}

impl GenesysSecret {
    /// Parses the secret string; the error says which fields are wrong, never their values.
    pub fn parse(text: &str) -> Result<GenesysSecret, SecretParseError> {
        let raw: RawSecret =
            serde_json::from_str(text).map_err(|e| SecretParseError::NotJsonObject {
                line: e.line(),
                column: e.column(),
            })?;
        let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let (client_id, client_secret) = (nonempty(raw.client_id), nonempty(raw.client_secret));
        let missing: Vec<&'static str> = [
            ("clientId", client_id.is_none()),
            ("clientSecret", client_secret.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        if !missing.is_empty() {
            return Err(SecretParseError::Lacks(missing));
        }
        Ok(GenesysSecret {
            credentials: ClientCredentials {
                client_id: client_id.unwrap_or_default(),
                client_secret: Secret::new(client_secret.unwrap_or_default()),
            },
            region: nonempty(raw.region),
            api_base: nonempty(raw.api_base),
            login_base: nonempty(raw.login_base),
        })
    }
}

/// Where the Genesys secret comes from: the port the Lambda reads it through.
pub trait SecretSource: Send + Sync {
    /// The current secret.
    fn secret(&self) -> BoxFuture<'_, Result<Arc<GenesysSecret>, SecretError>>;

    /// Reads of the secret's store so far (for the cost checks); a fixed secret makes none.
    fn reads(&self) -> u64 {
        0
    }
}

/// The in-memory twin: one fixed answer.
#[cfg(test)]
impl SecretSource for Result<GenesysSecret, SecretError> {
    fn secret(&self) -> BoxFuture<'_, Result<Arc<GenesysSecret>, SecretError>> {
        Box::pin(std::future::ready(self.clone().map(Arc::new)))
    }
}

/// Reads the secret at most once per TTL.
#[derive(Debug)]
pub(crate) struct SecretCache {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    ttl: Duration,
    cached: Mutex<Option<(Arc<GenesysSecret>, Instant)>>,
    reads: std::sync::atomic::AtomicU64,
}

impl SecretCache {
    /// A cache of `secret_id` (name or ARN), refreshed after `ttl`.
    pub(crate) fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
        ttl: Duration,
    ) -> SecretCache {
        SecretCache {
            client,
            secret_id: secret_id.into(),
            ttl,
            cached: Mutex::new(None),
            reads: Default::default(),
        }
    }
}

impl SecretSource for SecretCache {
    /// The secret: cached while fresh, else read again. Failures are not cached.
    fn secret(&self) -> BoxFuture<'_, Result<Arc<GenesysSecret>, SecretError>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            if let Some((secret, read_at)) = cached.as_ref()
                && read_at.elapsed() < self.ttl
            {
                return Ok(secret.clone());
            }
            let secret = Arc::new(self.read().await?);
            *cached = Some((secret.clone(), Instant::now()));
            Ok(secret)
        })
    }

    /// How many times Secrets Manager was called.
    fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl SecretCache {
    async fn read(&self) -> Result<GenesysSecret, SecretError> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fail = |message: String, transient: bool| SecretError {
            secret_id: self.secret_id.clone(),
            message,
            transient,
        };
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                let code = match e.code() {
                    Some(code) => code.to_owned(),
                    None => crate::aws_error::describe("GetSecretValue", &e),
                };
                let advice = match code.as_str() {
                    "ResourceNotFoundException" => {
                        "the secret does not exist; check GENESYS_SECRET_ID"
                    }
                    "AccessDeniedException" => {
                        "the function's role lacks secretsmanager:GetSecretValue on it"
                    }
                    _ => "could not be read",
                };
                fail(
                    format!("{advice} ({code})"),
                    crate::aws_error::transient(&e),
                )
            })?;
        let text = output.secret_string().ok_or_else(|| {
            fail(
                "has no SecretString (binary secrets are not supported)".into(),
                false,
            )
        })?;
        GenesysSecret::parse(text).map_err(|e| fail(e.to_string(), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let s = GenesysSecret::parse(
            r#"{"clientId":"id-1","clientSecret":"shh","region":"eu-west-1"}"#,
        )
        .unwrap();
        assert_eq!(s.credentials.client_id, "id-1");
        assert_eq!(s.credentials.client_secret.expose(), "shh");
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert!(!format!("{s:?}").contains("shh"));
    }

    #[test]
    fn errors_name_fields_not_values() {
        let err = GenesysSecret::parse(r#"{"clientId":"","clientSecret":null}"#).unwrap_err();
        assert_eq!(
            err,
            SecretParseError::Lacks(vec!["clientId", "clientSecret"])
        );
        assert_eq!(err.to_string(), "lacks clientId and clientSecret");
        let err = GenesysSecret::parse("clientSecret=hunter2").unwrap_err();
        assert!(matches!(
            err,
            SecretParseError::NotJsonObject { line: 1, .. }
        ));
        let err = err.to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("not a JSON object"), "{err}");
    }
}
