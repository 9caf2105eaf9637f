//! The secret EventBridge keeps for a connection (`events!connection/<name>/<id>`), read
//! into what the requests need.
//!
//! What is confirmed, and where: moto (the AWS mock, `moto/events/models.py`) writes the
//! secret as the `CreateConnection` request's auth parameters flattened and turned to
//! snake case — API_KEY `{"api_key_name", "api_key_value"}`, BASIC `{"username",
//! "password"}`, OAUTH_CLIENT_CREDENTIALS `{"client_parameters": {"client_id",
//! "client_secret"}, "authorization_endpoint", "http_method", "o_auth_http_parameters"}` —
//! with `"invocation_http_parameters": {"header_parameters": [{"key", "value",
//! "is_value_secret"}], "query_string_parameters": […], "body_parameters": […]}`. The
//! layout of a secret EventBridge itself writes has not been checked (AWS's documentation
//! does not give it): the snake-case names above are moto's. What AWS's documentation
//! does not state, and this parser therefore accepts in
//! every spelling seen: the OAuth client's fields at the top level or under
//! `client_parameters`; `oauth_http_parameters` as well as `o_auth_http_parameters`; the
//! API's own CamelCase names (`ApiKeyName`, `ClientID`, `HeaderParameters`, `Key`, …); the
//! parameters of one authorization type nested under its `*_auth_parameters` object.
//! Non-secret values missing from the secret are taken from `DescribeConnection`
//! ([`Known`]), which shows them.

use serde_json::Value;

use super::{AuthHeaders, Parameter};
use crate::genesys::Secret;

/// A connection's header, query-string and body parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HttpParams {
    pub(crate) headers: Vec<Parameter>,
    pub(crate) query: Vec<Parameter>,
    pub(crate) body: Vec<Parameter>,
}

impl HttpParams {
    /// `self`, with the parameters of `other` whose key `self` lacks.
    fn or(mut self, other: &HttpParams) -> HttpParams {
        let merge = |mine: &mut Vec<Parameter>, theirs: &[Parameter]| {
            for p in theirs {
                if !mine.iter().any(|m| m.name.eq_ignore_ascii_case(&p.name)) {
                    mine.push(p.clone());
                }
            }
        };
        merge(&mut self.headers, &other.headers);
        merge(&mut self.query, &other.query);
        merge(&mut self.body, &other.body);
        self
    }
}

/// What `DescribeConnection` shows of a connection (never a secret value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) api_key_name: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) oauth_endpoint: Option<String>,
    pub(crate) oauth_method: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) oauth_params: HttpParams,
    pub(crate) invocation: HttpParams,
}

/// An OAuth client-credentials token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRequest {
    pub(crate) endpoint: String,
    pub(crate) method: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) params: HttpParams,
}

/// What a connection's secret makes of a request: complete, or waiting for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    Ready(AuthHeaders),
    OAuth {
        request: TokenRequest,
        /// The invocation parameters, to which the token's header is added.
        base: AuthHeaders,
    },
}

/// Why a connection's secret cannot be used: where its JSON broke, the fields it lacks
/// (by name, never a value), or an authorization type this tool does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SecretShapeError {
    /// Not JSON: where the parser stopped.
    #[error("its secret is not JSON (error at line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    /// Required fields absent or empty, by name.
    #[error("its secret lacks {}", .0.join(" and "))]
    Lacks(Vec<&'static str>),
    /// An OAuth connection without its token endpoint.
    #[error("the OAuth connection has no authorization_endpoint")]
    NoAuthorizationEndpoint,
    /// An authorization type other than API_KEY, BASIC, OAUTH_CLIENT_CREDENTIALS.
    #[error(
        "authorization type {0} is not one this tool knows (API_KEY, BASIC, OAUTH_CLIENT_CREDENTIALS)"
    )]
    UnknownType(String),
}

