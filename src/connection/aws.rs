//! [`AwsConnectionAuth`]: `DescribeConnection`, then `GetSecretValue` of the connection's
//! `events!connection/…` secret, then (OAuth) the token from the authorization endpoint;
//! cached per connection ARN.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_eventbridge::operation::describe_connection::DescribeConnectionOutput;
use aws_sdk_eventbridge::types::ConnectionHttpParameters;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;
use tokio::time::Instant;

use super::secret::{self, HttpParams, Known, Parsed, TokenRequest};
use super::{AuthHeaders, ConnectionAuth, ConnectionError, Parameter, lock};
use crate::aws_error;
use crate::genesys::redact_url;

/// How long an answer is kept (an OAuth token's own `expires_in` shortens it).
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Each call's own timeout (within the caller's deadline).
pub(crate) const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A token is dropped this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);

/// Reads connections and their secrets through the AWS SDK; caches each connection's
/// answer for a TTL. Errors are not cached.
pub struct AwsConnectionAuth {
    sdk: aws_config::SdkConfig,
    http: reqwest::Client,
    ttl: Duration,
    call_timeout: Duration,
    cache: Mutex<HashMap<String, (AuthHeaders, Instant)>>,
    /// One read at a time, so concurrent deliveries to one connection read it once.
    reading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AwsConnectionAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsConnectionAuth")
            .field("ttl", &self.ttl)
            .field("call_timeout", &self.call_timeout)
            .field("cached", &lock(&self.cache).keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl AwsConnectionAuth {
    /// Reads through `sdk` (the region of each call is the connection's and the secret's
    /// own, from their ARNs), answers kept 5 minutes, each call given 10 seconds.
    pub fn new(sdk: aws_config::SdkConfig) -> AwsConnectionAuth {
        AwsConnectionAuth {
            sdk,
            http: crate::http::client(),
            ttl: DEFAULT_TTL,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            cache: Mutex::new(HashMap::new()),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// The same with another TTL and per-call timeout.
    pub fn with_limits(mut self, ttl: Duration, call_timeout: Duration) -> AwsConnectionAuth {
        self.ttl = ttl;
        self.call_timeout = call_timeout;
        self
    }

    fn cached(&self, arn: &str) -> Option<AuthHeaders> {
        let cache = lock(&self.cache);
        let (auth, until) = cache.get(arn)?;
        (Instant::now() < *until).then(|| auth.clone())
    }

    async fn read(&self, arn: &str, deadline: Instant) -> Result<AuthHeaders, ConnectionError> {
        let (name, region) = name_and_region(arn)?;
        let described = self.describe(arn, name, region, deadline).await?;
        let state = described
            .connection_state()
            .map_or("UNKNOWN", |s| s.as_str());
        if state != "AUTHORIZED" {
            return Err(ConnectionError::NotAuthorized {
                connection: arn.to_owned(),
                state: state.to_owned(),
                reason: described.state_reason().map(str::to_owned),
            });
        }
        let kind = described
            .authorization_type()
            .map(|t| t.as_str().to_owned())
            .ok_or_else(|| invalid(arn, "DescribeConnection gives no AuthorizationType"))?;
        let secret_arn = described
            .secret_arn()
            .ok_or_else(|| invalid(arn, "DescribeConnection gives no SecretArn"))?;
        let text = self.secret_text(arn, secret_arn, deadline).await?;
        let parsed = secret::parse(&kind, &text, &known(&described))
            .map_err(|e| invalid(arn, &e.to_string()))?;
        let (auth, lifetime) = match parsed {
            Parsed::Ready(auth) => (auth, self.ttl),
            Parsed::OAuth { request, mut base } => {
                let (token, expires) = self.token(arn, &request, deadline).await?;
                let mut headers = vec![Parameter::new("Authorization", format!("Bearer {token}"))];
                headers.extend(
                    base.headers
                        .drain(..)
                        .filter(|p| !p.name.eq_ignore_ascii_case("authorization")),
                );
                base.headers = headers;
                let lifetime = expires.map_or(self.ttl, token_lifetime);
                (base, lifetime.min(self.ttl))
            }
        };
        lock(&self.cache).insert(arn.to_owned(), (auth.clone(), Instant::now() + lifetime));
        Ok(auth)
    }

    async fn describe(
        &self,
        arn: &str,
        name: &str,
        region: &str,
        deadline: Instant,
    ) -> Result<DescribeConnectionOutput, ConnectionError> {
        let mut config = aws_sdk_eventbridge::config::Builder::from(&self.sdk);
        if !region.is_empty() {
            config = config.region(aws_config::Region::new(region.to_owned()));
        }
        let call = aws_sdk_eventbridge::Client::from_conf(config.build())
            .describe_connection()
            .name(name)
            .send();
        self.bounded(arn, "DescribeConnection", deadline, call)
            .await?
            .map_err(|e| aws(arn, "DescribeConnection", &e))
    }

    async fn secret_text(
        &self,
        arn: &str,
        secret_arn: &str,
        deadline: Instant,
    ) -> Result<String, ConnectionError> {
        let mut config = aws_sdk_secretsmanager::config::Builder::from(&self.sdk);
        if let Some(region) = secret_arn.split(':').nth(3).filter(|r| !r.is_empty()) {
            config = config.region(aws_config::Region::new(region.to_owned()));
        }
        let call = aws_sdk_secretsmanager::Client::from_conf(config.build())
            .get_secret_value()
            .secret_id(secret_arn)
            .send();
        let out = self
            .bounded(arn, "GetSecretValue", deadline, call)
            .await?
            .map_err(|e| aws(arn, "GetSecretValue", &e))?;
        out.secret_string()
            .map(str::to_owned)
            .ok_or_else(|| invalid(arn, "its secret holds no SecretString"))
    }

    /// The token and its lifetime (`expires_in`), from the authorization endpoint.
    async fn token(
        &self,
        arn: &str,
        request: &TokenRequest,
        deadline: Instant,
    ) -> Result<(String, Option<Duration>), ConnectionError> {
        let fail = |message: String| ConnectionError::Token {
            connection: arn.to_owned(),
            endpoint: redact_url(&request.endpoint),
            message,
        };
        let builder = token_request(&self.http, request).map_err(|e| fail(e.to_string()))?;
        let answer = self
            .bounded(arn, "the OAuth token request", deadline, async move {
                let response = builder
                    .send()
                    .await
                    .map_err(|e| e.without_url().to_string())?;
                let status = response.status();
                if !status.is_success() {
                    return Err(format!("HTTP {status}"));
                }
                response
                    .json::<serde_json::Value>()
                    .await
                    .map_err(|_| "the answer is not JSON".to_owned())
            })
            .await?
            .map_err(&fail)?;
        let token = answer["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("the answer has no access_token".to_owned()))?;
        let expires = answer["expires_in"]
            .as_f64()
            .or_else(|| answer["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0 * 365.0)));
        Ok((token.to_owned(), expires))
    }

    /// `call`, given the per-call timeout or what is left of `deadline`, the shorter.
    async fn bounded<T>(
        &self,
        arn: &str,
        operation: &'static str,
        deadline: Instant,
        call: impl std::future::Future<Output = T>,
    ) -> Result<T, ConnectionError> {
        let until = deadline.min(Instant::now() + self.call_timeout);
        let given = until.saturating_duration_since(Instant::now());
        tokio::time::timeout_at(until, call)
            .await
            .map_err(|_| ConnectionError::Timeout {
                connection: arn.to_owned(),
                operation,
                given,
            })
    }
}

impl ConnectionAuth for AwsConnectionAuth {
    fn headers<'a>(
        &'a self,
        connection_arn: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<AuthHeaders, ConnectionError>> {
        Box::pin(async move {
            if let Some(hit) = self.cached(connection_arn) {
                return Ok(hit);
            }
            // Waiting for another read counts against this caller's deadline too.
            let given = deadline.saturating_duration_since(Instant::now());
            let _one = tokio::time::timeout_at(deadline, self.reading.lock())
                .await
                .map_err(|_| ConnectionError::Timeout {
                    connection: connection_arn.to_owned(),
                    operation: "waiting for another read of a connection",
                    given,
                })?;
            if let Some(hit) = self.cached(connection_arn) {
                return Ok(hit);
            }
            self.read(connection_arn, deadline).await
        })
    }

    fn invalidate(&self, connection_arn: &str) {
        lock(&self.cache).remove(connection_arn);
    }
}

/// Why the token request cannot be made from the connection's OAuth parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum TokenRequestError {
    /// The connection's HTTP method is not one.
    #[error("HTTP method {0} is not valid")]
    Method(String),
    /// The authorization endpoint is not a URL (the parser's reason).
    #[error("the authorization endpoint is not a URL ({0})")]
    Endpoint(String),
}

/// The client-credentials request: the client id and secret as HTTP Basic
/// authentication (RFC 6749 §2.3.1), `grant_type=client_credentials` unless the
/// connection's body parameters set it, and the connection's OAuth header, query-string
/// and body parameters (in the query string for a GET).
fn token_request(
    http: &reqwest::Client,
    request: &TokenRequest,
) -> Result<reqwest::RequestBuilder, TokenRequestError> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| TokenRequestError::Method(request.method.clone()))?;
    let mut url = reqwest::Url::parse(&request.endpoint)
        .map_err(|e| TokenRequestError::Endpoint(e.to_string()))?;
    let HttpParams {
        headers,
        query,
        body,
    } = &request.params;
    let mut form: Vec<(String, String)> = body
        .iter()
        .map(|p| (p.name.clone(), p.value.expose().to_owned()))
        .collect();
    if !form.iter().any(|(k, _)| k == "grant_type") {
        form.insert(0, ("grant_type".into(), "client_credentials".into()));
    }
    {
        let mut pairs = url.query_pairs_mut();
        for p in query {
            pairs.append_pair(&p.name, p.value.expose());
        }
        if method == reqwest::Method::GET {
            pairs.extend_pairs(&form);
        }
    }
    let mut builder = http
        .request(method.clone(), url)
        .header(
            "Authorization",
            secret::basic(&request.client_id, request.client_secret.expose()),
        )
        .header("Accept", "application/json");
    for p in headers {
        builder = builder.header(p.name.as_str(), p.value.expose());
    }
    if method != reqwest::Method::GET {
        let encoded = reqwest::Url::parse_with_params("http://x/", &form)
            .map(|u| u.query().unwrap_or_default().to_owned())
            .unwrap_or_default();
        builder = builder
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encoded);
    }
    Ok(builder)
}

/// How long a token that lives `expires` is kept: until `TOKEN_MARGIN` before it
/// expires, or half its life when that is shorter (a token of 30 s or less is not fetched
/// again for every request).
fn token_lifetime(expires: Duration) -> Duration {
    expires.saturating_sub(TOKEN_MARGIN).max(expires / 2)
}

/// `arn:aws:events:REGION:ACCOUNT:connection/NAME/ID` → (NAME, REGION).
fn name_and_region(arn: &str) -> Result<(&str, &str), ConnectionError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "events", region, _, resource] => resource
            .strip_prefix("connection/")
            .and_then(|r| r.split('/').next())
            .filter(|n| !n.is_empty())
            .map(|name| (name, *region)),
        _ => None,
    }
    .ok_or_else(|| invalid(arn, "is not an EventBridge connection ARN (arn:aws:events:REGION:ACCOUNT:connection/NAME/ID)"))
}

