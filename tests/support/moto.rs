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
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                access_key, secret_key, None, None, "test",
            ))
            .load()
            .await
    }

    /// SDK configuration for this server with test credentials.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        self.sdk_with("testing", "testing").await
    }
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

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
