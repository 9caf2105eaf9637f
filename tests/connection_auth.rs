//! An API destination's authorization read from its own EventBridge connection, against
//! moto: moto's `CreateConnection` creates the `events!connection/…` secret and its
//! `DescribeConnection` gives the `SecretArn`, as EventBridge does. States moto cannot
//! reach (`DEAUTHORIZED`) come from the EventBridge stand-in; the OAuth authorization
//! endpoint is a local server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_eventbridge::types::{
    ConnectionAuthorizationType, ConnectionBodyParameter, ConnectionHeaderParameter,
    ConnectionHttpParameters, ConnectionOAuthHttpMethod, ConnectionQueryStringParameter,
    CreateConnectionApiKeyAuthRequestParameters, CreateConnectionAuthRequestParameters,
    CreateConnectionBasicAuthRequestParameters, CreateConnectionOAuthClientRequestParameters,
    CreateConnectionOAuthRequestParameters,
};
use dlq_triage_test_support::eventbridge::EventSources;
use dlq_triage_test_support::moto::Moto;
use genesys_dlq_triage::{AwsConnectionAuth, ConnectionAuth, ConnectionError};
use tokio::time::Instant;

const API_KEY: &str = "key-7f3a9c-very-secret";
const PASSWORD: &str = "pw-51d0e2-very-secret";
const CLIENT_SECRET: &str = "cs-9b77aa-very-secret";
const TOKEN: &str = "tok-2c4e6a-very-secret";
const QUERY_SECRET: &str = "q-88e1f0-very-secret";
const SECRETS: [&str; 5] = [API_KEY, PASSWORD, CLIENT_SECRET, TOKEN, QUERY_SECRET];

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// No secret value in any of `shown`.
fn assert_hidden(shown: &[String]) {
    for text in shown {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} shown in: {text}");
        }
    }
}

async fn create(
    events: &aws_sdk_eventbridge::Client,
    name: &str,
    kind: ConnectionAuthorizationType,
    auth: CreateConnectionAuthRequestParameters,
) -> String {
    events
        .create_connection()
        .name(name)
        .authorization_type(kind)
        .auth_parameters(auth)
        .send()
        .await
        .unwrap()
        .connection_arn()
        .unwrap()
        .to_owned()
}

fn invocation_parameters() -> ConnectionHttpParameters {
    ConnectionHttpParameters::builder()
        .header_parameters(
            ConnectionHeaderParameter::builder()
                .key("X-Team")
                .value("crm")
                .is_value_secret(false)
                .build(),
        )
        .query_string_parameters(
            ConnectionQueryStringParameter::builder()
                .key("tenant")
                .value(QUERY_SECRET)
                .is_value_secret(true)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn an_api_key_connection_gives_its_key_header_and_parameters_and_shows_no_value() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let key = CreateConnectionApiKeyAuthRequestParameters::builder()
        .api_key_name("x-api-key")
        .api_key_value(API_KEY)
        .build()
        .unwrap();
    let arn = create(
        &events,
        "crm",
        ConnectionAuthorizationType::ApiKey,
        CreateConnectionAuthRequestParameters::builder()
            .api_key_auth_parameters(key)
            .invocation_http_parameters(invocation_parameters())
            .build(),
    )
    .await;
    let auth = AwsConnectionAuth::new(sdk);
    let got = auth.headers(&arn, soon()).await.unwrap();
    assert_eq!(
        got.header_pairs(),
        [
            ("x-api-key".to_owned(), API_KEY.to_owned()),
            ("X-Team".to_owned(), "crm".to_owned())
        ]
    );
    assert_eq!(
        got.query_pairs(),
        [("tenant".to_owned(), QUERY_SECRET.to_owned())]
    );
    assert_hidden(&[
        format!("{got:?}"),
        format!("{got:#?}"),
        got.to_string(),
        format!("{auth:?}"),
    ]);
}

#[tokio::test]
async fn a_basic_connection_gives_an_authorization_header() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let basic = CreateConnectionBasicAuthRequestParameters::builder()
        .username("replayer")
        .password(PASSWORD)
        .build()
        .unwrap();
    let arn = create(
        &events,
        "wfm",
        ConnectionAuthorizationType::Basic,
        CreateConnectionAuthRequestParameters::builder()
            .basic_auth_parameters(basic)
            .build(),
    )
    .await;
    let got = AwsConnectionAuth::new(sdk)
        .headers(&arn, soon())
        .await
        .unwrap();
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("replayer:{PASSWORD}"))
    );
    assert_eq!(got.header_pairs(), [("Authorization".to_owned(), expected)]);
    assert_hidden(&[format!("{got:?}"), got.to_string()]);
}

