//! The Lambda handler with the real AWS SDK against moto_server (S3, Secrets Manager) and
//! the Genesys simulator, all on 127.0.0.1, in the tests' one world.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use dlq_triage_test_support as support;
use genesys_dlq_triage::{Handler, s3_client};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use support::genesys_sim::{Sim, SimState};
use support::world::{Clock, DeadLetters, World, clock_at};

const BUCKET: &str = "dlq-reports";

/// moto with the report bucket.
async fn world() -> World {
    World::builder().bucket(BUCKET).build().await
}

/// The function's clock: three hours after the mixed batch's last dead letter (a backlog
/// drained late).
fn clock() -> Clock {
    let last = mixed_event()
        .records
        .iter()
        .filter_map(|r| r.attributes.get("SentTimestamp")?.parse().ok())
        .max()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap();
    clock_at(last + chrono::Duration::hours(3))
}

/// A function container of `world` with its bucket, then `vars`, on [`clock`].
fn handler(world: &World, vars: &[(&str, &str)]) -> Handler {
    world.handler(&clock(), vars)
}

fn mixed_event() -> SqsEvent {
    serde_json::from_slice(&support::fixtures::event_bytes("sqs-mixed-batch.json")).unwrap()
}

fn bodies(event: &SqsEvent) -> HashMap<String, String> {
    event
        .records
        .iter()
        .map(|r| (r.message_id.clone().unwrap(), r.body.clone().unwrap()))
        .collect()
}

async fn invoke(h: &Handler, event: SqsEvent, ctx: Context) -> SqsBatchResponse {
    h.handle(LambdaEvent::new(event, ctx)).await.unwrap()
}

fn message_ids(event: &SqsEvent) -> Vec<String> {
    event
        .records
        .iter()
        .map(|r| r.message_id.clone().unwrap())
        .collect()
}