fn invalid(arn: &str, message: &str) -> ConnectionError {
    ConnectionError::Invalid {
        connection: arn.to_owned(),
        message: message.to_owned(),
    }
}

fn aws<E>(arn: &str, operation: &'static str, e: &SdkError<E, HttpResponse>) -> ConnectionError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    ConnectionError::Aws {
        connection: arn.to_owned(),
        operation,
        message: aws_error::describe(operation, e),
        transient: aws_error::transient(e),
    }
}

/// What `DescribeConnection` shows (non-secret values; secret ones it leaves out).
fn known(d: &DescribeConnectionOutput) -> Known {
    let auth = d.auth_parameters();
    let oauth = auth.and_then(|a| a.o_auth_parameters());
    Known {
        api_key_name: auth
            .and_then(|a| a.api_key_auth_parameters())
            .and_then(|k| k.api_key_name())
            .map(str::to_owned),
        username: auth
            .and_then(|a| a.basic_auth_parameters())
            .and_then(|b| b.username())
            .map(str::to_owned),
        oauth_endpoint: oauth
            .and_then(|o| o.authorization_endpoint())
            .map(str::to_owned),
        oauth_method: oauth
            .and_then(|o| o.http_method())
            .map(|m| m.as_str().to_owned()),
        client_id: oauth
            .and_then(|o| o.client_parameters())
            .and_then(|c| c.client_id())
            .map(str::to_owned),
        oauth_params: http_params(oauth.and_then(|o| o.o_auth_http_parameters())),
        invocation: http_params(auth.and_then(|a| a.invocation_http_parameters())),
    }
}

