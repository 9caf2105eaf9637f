//! An API destination's authorization, from its own EventBridge connection: the headers
//! (and query-string parameters) EventBridge adds to each request, so a replay or a
//! redrive reaches the endpoint as EventBridge did, without the operator handing the
//! credentials over.
//!
//! The port is [`ConnectionAuth`]; [`AwsConnectionAuth`] reads the connection
//! (`DescribeConnection`) and its secret (`GetSecretValue` on the `events!connection/…`
//! secret EventBridge keeps), fetches an OAuth token when the connection says so, and
//! caches the answer per connection for a TTL; [`MemoryConnectionAuth`] is the in-memory
//! twin. Values are [`Secret`]s: no `Debug`, `Display` or error ever shows one.

mod aws;
mod secret;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use futures::future::BoxFuture;
use tokio::time::Instant;

pub use aws::AwsConnectionAuth;

use crate::genesys::Secret;

/// Why a connection's authorization could not be had. Messages name the connection, the
/// call and the fields concerned, never a value of the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The connection is not `AUTHORIZED` (e.g. `DEAUTHORIZED` after the endpoint's 401).
    #[error(
        "connection {connection} is {state}, not AUTHORIZED{}: fix its credentials (EventBridge console, or UpdateConnection) before replaying to it",
        reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    NotAuthorized {
        /// The connection's ARN.
        connection: String,
        /// `ConnectionState`.
        state: String,
        /// `StateReason`, if EventBridge gave one.
        reason: Option<String>,
    },
    /// An AWS call failed (permissions, throttling, a missing connection or secret).
    #[error("connection {connection}: {operation}: {message}")]
    Aws {
        /// The connection's ARN.
        connection: String,
        /// `DescribeConnection` or `GetSecretValue`.
        operation: &'static str,
        /// The SDK's error, as one line.
        message: String,
        /// Whether a later attempt may succeed (no answer, throttling, a 5xx).
        transient: bool,
    },
    /// A call did not answer within its timeout (or the caller's deadline).
    #[error("connection {connection}: {operation} did not answer within {} ms", given.as_millis())]
    Timeout {
        /// The connection's ARN.
        connection: String,
        /// The call.
        operation: &'static str,
        /// The time it was given.
        given: std::time::Duration,
    },
    /// The connection or its secret lacks what its authorization type needs.
    #[error("connection {connection}: {message}")]
    Invalid {
        /// The connection's ARN (or the text given as one).
        connection: String,
        /// What is missing or wrong (field names, never values).
        message: String,
    },
    /// The OAuth authorization endpoint gave no token.
    #[error("connection {connection}: the OAuth token request to {endpoint} failed: {message}")]
    Token {
        /// The connection's ARN.
        connection: String,
        /// The authorization endpoint, without its query string.
        endpoint: String,
        /// The status or transport error (never the response body, which may echo the
        /// client secret).
        message: String,
    },
}

impl ConnectionError {
    /// Whether a later attempt may succeed (a timeout, throttling, a token endpoint's 5xx),
    /// as opposed to a state or configuration a person must fix.
    pub fn transient(&self) -> bool {
        match self {
            ConnectionError::Timeout { .. } | ConnectionError::Token { .. } => true,
            ConnectionError::Aws { transient, .. } => *transient,
            // A connection on its way to AUTHORIZED (created, updated or being authorized
            // now) may be ready at the next attempt; DEAUTHORIZED and the rest wait for a
            // person.
            ConnectionError::NotAuthorized { state, .. } => {
                matches!(state.as_str(), "CREATING" | "UPDATING" | "AUTHORIZING")
            }
            ConnectionError::Invalid { .. } => false,
        }
    }
}

/// One header or query-string parameter: the name in clear, the value a [`Secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct Parameter {
    /// The header or parameter name.
    pub name: String,
    /// Its value, shown nowhere.
    pub value: Secret,
}

impl Parameter {
    /// A parameter.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Parameter {
        Parameter {
            name: name.into(),
            value: Secret::new(value),
        }
    }
}

impl fmt::Debug for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ***", self.name)
    }
}

/// What EventBridge adds to an API destination's requests from its connection: headers
/// (the API key, `Authorization: Basic …` or `Bearer …`, the connection's header
/// parameters), query-string parameters, and body parameters. `Debug` and `Display`
/// name the parameters, never their values.
///
/// Body parameters are kept for the record, and not added by `replay --to-target`: the
/// replayed body is the stored event (transformed as the target says), byte for byte.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthHeaders {
    /// Headers, in the order EventBridge's sources give them.
    pub headers: Vec<Parameter>,
    /// Query-string parameters.
    pub query: Vec<Parameter>,
    /// Body parameters of the connection's `InvocationHttpParameters`.
    pub body: Vec<Parameter>,
}

impl AuthHeaders {
    /// The headers as `replay::plan::to_target` takes them (values in clear: for the
    /// request only).
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        pairs(&self.headers)
    }

    /// The query-string parameters, values in clear (for the request only).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        pairs(&self.query)
    }

    /// Whether there is nothing to add.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty() && self.body.is_empty()
    }

    /// Adds `name: value` unless a header of that name (case-insensitive) is already
    /// there: the first source wins.
    fn add_header(&mut self, name: &str, value: &str) {
        if !self
            .headers
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(name))
        {
            self.headers.push(Parameter::new(name, value));
        }
    }
}

impl From<&AuthHeaders> for Vec<(String, String)> {
    fn from(auth: &AuthHeaders) -> Vec<(String, String)> {
        auth.header_pairs()
    }
}