fn failures(r: &SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

fn s3(world: &World) -> aws_sdk_s3::Client {
    s3_client(&world.sdk, true)
}

async fn all_keys(s3: &aws_sdk_s3::Client) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(BUCKET).into_paginator().send();
    while let Some(page) = pages.next().await {
        keys.extend(
            page.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    keys
}

async fn get(s3: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    support::moto::s3_object(s3, BUCKET, key).await
}

/// The payload `replay_key` is JSON, encrypted, with its category and message id in the
/// metadata; the report `json_key`'s Markdown and page beside it have their types, and the
/// page names the report.
async fn assert_stored_as_typed(s3: &aws_sdk_s3::Client, replay_key: &str, json_key: &str) {
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(replay_key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
    let meta = head.metadata().unwrap();
    assert!(
        meta.contains_key("category") && meta.contains_key("message-id"),
        "{meta:?}"
    );
    let md = s3
        .head_object()
        .bucket(BUCKET)
        .key(json_key.replace(".json", ".md"))
        .send()
        .await
        .unwrap();
    assert_eq!(md.content_type(), Some("text/markdown; charset=utf-8"));
    let page_key = json_key.replace(".json", ".html");
    let page = s3
        .head_object()
        .bucket(BUCKET)
        .key(&page_key)
        .send()
        .await
        .unwrap();
    assert_eq!(page.content_type(), Some("text/html; charset=utf-8"));
    let page = String::from_utf8(get(s3, &page_key).await).unwrap();
    assert!(page.contains(&format!("s3://{BUCKET}/{json_key}")));
}

#[tokio::test]
async fn a_batch_lands_in_s3_byte_exact_and_correlated() {
    let world = world().await;
    let sim = Sim::start(SimState::new("lambda-client", "lambda-secret"), 0)
        .await
        .unwrap();
    let s3 = s3(&world);
    support::moto::put_secret(
        &world.sdk,
        "genesys/oauth",
        &format!(
            r#"{{"clientId":"lambda-client","clientSecret":"lambda-secret","apiBase":"{}"}}"#,
            sim.base_url()
        ),
    )
    .await;
    let h = handler(&world, &[("GENESYS_SECRET_ID", "genesys/oauth")]);

    let event = mixed_event();
    let expected = bodies(&event);
    let response = invoke(&h, event.clone(), Context::default()).await;
    assert!(failures(&response).is_empty(), "{:?}", failures(&response));

    let keys = all_keys(&s3).await;
    let replay: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("genesys-dlq/replay/dt="))
        .collect();
    let reports: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("genesys-dlq/reports/dt="))
        .collect();
    assert_eq!(replay.len(), 20, "{keys:?}");
    assert_eq!(reports.len(), 3, "JSON, Markdown and page: {keys:?}");

    let json_key = reports.iter().find(|k| k.ends_with(".json")).unwrap();
    let report: Value = serde_json::from_slice(&get(&s3, json_key).await).unwrap();
    assert_eq!(report["totalFailures"], 20);
    for record in report["records"].as_array().unwrap() {
        let id = record["messageId"].as_str().unwrap();
        let key = record["replayPayloadKey"].as_str().unwrap();
        assert!(key.contains(&format!(
            "/{}/",
            record["failureCategory"].as_str().unwrap()
        )));
        assert_eq!(get(&s3, key).await, expected[id].as_bytes(), "{key}");
        let status = record["interactionInfo"]["status"].as_str().unwrap();
        assert!(status == "found" || status == "noConversation", "{status}");
    }

    assert_stored_as_typed(&s3, replay[0], json_key).await;

    // The same batch again: the secret and the conversations come from the caches.
    let response = invoke(&h, event, Context::default()).await;
    assert!(failures(&response).is_empty());
    assert_eq!(h.secrets().unwrap().reads(), 1);
    assert_eq!(sim.state.stats.detail_requests.load(Ordering::SeqCst), 1);
    assert_eq!(sim.state.stats.token_requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        all_keys(&s3).await.len(),
        20 + 6,
        "payload keys are deterministic; a second report"
    );
}

#[tokio::test]
async fn without_a_secret_id_correlation_is_skipped_and_everything_archived() {
    let world = world().await;
    let s3 = s3(&world);
    let h = handler(&world, &[]);
    let response = invoke(&h, mixed_event(), Context::default()).await;
    assert!(failures(&response).is_empty());
    assert_eq!(
        all_keys(&s3).await.len(),
        23,
        "20 payloads, the report's JSON, Markdown and page"
    );
}

async fn report_of(s3: &aws_sdk_s3::Client) -> Value {
    let keys = all_keys(s3).await;
    let key = keys
        .iter()
        .find(|k| k.contains("/reports/") && k.ends_with(".json"))
        .unwrap();
    serde_json::from_slice(&get(s3, key).await).unwrap()
}

#[tokio::test]
async fn a_missing_secret_makes_correlation_unavailable_but_archives_the_records() {
    let world = world().await;
    let s3 = s3(&world);
    let h = handler(&world, &[("GENESYS_SECRET_ID", "does/not/exist")]);
    let response = invoke(&h, mixed_event(), Context::default()).await;
    assert!(
        failures(&response).is_empty(),
        "a configuration problem is not transient"
    );
    let report = report_of(&s3).await;
    let info = &report["records"][0]["interactionInfo"];
    assert_eq!(info["status"], "unavailable");
    assert!(
        info["error"].as_str().unwrap().contains("does not exist"),
        "{info}"
    );
    assert_eq!(info["transient"], false);
}

#[tokio::test]
async fn a_secret_that_is_not_json_is_a_clear_reason_and_never_leaks() {
    let world = world().await;
    let s3 = s3(&world);
    support::moto::put_secret(&world.sdk, "genesys/bad", "clientSecret=hunter2-value").await;
    let h = handler(&world, &[("GENESYS_SECRET_ID", "genesys/bad")]);
    let response = invoke(&h, mixed_event(), Context::default()).await;
    assert!(failures(&response).is_empty());
    let report = report_of(&s3).await;
    let error = report["records"][0]["interactionInfo"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("not a JSON object"), "{error}");
    assert!(!report.to_string().contains("hunter2-value"));
}

#[tokio::test]
async fn a_missing_bucket_fails_the_invocation_so_the_outage_is_seen() {
    let world = World::builder().build().await;
    let h = handler(&world, &[("REPORT_BUCKET", BUCKET)]);
    let error = h
        .handle(LambdaEvent::new(mixed_event(), Context::default()))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "BatchNotStored");
    assert!(error.to_string().contains("NoSuchBucket"), "{error}");
}

