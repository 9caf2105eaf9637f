//! OAuth client credentials against the Genesys Cloud login host (client-credentials grant; see `docs/contract.md`).
//!
//! `POST <login>/oauth/token` with HTTP Basic auth and `grant_type=client_credentials`.
//! The token is cached until `expires_in` minus a margin; concurrent callers wait for one
//! fetch; a 401 from the API invalidates the token it was given (once) so the caller can
//! retry with a fresh one. Neither the secret nor a token ever reaches Debug output, a log
//! line or an error message.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A string that never shows itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An OAuth client (the Genesys Cloud "client credentials" grant).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The OAuth client id (not secret, but kept out of logs anyway).
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &redact_id(&self.client_id))
            .field("client_secret", &self.client_secret)
            .finish()
    }
}

/// The first four characters of an id, enough to tell clients apart in a log.
fn redact_id(id: &str) -> String {
    let head: String = id.chars().take(4).collect();
    format!("{head}…")
}

/// A bearer token; Debug shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// The `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

/// Why a token could not be had. Messages carry the status and the OAuth error code the
/// server gave (`invalid_client`), never the secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The login host refused the client (400/401/403).
    #[error("Genesys Cloud login refused the OAuth client (HTTP {status}{}): check clientId/clientSecret and the client's grant type", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Rejected {
        /// HTTP status.
        status: u16,
        /// OAuth `error`, if the body had one.
        code: Option<String>,
    },
    /// A transient failure: 429, 5xx, timeout, connection.
    #[error("Genesys Cloud login unavailable: {0}")]
    Unavailable(String),
    /// A 200 whose body is not a token.
    #[error("Genesys Cloud login answered with a malformed token response")]
    Malformed,
}

impl AuthError {
    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthError::Unavailable(_))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// Hands out access tokens, fetching one only when needed.
pub struct TokenSource {
    http: reqwest::Client,
    token_url: Url,
    credentials: ClientCredentials,
    margin: Duration,
    cache: Mutex<Option<Cached>>,
    requests: AtomicU64,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Tokens are renewed this long before they expire (the Go SDK uses 60 s).
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(60);

/// The longest lifetime believed: Genesys Cloud issues client-credentials tokens for a day
/// at most; a larger `expires_in` (up to 2^64 - 1 seconds) must not overflow a deadline.
pub(super) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(48 * 3600);

/// The token request, connection to last byte, never takes longer than this; callers with
/// less time left give up sooner (the lock is released when they do).
pub(super) const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A token answer is a few hundred bytes; anything past this is not read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

impl TokenSource {
    /// A token source for `login_base` (e.g. `https://login.mypurecloud.ie/`).
    pub fn new(
        http: reqwest::Client,
        login_base: &Url,
        credentials: ClientCredentials,
    ) -> TokenSource {
        let token_url = login_base
            .join("oauth/token")
            .unwrap_or_else(|_| login_base.clone());
        TokenSource {
            http,
            token_url,
            credentials,
            margin: DEFAULT_MARGIN,
            cache: Mutex::new(None),
            requests: AtomicU64::new(0),
        }
    }

    /// How many token requests were sent.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// A valid token: the cached one, or a fresh one (one fetch for all concurrent callers).
    pub async fn token(&self) -> Result<AccessToken, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        // Renew a margin before expiry; for very short lifetimes, at half-life.
        let margin = self.margin.min(lifetime / 2);
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }

    /// Forgets `rejected` (the API answered 401 to it) so the next [`token`](Self::token)
    /// fetches a new one. A token already replaced by another caller is left alone.
    pub async fn invalidate(&self, rejected: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| &c.token == rejected) {
            *cache = None;
        }
    }

    async fn fetch(&self) -> Result<(AccessToken, Duration), AuthError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.credentials.client_id,
            self.credentials.client_secret.expose()
        ));
        let response = self
            .http
            .post(self.token_url.clone())
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body("grant_type=client_credentials")
            .timeout(TOKEN_REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(describe(&e)))?;
        let status = response.status().as_u16();
        let body = match read_limited(response, MAX_TOKEN_RESPONSE_BYTES).await {
            Ok(body) => body,
            Err(ReadError::TooLarge) => return Err(AuthError::Malformed),
            Err(ReadError::Transport(e)) => return Err(AuthError::Unavailable(e)),
        };
        match status {
            200 => {
                let parsed: TokenResponse =
                    serde_json::from_slice(&body).map_err(|_| AuthError::Malformed)?;
                if parsed.access_token.is_empty() {
                    return Err(AuthError::Malformed);
                }
                // A missing lifetime is treated as short, so the token is soon renewed.
                let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(300).max(1))
                    .min(MAX_TOKEN_LIFETIME);
                Ok((AccessToken(parsed.access_token.into()), lifetime))
            }
            429 | 500..=599 => Err(AuthError::Unavailable(format!("HTTP {status}"))),
            _ => Err(AuthError::Rejected {
                status,
                code: serde_json::from_slice::<OAuthError>(&body)
                    .ok()
                    .and_then(|e| e.error)
                    .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic())),
            }),
        }
    }
}

/// A transport error in words, without the URL's query or any header.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_body() || e.is_decode() {
        "response body could not be read".into()
    } else {
        "request failed".into()
    }
}

/// Why a response body was not read.
pub(crate) enum ReadError {
    /// Longer than the limit: not read further.
    TooLarge,
    /// The connection failed while reading.
    Transport(String),
}

/// Reads a response body of at most `max` bytes.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(ReadError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(ReadError::Transport(format!(
                    "Genesys Cloud response {}",
                    describe(&e)
                )));
            }
        }
    }
}