/// Reads `text` (the secret string) for `authorization_type`; the error names the
/// missing fields, never a value.
pub(crate) fn parse(
    authorization_type: &str,
    text: &str,
    known: &Known,
) -> Result<Parsed, SecretShapeError> {
    let secret: Value = serde_json::from_str(text).map_err(|e| SecretShapeError::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    let invocation = params(find(
        &secret,
        &["invocation_http_parameters", "InvocationHttpParameters"],
    ))
    .or(&known.invocation);
    let mut base = AuthHeaders {
        headers: Vec::new(),
        query: invocation.query,
        body: invocation.body,
    };
    match authorization_type {
        "API_KEY" => {
            let scope = scoped(
                &secret,
                &["api_key_auth_parameters", "ApiKeyAuthParameters"],
            );
            let name = string(scope, &["api_key_name", "ApiKeyName"])
                .or_else(|| known.api_key_name.clone());
            let value = string(scope, &["api_key_value", "ApiKeyValue"]);
            let (name, value) = required(name, "api_key_name", value, "api_key_value")?;
            base.add_header(&name, &value);
        }
        "BASIC" => {
            let scope = scoped(&secret, &["basic_auth_parameters", "BasicAuthParameters"]);
            let user = string(scope, &["username", "Username"]).or_else(|| known.username.clone());
            let password = string(scope, &["password", "Password"]);
            let (user, password) = required(user, "username", password, "password")?;
            base.add_header("Authorization", &basic(&user, &password));
        }
        "OAUTH_CLIENT_CREDENTIALS" => {
            let request = oauth(&secret, known)?;
            for p in invocation.headers {
                base.add_header(&p.name, p.value.expose());
            }
            return Ok(Parsed::OAuth { request, base });
        }
        other => return Err(SecretShapeError::UnknownType(other.to_owned())),
    }
    // The authorization header comes first: a connection header of the same name does
    // not replace it.
    for p in invocation.headers {
        base.add_header(&p.name, p.value.expose());
    }
    Ok(Parsed::Ready(base))
}

/// `Basic base64(user:password)`.
pub(crate) fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn oauth(secret: &Value, known: &Known) -> Result<TokenRequest, SecretShapeError> {
    let scope = scoped(
        secret,
        &["o_auth_parameters", "oauth_parameters", "OAuthParameters"],
    );
    let client = find(scope, &["client_parameters", "ClientParameters"]);
    let client_field = |names: &[&str]| string(client, names).or_else(|| string(scope, names));
    let client_id = client_field(&["client_id", "client_i_d", "ClientID", "ClientId"])
        .or_else(|| known.client_id.clone());
    let client_secret = client_field(&["client_secret", "ClientSecret"]);
    let (client_id, client_secret) =
        required(client_id, "client_id", client_secret, "client_secret")?;
    let endpoint = string(scope, &["authorization_endpoint", "AuthorizationEndpoint"])
        .or_else(|| known.oauth_endpoint.clone())
        .ok_or(SecretShapeError::NoAuthorizationEndpoint)?;
    let method = string(scope, &["http_method", "HttpMethod"])
        .or_else(|| known.oauth_method.clone())
        .unwrap_or_else(|| "POST".to_owned())
        .to_ascii_uppercase();
    let params = params(find(
        scope,
        &[
            "o_auth_http_parameters",
            "oauth_http_parameters",
            "OAuthHttpParameters",
        ],
    ))
    .or(&known.oauth_params);
    Ok(TokenRequest {
        endpoint,
        method,
        client_id,
        client_secret: Secret::new(client_secret),
        params,
    })
}

/// Both values, or an error naming the missing ones.
fn required(
    a: Option<String>,
    a_name: &'static str,
    b: Option<String>,
    b_name: &'static str,
) -> Result<(String, String), SecretShapeError> {
    match (a, b) {
        (Some(a), Some(b)) => Ok((a, b)),
        (a, b) => {
            let missing: Vec<&'static str> = [(a_name, a.is_none()), (b_name, b.is_none())]
                .into_iter()
                .filter_map(|(n, absent)| absent.then_some(n))
                .collect();
            Err(SecretShapeError::Lacks(missing))
        }
    }
}

/// The object under the first of `names` present in `v`, or `v` itself (flattened
/// secrets hold the fields at the top level).
fn scoped<'a>(v: &'a Value, names: &[&str]) -> &'a Value {
    match find(v, names) {
        Value::Object(_) => find(v, names),
        _ => v,
    }
}

/// The value under the first of `names` present in `v`; `Null` if none is.
fn find<'a>(v: &'a Value, names: &[&str]) -> &'a Value {
    names
        .iter()
        .map(|n| &v[*n])
        .find(|x| !x.is_null())
        .unwrap_or(&Value::Null)
}