#[tokio::test]
async fn a_denied_payload_prefix_for_every_record_is_an_outage_too() {
    let (world, denied) = world_with_denied_prefix("genesys-dlq/replay/*").await;
    let h = handler_through(&world, &denied, &[]);
    let error = h
        .handle(LambdaEvent::new(mixed_event(), Context::default()))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "BatchNotStored", "{error}");
}

#[tokio::test]
async fn the_deadline_guard_returns_what_it_cannot_start() {
    let world = world().await;
    let s3 = s3(&world);
    let h = handler(&world, &[("DEADLINE_MARGIN_MS", "5000")]);
    let event = mixed_event();
    let all = message_ids(&event);
    let mut ctx = Context::default();
    ctx.deadline = (chrono::Utc::now().timestamp_millis() + 2_000) as u64;
    let response = invoke(&h, event, ctx).await;
    assert_eq!(failures(&response), all);
    let report = report_of(&s3).await;
    assert!(report["records"].as_array().unwrap().iter().all(|r| {
        r["disposition"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("deadline")
    }));
    assert!(
        all_keys(&s3).await.iter().all(|k| k.contains("/reports/")),
        "no payload started"
    );
}

#[tokio::test]
async fn transient_genesys_failures_return_records_until_the_receive_budget() {
    let world = world().await;
    let sim = Sim::start(SimState::new("c", "s"), 0).await.unwrap();
    sim.state.fail_5xx.store(u64::MAX / 2, Ordering::SeqCst);
    *sim.state.retry_after.lock().unwrap() = Some("0".into());
    let s3 = s3(&world);
    support::moto::put_secret(
        &world.sdk,
        "g",
        &format!(
            r#"{{"clientId":"c","clientSecret":"s","apiBase":"{}"}}"#,
            sim.base_url()
        ),
    )
    .await;
    let h = handler(
        &world,
        &[("GENESYS_SECRET_ID", "g"), ("CORRELATION_BUDGET_MS", "300")],
    );
    let event = mixed_event();
    let response = invoke(&h, event.clone(), Context::default()).await;
    let report = report_of(&s3).await;
    let with_conversation: Vec<String> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["interactionId"].is_null())
        .map(|r| r["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(with_conversation.len(), 16);
    // Receive counts in the sample are 1 (and one 2): below the budget of 3.
    assert_eq!(failures(&response), with_conversation);

    // The third delivery: archived as unavailable instead of returned again.
    let mut late = event;
    for r in &mut late.records {
        r.attributes
            .insert("ApproximateReceiveCount".into(), "3".into());
    }
    let response = invoke(&h, late, Context::default()).await;
    assert!(failures(&response).is_empty(), "{:?}", failures(&response));
}

/// moto enforcing IAM with the report bucket, and the SDK configuration of a user denied
/// writes to one category's prefix.
async fn world_with_denied_prefix(denied: &str) -> (World, aws_config::SdkConfig) {
    // Exactly four unauthenticated set-up calls: bucket, user, policy, access key.
    let world = World::builder()
        .moto_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "4")])
        .bucket(BUCKET)
        .build()
        .await;
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": format!("arn:aws:s3:::{BUCKET}/*")},
            {"Effect": "Deny", "Action": ["s3:PutObject"], "Resource": format!("arn:aws:s3:::{BUCKET}/{denied}")},
        ]
    });
    let (access, secret) = support::moto::user_with_policy(&world.sdk, "triage", &policy).await;
    let sdk = world.sdk_signed_as(&access, &secret);
    (world, sdk)
}

/// A function container of `world` calling AWS through `sdk`, with the bucket, then
/// `vars`, on [`clock`].
fn handler_through(world: &World, sdk: &aws_config::SdkConfig, vars: &[(&str, &str)]) -> Handler {
    world.handler_through(sdk, world.config(vars), Some(&clock()))
}

#[tokio::test]
async fn a_denied_key_returns_exactly_the_affected_records() {
    let (world, denied) =
        world_with_denied_prefix("genesys-dlq/replay/*/PAYLOAD_MALFORMED/*").await;
    let h = handler_through(&world, &denied, &[]);
    let response = invoke(&h, mixed_event(), Context::default()).await;
    // The three PAYLOAD_MALFORMED records of the sample (golden file), nothing else.
    let golden = support::fixtures::golden("sqs-mixed-batch.json");
    let expected: Vec<String> = golden["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["failureCategory"] == "PAYLOAD_MALFORMED")
        .map(|r| r["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(expected.len(), 3);
    assert_eq!(failures(&response), expected);
}

#[tokio::test]
async fn on_a_fifo_queue_a_failure_returns_the_later_records_of_its_group_only() {
    let (world, denied) =
        world_with_denied_prefix("genesys-dlq/replay/*/PAYLOAD_MALFORMED/*").await;
    let h = handler_through(&world, &denied, &[]);
    let mut event = mixed_event();
    let group = |i: usize| {
        if i.is_multiple_of(3) {
            "calls"
        } else {
            "chats"
        }
    };
    for (i, r) in event.records.iter_mut().enumerate() {
        r.event_source_arn = Some("arn:aws:sqs:us-east-1:111122223333:genesys-dlq.fifo".into());
        r.attributes
            .insert("MessageGroupId".into(), group(i).into());
    }
    // The PAYLOAD_MALFORMED records (golden file) cannot be stored; each holds back the
    // later records of its own group.
    let golden = support::fixtures::golden("sqs-mixed-batch.json");
    let mut failed_groups = std::collections::HashSet::new();
    let mut expected = Vec::new();
    for (i, r) in golden["records"].as_array().unwrap().iter().enumerate() {
        if failed_groups.contains(group(i)) || r["failureCategory"] == "PAYLOAD_MALFORMED" {
            failed_groups.insert(group(i));
            expected.push(event.records[i].message_id.clone().unwrap());
        }
    }
    assert!(
        expected.len() > 3 && expected.len() < event.records.len(),
        "{expected:?}"
    );
    let response = invoke(&h, event, Context::default()).await;
    assert_eq!(failures(&response), expected);
}

#[tokio::test]
async fn hung_s3_and_secrets_manager_cannot_outlast_the_deadline() {
    let world = world().await;
    let hole = support::net::black_hole().await;
    // Every service the function may call hangs (S3 and Secrets Manager first, then the
    // target look-ups' EventBridge), not only the two the batch needs first.
    let services = [
        "s3",
        "secrets-manager",
        "eventbridge",
        "sqs",
        "lambda",
        "iam",
        "kms",
        "sns",
        "dynamodb",
        "cloudwatch",
    ];
    let moved: Vec<(&str, &str)> = services.iter().map(|s| (*s, hole.as_str())).collect();
    let hung = world.sdk_routing(&moved).await;
    let h = handler_through(
        &world,
        &hung,
        &[
            ("GENESYS_SECRET_ID", "genesys/prod"),
            ("DEADLINE_MARGIN_MS", "2000"),
        ],
    );
    let mut ctx = Context::default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    ctx.deadline = (chrono::Utc::now().timestamp_millis() + 8_000) as u64;
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        h.handle(LambdaEvent::new(mixed_event(), ctx)),
    )
    .await
    .expect("the invocation returned");
    assert!(
        std::time::Instant::now() < deadline,
        "returned before the deadline"
    );
    let error = result.unwrap_err();
    assert_eq!(error.error_type(), "BatchNotStored");
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn the_report_says_when_the_failed_target_transforms_its_input() {
    let world = world().await;
    let s3 = s3(&world);
    let target_arn = "arn:aws:sqs:us-east-1:123456789012:crm-intake";
    let rule_arn = support::moto::rule_with_target(
        &world.events(),
        None,
        "to-crm",
        r#"{"source":[{"prefix":"aws.partner/"}]}"#,
        aws_sdk_eventbridge::types::Target::builder()
            .id("crm")
            .arn(target_arn)
            .input_transformer(
                aws_sdk_eventbridge::types::InputTransformer::builder()
                    .input_paths_map("c", "$.detail.eventBody.conversationId")
                    .input_template(r#"{"conversation": <c>}"#)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
    )
    .await;
    let clock = clock();
    let sent = DateTime::from_timestamp_millis(clock.load(Ordering::SeqCst)).unwrap()
        - chrono::Duration::hours(3);
    let event: SqsEvent = DeadLetters::new(1, sent, |_| "m-transform".to_owned())
        .attribute("RULE_ARN", &rule_arn)
        .attribute("TARGET_ARN", target_arn)
        .event();

    let h = world.handler(&clock, &[]);
    let response = invoke(&h, event, Context::default()).await;
    assert!(failures(&response).is_empty());

    let keys = all_keys(&s3).await;
    let json_key = keys
        .iter()
        .find(|k| k.ends_with(".json") && k.contains("/reports/"))
        .unwrap();
    let report: Value = serde_json::from_slice(&get(&s3, json_key).await).unwrap();
    assert_eq!(
        report["summary"]["targetInputs"][target_arn], "InputTransformer",
        "{}",
        report["summary"]
    );
    let md = String::from_utf8(get(&s3, &json_key.replace(".json", ".md")).await).unwrap();
    assert!(
        md.contains("The target transforms its input (InputTransformer)"),
        "{md}"
    );
    assert!(md.contains("--to-target"), "{md}");

    // Rules that cannot be read (unknown here) leave the report as it was: best effort.
    let response = invoke(&h, mixed_event(), Context::default()).await;
    assert!(failures(&response).is_empty());
}

#[tokio::test]
async fn a_stored_report_is_announced_on_the_notification_bus() {
    // The bus `triage-notices`, its rule forwarding the tool's report events to a queue.
    let world = World::builder()
        .bucket(BUCKET)
        .bus("triage-notices")
        .channel("incident-channel", "to-the-channel", "DLQ Triage Report")
        .build()
        .await;
    let s3 = s3(&world);
    let h = handler(&world, &[]);
    let response = invoke(&h, mixed_event(), Context::default()).await;
    assert!(failures(&response).is_empty());

    let messages = world.channel().bodies().await;
    assert_eq!(messages.len(), 1, "one event per report");
    let event: Value = serde_json::from_str(&messages[0]).unwrap();
    assert_eq!(event["source"], "genesys-dlq-triage");
    assert_eq!(event["detail-type"], "DLQ Triage Report");
    let detail = &event["detail"];
    assert_eq!(detail["totalFailures"], 20);
    assert_eq!(detail["byCategory"]["RATE_LIMIT_EXCEEDED"], 4);
    assert_eq!(detail["topIncidents"][0]["category"], "RATE_LIMIT_EXCEEDED");
    let json_uri = detail["report"]["json"].as_str().unwrap();
    let key = json_uri
        .strip_prefix(&format!("s3://{BUCKET}/"))
        .expect("the report's S3 URI");
    assert!(all_keys(&s3).await.contains(&key.to_owned()), "{key}");
}

#[tokio::test]
async fn a_refused_notification_acknowledges_the_same_records() {
    let (world, denied) =
        world_with_denied_prefix("genesys-dlq/replay/*/PAYLOAD_MALFORMED/*").await;
    let without = handler_through(&world, &denied, &[]);
    let expected = failures(&invoke(&without, mixed_event(), Context::default()).await);
    assert!(!expected.is_empty(), "the denied prefix returns records");
    // The same user, with a bus to notify that it may not put events on (and that does
    // not exist): the report is stored and the same records go back.
    let with = handler_through(&world, &denied, &[("NOTIFY_EVENT_BUS", "triage-notices")]);
    let got = failures(&invoke(&with, mixed_event(), Context::default()).await);
    assert_eq!(got, expected);
}
