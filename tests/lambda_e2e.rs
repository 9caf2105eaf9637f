//! End to end through a real Lambda Runtime API: the built function under cargo-lambda's
//! emulator (`cargo lambda watch`), with moto_server and the Genesys simulator behind it.
//! The invocation goes over HTTP to the emulator, exactly as `cargo lambda invoke` does; the
//! function is the binary cargo built for this test run, started against the emulator's
//! Runtime API (`--only-lambda-apis`), so no second compile happens inside the test.

use std::time::Duration;

use dlq_triage_test_support as support;
use serde_json::Value;
use support::emulator::Emulator;
use support::genesys_sim::{Sim, SimState};
use support::moto::Moto;

async fn start_emulator(env: &[(&str, String)]) -> Emulator {
    Emulator::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_dlq-triage-lambda")),
        env,
    )
    .await
}

/// moto with the bucket `e2e-reports` and the Genesys Cloud secret, the Genesys Cloud
/// simulator, and the function under the emulator configured for them.
async fn function_under_the_emulator() -> (Moto, Sim, aws_sdk_s3::Client, Emulator) {
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
    support::moto::put_secret(
        &sdk,
        "genesys/e2e",
        &format!(
            r#"{{"clientId":"e2e-client","clientSecret":"e2e-secret","apiBase":"{}"}}"#,
            sim.base_url()
        ),
    )
    .await;

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
    (moto, sim, s3, emulator)
}

#[tokio::test]
async fn the_function_under_the_runtime_api_stores_the_batch_and_answers_partial_failures() {
    let (_moto, sim, s3, emulator) = function_under_the_emulator().await;

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
    assert_no_secret_in_objects(&s3, &keys, &secrets).await;

    // A batch whose bucket is gone: nothing can be stored, so the invocation fails with
    // BatchNotStored and SQS keeps the record for redelivery.
    delete_bucket(&s3, &keys).await;
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

    let logs = emulator.logs();
    assert!(
        logs.contains("report stored"),
        "the function logged: {logs}"
    );
    for secret in &secrets {
        assert!(
            !body.to_string().contains(secret.as_str()),
            "{secret} in the error"
        );
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

#[tokio::test]
async fn a_record_of_an_odd_shape_is_triaged_not_a_failed_invocation() {
    // One well-formed record and one whose fields have the wrong types: a typed SQS event
    // would refuse the whole invocation (every record redelivered until quarantine); the
    // function reads each record leniently, stores both and acknowledges both.
    let moto = Moto::start().await;
    let s3 = genesys_dlq_triage::s3_client(&moto.sdk().await, true);
    s3.create_bucket().bucket("odd").send().await.unwrap();
    let env = [
        ("REPORT_BUCKET", "odd".to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    let emulator = start_emulator(&env).await;
    let mut event: Value =
        serde_json::from_slice(&support::fixtures::event_bytes("sqs-single.json")).unwrap();
    let mut odd = event["Records"][0].clone();
    odd["messageId"] = Value::from("0b1e5c55-0000-4000-8000-0000000000dd");
    odd["body"] = Value::from(42);
    odd["attributes"] = Value::from("not an object");
    odd["messageAttributes"]["RULE_ARN"] = serde_json::json!({"stringValue": ["a", "list"]});
    event["Records"].as_array_mut().unwrap().push(odd);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let response = client
        .post(emulator.invocations_url())
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"batchItemFailures": []}),
        "{}",
        emulator.logs()
    );
    let listed = s3.list_objects_v2().bucket("odd").send().await.unwrap();
    let payloads = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| k.contains("/replay/"))
        .count();
    assert_eq!(payloads, 2);
}

/// The built function keeps incidents in DynamoDB through `AWS_ENDPOINT_URL_DYNAMODB`
/// (dynalite) while S3 and EventBridge stay on moto (`AWS_ENDPOINT_URL`), and answers
/// EventBridge's scheduled event with a sweep: the sample batch's dead letters are days
/// old, so the backlog's incidents open; the sweep right after resolves none of them, as
/// they were counted a moment ago (quiet is measured on both clocks).
#[tokio::test]
async fn the_function_opens_incidents_and_its_schedule_resolves_them() {
    let moto = Moto::start().await;
    let dynalite = support::dynalite::Dynalite::start().await;
    dynalite.create_incident_table("incidents").await;
    let sdk = moto.sdk().await;
    genesys_dlq_triage::s3_client(&sdk, true)
        .create_bucket()
        .bucket("e2e-reports")
        .send()
        .await
        .unwrap();
    let env = [
        ("REPORT_BUCKET", "e2e-reports".to_owned()),
        ("INCIDENT_TABLE", "incidents".to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynalite.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    let emulator = start_emulator(&env).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let invoke = |event: Vec<u8>| {
        let request = client.post(emulator.invocations_url()).body(event);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert!(status.is_success(), "{status} {body}");
            body
        }
    };
    let batch = invoke(support::fixtures::event_bytes("sqs-mixed-batch.json")).await;
    assert_eq!(
        batch,
        serde_json::json!({"batchItemFailures": []}),
        "{}",
        emulator.logs()
    );
    let calls = dynalite.calls();
    // A read and a conditional write per new incident.
    let writes = calls.get("PutItem").copied().unwrap_or(0);
    assert!(writes > 1, "one write per incident: {calls:?}");
    assert_eq!(calls.get("GetItem").copied(), Some(writes), "{calls:?}");
    let swept = invoke(support::fixtures::event_bytes("scheduled-sweep.json")).await;
    assert_eq!(swept, serde_json::json!({"resolved": 0, "failed": 0}));
    // It read every open incident on the state index.
    assert!(dynalite.calls().get("Query").copied().unwrap_or(0) >= 2);
}

/// No secret in any of `keys`' objects or their metadata.
async fn assert_no_secret_in_objects(s3: &aws_sdk_s3::Client, keys: &[&str], secrets: &[String]) {
    for key in keys {
        let body = support::moto::s3_object(s3, "e2e-reports", key).await;
        let head = s3
            .head_object()
            .bucket("e2e-reports")
            .key(*key)
            .send()
            .await
            .unwrap();
        let metadata = format!("{:?}", head.metadata());
        for secret in secrets {
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
}

/// Empties the bucket `e2e-reports` of `keys` and deletes it.
async fn delete_bucket(s3: &aws_sdk_s3::Client, keys: &[&str]) {
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
}