/// A token endpoint answering `TOKEN` to the right client (Basic authentication, the
/// client-credentials grant, the connection's OAuth parameters) and 401 otherwise.
async fn token_server(hits: Arc<AtomicUsize>) -> String {
    use axum::http::{HeaderMap, StatusCode};
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("replay-client:{CLIENT_SECRET}"))
    );
    let app = axum::Router::new().route(
        "/oauth/token",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let hits = hits.clone();
            let expected = expected.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                let ok = header("authorization") == Some(expected.as_str())
                    && header("x-tenant") == Some("acme")
                    && body.split('&').any(|p| p == "grant_type=client_credentials")
                    && body.split('&').any(|p| p == "audience=crm-api");
                if ok {
                    (
                        StatusCode::OK,
                        format!(r#"{{"access_token":"{TOKEN}","token_type":"Bearer","expires_in":3600}}"#),
                    )
                } else {
                    (StatusCode::UNAUTHORIZED, format!(r#"{{"error":"invalid_client","echo":"{body}"}}"#))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/oauth/token")
}

async fn oauth_connection(
    events: &aws_sdk_eventbridge::Client,
    name: &str,
    endpoint: &str,
    client_secret: &str,
) -> String {
    let oauth = CreateConnectionOAuthRequestParameters::builder()
        .client_parameters(
            CreateConnectionOAuthClientRequestParameters::builder()
                .client_id("replay-client")
                .client_secret(client_secret)
                .build()
                .unwrap(),
        )
        .authorization_endpoint(endpoint)
        .http_method(ConnectionOAuthHttpMethod::Post)
        .o_auth_http_parameters(
            ConnectionHttpParameters::builder()
                .header_parameters(
                    ConnectionHeaderParameter::builder()
                        .key("X-Tenant")
                        .value("acme")
                        .build(),
                )
                .body_parameters(
                    ConnectionBodyParameter::builder()
                        .key("audience")
                        .value("crm-api")
                        .build(),
                )
                .build(),
        )
        .build()
        .unwrap();
    create(
        events,
        name,
        ConnectionAuthorizationType::OauthClientCredentials,
        CreateConnectionAuthRequestParameters::builder()
            .o_auth_parameters(oauth)
            .build(),
    )
    .await
}

#[tokio::test]
async fn an_oauth_connection_fetches_a_token_caches_it_and_fetches_again_after_invalidate() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let hits = Arc::new(AtomicUsize::new(0));
    let endpoint = token_server(hits.clone()).await;
    let arn = oauth_connection(&events, "crm-oauth", &endpoint, CLIENT_SECRET).await;
    let auth = AwsConnectionAuth::new(sdk);

    let got = auth.headers(&arn, soon()).await.unwrap();
    assert_eq!(
        got.header_pairs(),
        [("Authorization".to_owned(), format!("Bearer {TOKEN}"))]
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    auth.headers(&arn, soon()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the token is cached");
    auth.invalidate(&arn);
    auth.headers(&arn, soon()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2, "invalidate reads afresh");
    assert_hidden(&[format!("{got:?}"), got.to_string(), format!("{auth:?}")]);
}

#[tokio::test]
async fn a_refused_token_request_is_an_error_without_the_secret_or_the_answers_body() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let endpoint = token_server(Arc::default()).await;
    // The server echoes the request body in its 401; the error must not carry it.
    let arn = oauth_connection(&events, "crm-wrong", &endpoint, "cs-wrong-very-secret").await;
    let err = AwsConnectionAuth::new(sdk)
        .headers(&arn, soon())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectionError::Token { .. }), "{err:?}");
    assert!(err.to_string().contains("401"), "{err}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("cs-wrong-very-secret"), "{shown}");
        assert!(!shown.contains("audience"), "{shown}");
    }
}

#[tokio::test]
async fn a_deauthorized_connection_is_an_error_naming_its_state() {
    let moto = Moto::start().await;
    let sources = EventSources::start(&moto.endpoint).await;
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk().await);
    let arn = dlq_triage_test_support::moto::api_key_connection(&events, "crm").await;
    sources.set_connection("crm", "DEAUTHORIZED");
    let sdk = dlq_triage_test_support::local_sdk(&sources.endpoint, "testing", "testing").await;
    let err = AwsConnectionAuth::new(sdk)
        .headers(&arn, soon())
        .await
        .unwrap_err();
    let ConnectionError::NotAuthorized { state, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(state, "DEAUTHORIZED");
    assert!(err.to_string().contains("DEAUTHORIZED"), "{err}");
    assert!(!err.transient());
}

#[tokio::test]
async fn an_endpoint_that_never_answers_fails_within_the_deadline() {
    let hole = dlq_triage_test_support::net::black_hole().await;
    let sdk = dlq_triage_test_support::local_sdk(&hole, "testing", "testing").await;
    let auth =
        AwsConnectionAuth::new(sdk).with_limits(Duration::from_secs(300), Duration::from_secs(30));
    let started = std::time::Instant::now();
    let err = auth
        .headers(
            "arn:aws:events:us-east-1:123456789012:connection/crm/0d3c",
            Instant::now() + Duration::from_millis(500),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectionError::Timeout {
                operation: "DescribeConnection",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.transient());
}

#[tokio::test]
async fn a_missing_connection_names_the_call() {
    let moto = Moto::start().await;
    let err = AwsConnectionAuth::new(moto.sdk().await)
        .headers(
            "arn:aws:events:us-east-1:123456789012:connection/nowhere/0d3c",
            soon(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectionError::Aws {
                operation: "DescribeConnection",
                ..
            }
        ),
        "{err:?}"
    );
    // A connection that does not exist will not exist at the next attempt either.
    assert!(!err.transient(), "{err}");
}

/// The connection's secret rewritten to something that is not JSON, then deleted: each a
/// clear error naming the connection and the call or the problem, never the secret's
/// text, and not worth asking again within a run.
#[tokio::test]
async fn an_unparseable_or_missing_secret_is_a_clear_error_without_its_text() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let arn = dlq_triage_test_support::moto::api_key_connection(&events, "crm-broken").await;
    let secret_arn = events
        .describe_connection()
        .name("crm-broken")
        .send()
        .await
        .unwrap()
        .secret_arn()
        .unwrap()
        .to_owned();
    let garbled = format!("{{\"api_key_value\": \"{API_KEY}\"");
    secrets
        .put_secret_value()
        .secret_id(&secret_arn)
        .secret_string(&garbled)
        .send()
        .await
        .unwrap();
    let err = AwsConnectionAuth::new(sdk.clone())
        .headers(&arn, soon())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectionError::Invalid { message, .. } if message.contains("not JSON")),
        "{err:?}"
    );
    assert!(err.to_string().contains(&arn), "{err}");
    assert!(!err.transient());
    assert_hidden(&[err.to_string(), format!("{err:?}")]);

    secrets
        .delete_secret()
        .secret_id(&secret_arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let err = AwsConnectionAuth::new(sdk)
        .headers(&arn, soon())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectionError::Aws {
                operation: "GetSecretValue",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.transient(), "{err}");
}