/// A non-empty string under the first of `names` present.
fn string(v: &Value, names: &[&str]) -> Option<String> {
    match find(v, names) {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// `{"header_parameters": [{"key", "value"}], "query_string_parameters": …,
/// "body_parameters": …}` (snake or Camel case).
fn params(v: &Value) -> HttpParams {
    let list = |names: &[&str]| -> Vec<Parameter> {
        find(v, names)
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|p| {
                        let key = string(p, &["key", "Key"])?;
                        let value = match find(p, &["value", "Value"]) {
                            Value::String(s) => s.clone(),
                            Value::Null => return None,
                            other => other.to_string(),
                        };
                        Some(Parameter::new(key, value))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    HttpParams {
        headers: list(&["header_parameters", "HeaderParameters"]),
        query: list(&["query_string_parameters", "QueryStringParameters"]),
        body: list(&["body_parameters", "BodyParameters"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(p: Parsed) -> AuthHeaders {
        match p {
            Parsed::Ready(a) => a,
            Parsed::OAuth { .. } => panic!("not ready"),
        }
    }

    #[test]
    fn an_api_key_secret_as_moto_writes_it() {
        let text = r#"{"api_key_name": "x-api-key", "api_key_value": "k-1",
            "invocation_http_parameters": {"header_parameters": [{"key": "X-Team", "value": "crm", "is_value_secret": false}],
            "query_string_parameters": [{"key": "tenant", "value": "t1", "is_value_secret": true}]}}"#;
        let auth = ready(parse("API_KEY", text, &Known::default()).unwrap());
        assert_eq!(
            auth.header_pairs(),
            [
                ("x-api-key".into(), "k-1".into()),
                ("X-Team".into(), "crm".into())
            ]
        );
        assert_eq!(auth.query_pairs(), [("tenant".into(), "t1".into())]);
    }

    #[test]
    fn camel_case_and_nested_spellings_are_read_too() {
        let text = r#"{"ApiKeyAuthParameters": {"ApiKeyName": "X-Key", "ApiKeyValue": "v"}}"#;
        let auth = ready(parse("API_KEY", text, &Known::default()).unwrap());
        assert_eq!(auth.header_pairs(), [("X-Key".into(), "v".into())]);
    }

    #[test]
    fn basic_makes_an_authorization_header() {
        let auth = ready(
            parse(
                "BASIC",
                r#"{"username":"ops","password":"pa:ss"}"#,
                &Known::default(),
            )
            .unwrap(),
        );
        assert_eq!(auth.header_pairs()[0].1, basic("ops", "pa:ss"));
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn oauth_reads_the_client_and_the_endpoint_with_describe_as_fallback() {
        let text = r#"{"client_parameters": {"client_id": "cid", "client_secret": "cs"},
            "o_auth_http_parameters": {"body_parameters": [{"key": "audience", "value": "crm"}]}}"#;
        let known = Known {
            oauth_endpoint: Some("https://auth.example.com/token".into()),
            oauth_method: Some("post".into()),
            ..Known::default()
        };
        let Parsed::OAuth { request, .. } =
            parse("OAUTH_CLIENT_CREDENTIALS", text, &known).unwrap()
        else {
            panic!("not oauth")
        };
        assert_eq!(request.endpoint, "https://auth.example.com/token");
        assert_eq!(request.method, "POST");
        assert_eq!(request.client_id, "cid");
        assert_eq!(request.client_secret.expose(), "cs");
        assert_eq!(request.params.body[0].name, "audience");
    }

    #[test]
    fn errors_name_missing_fields_never_values() {
        let err = parse(
            "API_KEY",
            r#"{"api_key_value":"hush-123"}"#,
            &Known::default(),
        )
        .unwrap_err();
        assert_eq!(err, SecretShapeError::Lacks(vec!["api_key_name"]));
        let err = err.to_string();
        assert_eq!(err, "its secret lacks api_key_name");
        assert!(!err.contains("hush-123"), "{err}");
        let err = parse("BASIC", r#"{"username": "hush-123""#, &Known::default()).unwrap_err();
        assert!(matches!(err, SecretShapeError::NotJson { line: 1, .. }));
        let err = err.to_string();
        assert!(
            !err.contains("hush-123") && err.contains("not JSON"),
            "{err}"
        );
        let err = parse("DIGEST", "{}", &Known::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "authorization type DIGEST is not one this tool knows (API_KEY, BASIC, OAUTH_CLIENT_CREDENTIALS)"
        );
    }

    #[test]
    fn the_secrets_parameters_win_over_describes() {
        let known = Known {
            api_key_name: Some("x-api-key".into()),
            invocation: HttpParams {
                headers: vec![
                    Parameter::new("X-Team", "old"),
                    Parameter::new("X-Other", "o"),
                ],
                ..HttpParams::default()
            },
            ..Known::default()
        };
        let text = r#"{"api_key_value": "k", "invocation_http_parameters": {"header_parameters": [{"key": "X-Team", "value": "new"}]}}"#;
        let auth = ready(parse("API_KEY", text, &known).unwrap());
        assert_eq!(
            auth.header_pairs(),
            [
                ("x-api-key".into(), "k".into()),
                ("X-Team".into(), "new".into()),
                ("X-Other".into(), "o".into())
            ]
        );
    }
}