fn pairs(params: &[Parameter]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|p| (p.name.clone(), p.value.expose().to_owned()))
        .collect()
}

fn names(params: &[Parameter]) -> String {
    params
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Debug for AuthHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeaders")
            .field("headers", &self.headers)
            .field("query", &self.query)
            .field("body", &self.body)
            .finish()
    }
}

impl fmt::Display for AuthHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "headers [{}], query [{}], body [{}] (values hidden)",
            names(&self.headers),
            names(&self.query),
            names(&self.body)
        )
    }
}

/// The port: an API destination connection's authorization.
pub trait ConnectionAuth: Send + Sync {
    /// What EventBridge adds to requests through `connection_arn`, answered before
    /// `deadline`.
    fn headers<'a>(
        &'a self,
        connection_arn: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<AuthHeaders, ConnectionError>>;

    /// Forgets what is cached for `connection_arn` (after the endpoint's 401 or 407, as
    /// EventBridge refreshes an OAuth token), so the next call reads it afresh.
    fn invalidate(&self, connection_arn: &str);
}

/// The in-memory twin: a table of answers by connection ARN; unknown connections are an
/// error. Counts calls and invalidations.
#[derive(Debug, Default)]
pub struct MemoryConnectionAuth {
    answers: Mutex<HashMap<String, Result<AuthHeaders, ConnectionError>>>,
    calls: Mutex<Vec<String>>,
    invalidated: Mutex<Vec<String>>,
}

impl MemoryConnectionAuth {
    /// An empty table.
    pub fn new() -> MemoryConnectionAuth {
        MemoryConnectionAuth::default()
    }

    /// `connection_arn` answers `answer` from now on.
    pub fn set(&self, connection_arn: &str, answer: Result<AuthHeaders, ConnectionError>) {
        lock(&self.answers).insert(connection_arn.to_owned(), answer);
    }

    /// The connections asked for, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// The connections invalidated, in order.
    pub fn invalidated(&self) -> Vec<String> {
        lock(&self.invalidated).clone()
    }
}

impl ConnectionAuth for MemoryConnectionAuth {
    fn headers<'a>(
        &'a self,
        connection_arn: &'a str,
        _deadline: Instant,
    ) -> BoxFuture<'a, Result<AuthHeaders, ConnectionError>> {
        lock(&self.calls).push(connection_arn.to_owned());
        let answer = lock(&self.answers)
            .get(connection_arn)
            .cloned()
            .unwrap_or_else(|| {
                Err(ConnectionError::Aws {
                    connection: connection_arn.to_owned(),
                    operation: "DescribeConnection",
                    message: "ResourceNotFoundException: no such connection".to_owned(),
                    transient: false,
                })
            });
        Box::pin(async move { answer })
    }

    fn invalidate(&self, connection_arn: &str) {
        lock(&self.invalidated).push(connection_arn.to_owned());
    }
}

/// A lock that survives a panicked holder (the data is a plain table).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_name_parameters_and_hide_values() {
        let auth = AuthHeaders {
            headers: vec![Parameter::new("x-api-key", "s3cr3t-value")],
            query: vec![Parameter::new("token", "q-s3cr3t")],
            body: vec![Parameter::new("audience", "b-s3cr3t")],
        };
        for shown in [format!("{auth:?}"), format!("{auth}"), format!("{auth:#?}")] {
            assert!(
                shown.contains("x-api-key") && shown.contains("token"),
                "{shown}"
            );
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        assert_eq!(
            Vec::<(String, String)>::from(&auth),
            vec![("x-api-key".to_owned(), "s3cr3t-value".to_owned())]
        );
        assert_eq!(
            auth.query_pairs(),
            vec![("token".to_owned(), "q-s3cr3t".to_owned())]
        );
    }

    #[test]
    fn the_first_header_of_a_name_wins() {
        let mut auth = AuthHeaders::default();
        auth.add_header("Authorization", "Basic a");
        auth.add_header("authorization", "Bearer b");
        assert_eq!(auth.header_pairs().len(), 1);
        assert_eq!(auth.header_pairs()[0].1, "Basic a");
    }

    #[tokio::test]
    async fn the_twin_answers_its_table_and_counts() {
        let twin = MemoryConnectionAuth::new();
        let auth = AuthHeaders {
            headers: vec![Parameter::new("x-api-key", "k")],
            ..AuthHeaders::default()
        };
        twin.set("arn:c1", Ok(auth.clone()));
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        assert_eq!(twin.headers("arn:c1", deadline).await.unwrap(), auth);
        let err = twin.headers("arn:c2", deadline).await.unwrap_err();
        assert!(err.to_string().contains("arn:c2"), "{err}");
        twin.invalidate("arn:c1");
        assert_eq!(twin.calls(), ["arn:c1", "arn:c2"]);
        assert_eq!(twin.invalidated(), ["arn:c1"]);
    }

    #[test]
    fn a_deauthorized_connection_names_its_state_and_is_not_transient() {
        let err = ConnectionError::NotAuthorized {
            connection: "arn:aws:events:us-east-1:1:connection/crm/x".into(),
            state: "DEAUTHORIZED".into(),
            reason: Some("401".into()),
        };
        assert!(err.to_string().contains("DEAUTHORIZED"), "{err}");
        assert!(!err.transient());
        let authorizing = ConnectionError::NotAuthorized {
            connection: "arn:aws:events:us-east-1:1:connection/crm/x".into(),
            state: "AUTHORIZING".into(),
            reason: None,
        };
        assert!(authorizing.transient(), "on its way to AUTHORIZED");
    }
}
