//! A real `moto_server` on 127.0.0.1, one per test binary or per test that needs its own.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running moto server, killed on drop.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    child: Child,
}

impl Moto {
    /// Starts moto with extra environment variables and waits until it accepts connections.
    pub async fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = super::net::free_port();
        let mut cmd = Command::new(super::venv_tool("moto_server"));
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start moto_server ({e}); run `make tools` to create .venv-tools with moto[server]")
        });
        let endpoint = format!("http://127.0.0.1:{port}");
        // Await readiness: the port accepts connections once the server is up.
        super::net::wait_for_port(port, Duration::from_secs(60), "moto_server").await;
        Moto { endpoint, child }
    }

    /// Starts moto with the default environment.
    pub async fn start() -> Moto {
        Moto::start_with(&[]).await
    }

    /// SDK configuration for this server with the given credentials.
    pub async fn sdk_with(&self, access_key: &str, secret_key: &str) -> aws_config::SdkConfig {
        crate::local_sdk(&self.endpoint, access_key, secret_key).await
    }

    /// SDK configuration for this server with test credentials.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        self.sdk_with("testing", "testing").await
    }
}

/// Stores the secret `name` with `value` (a Genesys OAuth client as JSON, for one).
pub async fn put_secret(sdk: &aws_config::SdkConfig, name: &str, value: &str) {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("CreateSecret");
}

/// Creates an IAM user with one inline `policy` and an access key; returns the key's id
/// and secret. Costs three calls: with `INITIAL_NO_AUTH_ACTION_COUNT`, count them among
/// the unauthenticated set-up calls.
pub async fn user_with_policy(
    sdk: &aws_config::SdkConfig,
    name: &str,
    policy: &serde_json::Value,
) -> (String, String) {
    let iam = aws_sdk_iam::Client::new(sdk);
    iam.create_user().user_name(name).send().await.unwrap();
    iam.put_user_policy()
        .user_name(name)
        .policy_name("p")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    (key.access_key_id, key.secret_access_key)
}

/// The bytes of one S3 object.
pub async fn s3_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}

/// Puts rule `name` on `bus` (the default bus when `None`) with `pattern` and its one
/// `target`; the rule's ARN.
pub async fn rule_with_target(
    events: &aws_sdk_eventbridge::Client,
    bus: Option<&str>,
    name: &str,
    pattern: &str,
    target: aws_sdk_eventbridge::types::Target,
) -> String {
    let rule = events
        .put_rule()
        .name(name)
        .set_event_bus_name(bus.map(str::to_owned))
        .event_pattern(pattern)
        .send()
        .await
        .expect("PutRule");
    events
        .put_targets()
        .rule(name)
        .set_event_bus_name(bus.map(str::to_owned))
        .targets(target)
        .send()
        .await
        .expect("PutTargets");
    rule.rule_arn().expect("rule ARN").to_owned()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An EventBridge connection `name` with an API key (the value is a placeholder), for API
/// destinations; its ARN.
pub async fn api_key_connection(events: &aws_sdk_eventbridge::Client, name: &str) -> String {
    use aws_sdk_eventbridge::types::{
        ConnectionAuthorizationType, CreateConnectionApiKeyAuthRequestParameters,
        CreateConnectionAuthRequestParameters,
    };
    let key = CreateConnectionApiKeyAuthRequestParameters::builder()
        .api_key_name("x-api-key")
        .api_key_value("not-a-secret")
        .build()
        .unwrap();
    events
        .create_connection()
        .name(name)
        .authorization_type(ConnectionAuthorizationType::ApiKey)
        .auth_parameters(
            CreateConnectionAuthRequestParameters::builder()
                .api_key_auth_parameters(key)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .connection_arn()
        .unwrap()
        .to_owned()
}
