//! End to end through a real Lambda Runtime API: the built function under cargo-lambda's
//! emulator (`cargo lambda watch`), with moto_server and the Genesys simulator behind it.
//! The invocation goes over HTTP to the emulator, exactly as `cargo lambda invoke` does; the
//! function is the binary cargo built for this test run, started against the emulator's
//! Runtime API (`--only-lambda-apis`), so no second compile happens inside the test.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dlq_triage_test_support as support;
use serde_json::Value;
use support::genesys_sim::{Sim, SimState};
use support::moto::Moto;

/// cargo-lambda's Runtime API emulator (`cargo lambda watch --only-lambda-apis`) and the
/// built function binary polling it, both killed on drop.
struct Emulator {
    watch: Child,
    function: Child,
    port: u16,
    /// Everything the function wrote to standard output and error.
    log: tempfile::NamedTempFile,
}

impl Emulator {
    /// The function's output so far.
    fn logs(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.log.path()).unwrap()).into_owned()
    }

    fn invocations_url(&self) -> String {
        // Under --only-lambda-apis the emulator serves the function as `_`.
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        )
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Under --only-lambda-apis the emulator starts no function of its own, so killing
        // the two processes this test started leaves nothing behind.
        let _ = self.function.kill();
        let _ = self.function.wait();
        let _ = self.watch.kill();
        let _ = self.watch.wait();
    }
}

async fn start_emulator(env: &[(&str, String)]) -> Emulator {
    let port = support::net::free_port();
    let watch = Command::new(support::venv_tool("cargo-lambda"))
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "--invoke-address",
            "127.0.0.1",
        ])
        .args(["--invoke-port", &port.to_string()])
        .current_dir(support::fixtures::repo_path(""))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo lambda (run `make tools`)");
    // Await the emulator's port (never probe it over HTTP: unknown paths invoke the function).
    support::net::wait_for_port(port, Duration::from_secs(60), "cargo lambda watch").await;
    // The function, with the variables the emulator asks for and only ours besides.
    let mut function = Command::new(env!("CARGO_BIN_EXE_dlq-triage-lambda"));
    function
        .env_clear()
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .stdin(Stdio::null());
    let log = tempfile::NamedTempFile::new().unwrap();
    function
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap());
    for (k, v) in env {
        function.env(k, v);
    }
    let function = function.spawn().unwrap();
    Emulator {
        watch,
        function,
        port,
        log,
    }
}

#[tokio::test]
async fn the_function_under_the_runtime_api_stores_the_batch_and_answers_partial_failures() {
    let moto = Moto::start().await;
    let sim = Sim::start(SimState::new("e2e-client", "e2e-secret"), 0)
        .await
        .unwrap();
    let sdk = moto.sdk().await;
    let s3 = genesys_dlq_triage::s3_client(&sdk, true);
    s3.create_bucket()
        .bucket("e2e-reports")
        .send()
        .await
        .unwrap();
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("genesys/e2e")
        .secret_string(format!(
            r#"{{"clientId":"e2e-client","clientSecret":"e2e-secret","apiBase":"{}"}}"#,
            sim.base_url()
        ))
        .send()
        .await
        .unwrap();

    let env = [
        ("REPORT_BUCKET", "e2e-reports".to_owned()),
        ("REPORT_PREFIX", "triage/".to_owned()),
        ("GENESYS_SECRET_ID", "genesys/e2e".to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "DEBUG".to_owned()),
    ];
    let emulator = start_emulator(&env).await;

    let event = support::fixtures::event_bytes("sqs-mixed-batch.json");
    let url = emulator.invocations_url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let response = client.post(&url).body(event).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(body, serde_json::json!({"batchItemFailures": []}));

    let listed = s3
        .list_objects_v2()
        .bucket("e2e-reports")
        .prefix("triage/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("triage/replay/dt="))
            .count(),
        20,
        "{keys:?}"
    );
    let report_key = keys
        .iter()
        .find(|k| k.starts_with("triage/reports/dt=") && k.ends_with(".json"))
        .unwrap();
    let report: Value =
        serde_json::from_slice(&support::moto::s3_object(&s3, "e2e-reports", report_key).await)
            .unwrap();
    assert_eq!(report["summary"]["byInteractionStatus"]["found"], 16);
    assert_eq!(
        sim.state
            .stats
            .detail_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    // Neither the client secret nor any token Genesys issued appears in an object, its
    // metadata, or anything the function wrote.
    let mut secrets = vec!["e2e-secret".to_owned()];
    secrets.extend(sim.state.issued_tokens());
    assert!(secrets.len() > 1, "a token was issued");
    for key in &keys {
        let body = support::moto::s3_object(&s3, "e2e-reports", key).await;
        let head = s3
            .head_object()
            .bucket("e2e-reports")
            .key(*key)
            .send()
            .await
            .unwrap();
        let metadata = format!("{:?}", head.metadata());
        for secret in &secrets {
            assert!(
                !String::from_utf8_lossy(&body).contains(secret.as_str()),
                "{secret} in {key}"
            );
            assert!(
                !metadata.contains(secret.as_str()),
                "{secret} in metadata of {key}"
            );
        }
    }

    // A batch whose bucket is gone: nothing can be stored, so the invocation fails with
    // BatchNotStored and SQS keeps the record for redelivery.
    s3.delete_objects()
        .bucket("e2e-reports")
        .delete(
            aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(
                    keys.iter()
                        .map(|k| {
                            aws_sdk_s3::types::ObjectIdentifier::builder()
                                .key(*k)
                                .build()
                                .unwrap()
                        })
                        .collect(),
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    s3.delete_bucket()
        .bucket("e2e-reports")
        .send()
        .await
        .unwrap();
    let single = support::fixtures::event_bytes("sqs-single.json");
    let body: Value = client
        .post(&url)
        .body(single)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["errorType"], "BatchNotStored", "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("NoSuchBucket"),
        "{body}"
    );

    for secret in &secrets {
        assert!(
            !body.to_string().contains(secret.as_str()),
            "{secret} in the error"
        );
    }
    let logs = emulator.logs();
    assert!(
        logs.contains("report stored"),
        "the function logged: {logs}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret} in the function's output"
        );
    }
}

#[tokio::test]
async fn invalid_configuration_fails_the_invocation_with_every_problem_named() {
    let env = [
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("CORRELATION_MAX_RECEIVES", "zero".to_owned()),
    ];
    let emulator = start_emulator(&env).await;
    let url = emulator.invocations_url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let event = support::fixtures::event_bytes("sqs-single.json");
    let response = client.post(&url).body(event).send().await.unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("REPORT_BUCKET is required"), "{text}");
    assert!(text.contains("CORRELATION_MAX_RECEIVES"), "{text}");
    // The runtime reports the error's type, so CloudWatch names the kind of failure.
    let error: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(error["errorType"], "InvalidConfiguration", "{text}");
}