/// The parameters `DescribeConnection` shows with a value (secret ones come without).
fn http_params(p: Option<&ConnectionHttpParameters>) -> HttpParams {
    let Some(p) = p else {
        return HttpParams::default();
    };
    let pick = |k: Option<&str>, v: Option<&str>| Some(Parameter::new(k?, v?));
    HttpParams {
        headers: p
            .header_parameters()
            .iter()
            .filter_map(|h| pick(h.key(), h.value()))
            .collect(),
        query: p
            .query_string_parameters()
            .iter()
            .filter_map(|h| pick(h.key(), h.value()))
            .collect(),
        body: p
            .body_parameters()
            .iter()
            .filter_map(|h| pick(h.key(), h.value()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_until_shortly_before_it_expires_and_a_short_one_half_its_life() {
        assert_eq!(
            token_lifetime(Duration::from_secs(3600)),
            Duration::from_secs(3570)
        );
        assert_eq!(
            token_lifetime(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn a_connection_arn_gives_its_name_and_region() {
        assert_eq!(
            name_and_region("arn:aws:events:eu-west-1:123456789012:connection/crm/0d3c").unwrap(),
            ("crm", "eu-west-1")
        );
        for bad in [
            "crm",
            "arn:aws:events:eu-west-1:1:api-destination/crm/x",
            "arn:aws:events:r:1:connection/",
        ] {
            let err = name_and_region(bad).unwrap_err();
            assert!(err.to_string().contains("connection ARN"), "{err}");
        }
    }
}
