//! Incidents on real components: the function's handler (and the CLI) with S3, SQS and
//! EventBridge on moto and DynamoDB on dynalite, which serialises conditional writes as
//! DynamoDB does (the race tests need that; moto's DynamoDB is no judge of them). The
//! events are captured by a real EventBridge rule sending them to an SQS queue on moto.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Duration, Utc};
use dlq_triage_test_support as support;
use genesys_dlq_triage::{Handler, Response, RuleContext, TargetInput, apply_input_transformation};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use support::cli::{output, text};
use support::dynalite::Dynalite;
use support::sqs::Queue;
use support::world::{Clock, DeadLetters, World, clock_at, lambda_config};

use aws_sdk_dynamodb::types::AttributeValue;
use genesys_dlq_triage::incidents::*;

/// The incident stories, written once for every `IncidentTable` (run on DynamoDB below,
/// on the in-memory twin by the unit tests).
#[path = "../src/incidents/scenarios.rs"]
mod scenarios;

const BUCKET: &str = "triage-reports";
const BUS: &str = "triage-notices";
const TABLE: &str = "incidents";
const API: &str = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/7e08279e";
/// The partner bus of the sample's rule (`to-crm`).
const PARTNER_BUS: &str =
    "aws.partner/genesys.com/cloud/cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721/prod-events";

/// moto for S3, SQS and EventBridge, dynalite for DynamoDB, CloudWatch's stand-in (moto's
/// server does not speak the SDK's CBOR protocol), a bus whose rule forwards every incident
/// event of the tool to a queue.
async fn world() -> World {
    World::builder()
        .incident_table(TABLE)
        .cloudwatch()
        .bucket(BUCKET)
        .bus(BUS)
        .channel("incident-channel", "to-the-channel", "DLQ Triage Incident")
        .build()
        .await
}

/// The incident events the rule forwarded so far, in seq order per incident.
async fn incident_events(world: &World) -> Vec<Value> {
    let mut events = world.channel_events().await;
    events.sort_by_key(|e| {
        (
            e["detail"]["incidentKey"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            e["detail"]["seq"].as_u64(),
        )
    });
    events
}

/// When the tests' dead letters begin: 09:00 UTC two days before the real clock's date
/// (so a storm of a few hours stays within one day), read once. The CloudWatch stand-in
/// keeps CloudWatch's retention by the real clock, as CloudWatch does: a fixed date would
/// put the health a storm's resolution carries out of reach once older than the retention.
fn start_time() -> DateTime<Utc> {
    static START: std::sync::LazyLock<DateTime<Utc>> = std::sync::LazyLock::new(|| {
        let day = (Utc::now() - Duration::days(2)).date_naive();
        day.and_hms_opt(9, 0, 0).unwrap().and_utc()
    });
    *START
}

/// `start_time()` as the events and commands write it.
fn start_text() -> String {
    start_time().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `n` dead letters against `target`, dead-lettered at `at`, with ids `<tag>-<i>`.
fn batch(tag: &str, n: usize, target: &str, at: DateTime<Utc>) -> SqsEvent {
    DeadLetters::new(n, at, |i| format!("{tag}-{i}"))
        .attribute("TARGET_ARN", target)
        .event()
}

async fn invoke(h: &Handler, event: SqsEvent) -> SqsBatchResponse {
    h.handle(LambdaEvent::new(event, Context::default()))
        .await
        .unwrap()
}

fn failures(r: &SqsBatchResponse) -> usize {
    serde_json::to_value(r).unwrap()["batchItemFailures"]
        .as_array()
        .unwrap()
        .len()
}

async fn sweep(h: &Handler) -> (usize, usize) {
    let scheduled: Value =
        serde_json::from_slice(&support::fixtures::event_bytes("scheduled-sweep.json")).unwrap();
    let event = serde_json::from_value(scheduled).expect("the scheduled event is an invocation");
    match h
        .handle_invocation(LambdaEvent::new(event, Context::default()))
        .await
        .unwrap()
    {
        Response::Sweep { resolved, failed } => (resolved, failed),
        other => panic!("not a sweep: {other:?}"),
    }
}

fn transitions(events: &[Value]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| {
            (
                e["detail"]["transition"].as_str().unwrap().to_owned(),
                e["detail"]["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sixteen_invocations_meeting_a_new_incident_at_once_open_it_once() {
    let world = world().await;
    let clock = clock_at(start_time());
    // Three new incidents, one after the other, each met by 16 containers at once.
    for round in 0..3 {
        let target = format!("{API}-{round}");
        let handlers: Vec<Handler> = (0..16).map(|_| world.handler(&clock, &[])).collect();
        let invocations = handlers.iter().enumerate().map(|(i, h)| {
            invoke(
                h,
                batch(&format!("r{round}-h{i}"), 2, &target, start_time()),
            )
        });
        for response in futures::future::join_all(invocations).await {
            assert_eq!(failures(&response), 0);
        }
        let events = incident_events(&world).await;
        assert_eq!(
            transitions(&events),
            [("opened".to_owned(), 1)],
            "round {round}"
        );
        assert_eq!(events[0]["detail"]["targetArn"], json!(target));
    }
    // The table holds every batch's count.
    let db = world.dynamodb();
    let items = db.scan().table_name(TABLE).send().await.unwrap();
    for item in items.items() {
        assert_eq!(item["count"].as_n().unwrap(), "32");
    }
}

#[tokio::test]
async fn two_sweeps_at_once_resolve_an_incident_once() {
    let world = world().await;
    let clock = clock_at(start_time());
    let h = world.handler(&clock, &[]);
    invoke(&h, batch("a", 3, API, start_time())).await;
    assert_eq!(
        transitions(&incident_events(&world).await),
        [("opened".into(), 1)]
    );
    clock.store(
        (start_time() + Duration::minutes(16)).timestamp_millis(),
        Ordering::SeqCst,
    );
    let (a, b) = (world.handler(&clock, &[]), world.handler(&clock, &[]));
    let (x, y) = tokio::join!(sweep(&a), sweep(&b));
    assert_eq!(x.0 + y.0, 1, "{x:?} {y:?}");
    let events = incident_events(&world).await;
    assert_eq!(transitions(&events), [("resolved".into(), 2)]);
    assert_eq!(events[0]["detail"]["resolvedBy"], "quiet period");
}

/// EventBridge's own counts for the rule through the storm: 600 invocations a minute
/// under {EventBusName, RuleName}, and the 300 dead letters under {RuleName} alone (the
/// set the EventBridge guide lists the DLQ metrics under).
async fn put_storm_metrics(world: &World) {
    let on_bus = [("EventBusName", PARTNER_BUS), ("RuleName", "to-crm")];
    for minute in (0..120).step_by(10) {
        let at = (start_time() + Duration::minutes(minute)).timestamp();
        world.put_metric("Invocations", &on_bus, at, 600.0).await;
        world
            .put_metric("InvocationsSentToDlq", &[("RuleName", "to-crm")], at, 25.0)
            .await;
    }
}

/// 60 batches of one incident over two simulated hours: one `opened`, at most four
/// `updated`, then after the quiet period one `resolved`; a failure after that reopens it
/// with the next seq. The routing examples of template.yaml turn these events into the
/// PagerDuty bodies they promise.
#[tokio::test]
async fn a_storm_opens_once_updates_at_most_four_times_resolves_once_and_reopens() {
    let world = world().await;
    let clock = clock_at(start_time());
    let h = world.handler(&clock, &[]);
    put_storm_metrics(&world).await;
    for i in 0..60 {
        let at = start_time() + Duration::minutes(2 * i);
        clock.store(at.timestamp_millis(), Ordering::SeqCst);
        let response = invoke(&h, batch(&format!("storm-{i}"), 5, API, at)).await;
        assert_eq!(failures(&response), 0);
    }
    let storm = incident_events(&world).await;
    let kinds: Vec<String> = transitions(&storm).into_iter().map(|t| t.0).collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("opened"), 1, "{kinds:?}");
    // At most one per 30 minutes of the clock: at minutes 30, 60 and 90 of the 118.
    assert_eq!(count("updated"), 3, "{kinds:?}");
    assert_eq!(kinds.len(), 1 + count("updated"));
    let last = storm.last().unwrap()["detail"].clone();
    assert!(last["countSinceLastEvent"].as_u64().unwrap() > 0);

    // Quiet: the sweep before the quiet period resolves nothing, after it one.
    let end = start_time() + Duration::minutes(118);
    clock.store(
        (end + Duration::minutes(10)).timestamp_millis(),
        Ordering::SeqCst,
    );
    assert_eq!(sweep(&h).await, (0, 0));
    clock.store(
        (end + Duration::minutes(16)).timestamp_millis(),
        Ordering::SeqCst,
    );
    assert_eq!(sweep(&h).await, (1, 0));
    let resolved = incident_events(&world).await;
    assert_eq!(resolved.len(), 1);
    let d = &resolved[0]["detail"];
    assert_eq!(d["transition"], "resolved");
    assert_eq!(d["count"], 300);
    assert_eq!(d["total"], 300);
    assert_eq!(d["durationSeconds"], 118 * 60);
    assert_eq!(d["peakPerMinute"], 5);
    // The target's health over the incident rides along.
    let health = &d["health"];
    assert_eq!(health["rules"][0]["ruleName"], "to-crm");
    assert_eq!(health["rules"][0]["metrics"]["Invocations"], 7200.0);
    assert_eq!(health["rules"][0]["metrics"]["InvocationsSentToDlq"], 300.0);
    assert_eq!(
        health["rules"][0]["foundUnder"]["InvocationsSentToDlq"],
        "RuleName"
    );
    assert!(
        health["rules"][0]["missed"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    let seq = d["seq"].as_u64().unwrap();
    assert_eq!(seq as usize, storm.len() + 1);

    let after = end + Duration::minutes(40);
    clock.store(after.timestamp_millis(), Ordering::SeqCst);
    invoke(&h, batch("again", 2, API, after)).await;
    let again = incident_events(&world).await;
    assert_eq!(transitions(&again), [("reopened".into(), seq + 1)]);
    assert_eq!(again[0]["detail"]["episode"], seq + 1);

    check_routing_examples(&storm[0], &resolved[0], &again[0]);
}

/// The event detail a pager and a chat message need, and its limits.
#[tokio::test]
async fn the_opened_event_carries_what_a_pager_needs() {
    let world = world().await;
    let clock = clock_at(start_time());
    let h = world.handler(&clock, &[]);
    invoke(&h, batch("p", 4, API, start_time())).await;
    let events = incident_events(&world).await;
    let d = &events[0]["detail"];
    assert_eq!(events[0]["source"], "genesys-dlq-triage");
    assert_eq!(events[0]["detail-type"], "DLQ Triage Incident");
    assert!(
        d["incidentKey"]
            .as_str()
            .unwrap()
            .starts_with("ENDPOINT_UNREACHABLE-")
    );
    assert_eq!(d["state"], "open");
    assert_eq!(d["category"], "ENDPOINT_UNREACHABLE");
    assert_eq!(d["count"], 4);
    assert_eq!(d["countSinceLastEvent"], 4);
    assert_eq!(d["firstSeen"], start_text());
    assert_eq!(d["rules"].as_array().unwrap().len(), 1);
    assert_eq!(d["errorCodes"], json!(["UNKNOWN"]));
    assert!(d["sampleErrors"][0].as_str().unwrap().contains("Timeout"));
    let json_uri = d["report"]["json"].as_str().unwrap();
    assert!(json_uri.starts_with(&format!("s3://{BUCKET}/genesys-dlq/reports/")));
    // The page beside it: the pager's link opens the report in a browser.
    assert_eq!(d["report"]["html"], json_uri.replace(".json", ".html"));
    assert!(
        d["report"]["consoleLinks"]["html"]
            .as_str()
            .unwrap()
            .ends_with(".html")
    );
    assert!(
        d["report"]["consoleLinks"]["json"]
            .as_str()
            .unwrap()
            .starts_with("https://console.aws.amazon.com/s3/object/")
    );
    let replay = d["commands"]["replay"].as_str().unwrap();
    assert!(replay.starts_with(&format!("dlq-triage replay s3://{BUCKET}/genesys-dlq/")));
    assert!(replay.contains("--category ENDPOINT_UNREACHABLE"));
    assert!(
        replay.contains(&format!("--since {}", start_text())),
        "{replay}"
    );
    let summary = d["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Opened: ENDPOINT_UNREACHABLE against"),
        "{summary}"
    );
    assert!(summary.chars().count() <= 1024 && !summary.contains('\n'));
}

/// The incident table missing, throttled or hung: every record is stored and acknowledged
/// as without the table.
#[tokio::test]
async fn a_table_that_is_missing_throttled_or_hung_changes_nothing_acknowledged() {
    let world = world().await;
    let clock = clock_at(start_time());
    let without = world.handler_for(lambda_config(&[("REPORT_BUCKET", BUCKET)]), None);
    let expected = failures(&invoke(&without, batch("w", 5, API, start_time())).await);

    let missing = world.handler(&clock, &[("INCIDENT_TABLE", "no-such-table")]);
    assert_eq!(
        failures(&invoke(&missing, batch("m", 5, API, start_time())).await),
        expected
    );

    world.dynalite().throttle(true);
    let throttled = world.handler(&clock, &[]);
    assert_eq!(
        failures(&invoke(&throttled, batch("t", 5, API, start_time())).await),
        expected
    );
    world.dynalite().throttle(false);

    let hole = support::net::black_hole().await;
    let hung_sdk = world.sdk_routing(&[("dynamodb", &hole)]).await;
    let hung = Handler::from_sdk(world.config(&[]), &hung_sdk, true, "triage");
    let started = std::time::Instant::now();
    assert_eq!(
        failures(&invoke(&hung, batch("h", 5, API, start_time())).await),
        expected
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded: {:?}",
        started.elapsed()
    );
    assert!(
        incident_events(&world).await.is_empty(),
        "no transition was won"
    );
}

/// One conditional write per incident of a batch, not per record: a 10,000-record batch
/// of three new incidents costs a read and a write each, and a write each once its event
/// is put (emptying the outbox); the next batch one write each.
#[tokio::test]
async fn a_batch_costs_one_write_per_incident() {
    let world = world().await;
    let clock = clock_at(start_time() + Duration::hours(3));
    let h = world.handler(&clock, &[]);
    let mut records = Vec::new();
    for (i, target) in ["a", "b", "c"].iter().enumerate() {
        let part = batch(
            &format!("big{i}"),
            3334,
            &format!("{API}-{target}"),
            start_time(),
        );
        records.extend(part.records);
    }
    records.truncate(10_000);
    let mut event = batch("x", 0, API, start_time());
    event.records = records;
    world.dynalite().reset_calls();
    assert_eq!(failures(&invoke(&h, event.clone()).await), 0);
    assert_eq!(
        world.dynalite().calls(),
        [("GetItem".to_owned(), 3), ("PutItem".to_owned(), 6)].into()
    );
    assert_eq!(incident_events(&world).await.len(), 3);
    world.dynalite().reset_calls();
    for r in &mut event.records {
        r.message_id = r.message_id.as_ref().map(|id| format!("{id}-again"));
    }
    assert_eq!(failures(&invoke(&h, event).await), 0);
    assert_eq!(world.dynalite().calls(), [("PutItem".to_owned(), 3)].into());
}

/// One dead letter against `API` at the start time, through a container telling the time
/// by `clock`: the container and the incident's key.
async fn first_incident(world: &World, clock: &Clock) -> (Handler, String) {
    let h = world.handler(clock, &[]);
    invoke(&h, batch("first", 1, API, start_time())).await;
    let key = incident_events(world).await[0]["detail"]["incidentKey"]
        .as_str()
        .unwrap()
        .to_owned();
    (h, key)
}

/// An item edited by hand (a count that is text) while its episode is open is rewritten
/// from the batch, on the condition that it is still the item read, and named in the log;
/// the batch is acknowledged and no second `opened` is announced.
#[tokio::test]
async fn an_item_that_cannot_be_read_is_rewritten_without_a_second_page() {
    let world = world().await;
    let clock = clock_at(start_time() + Duration::hours(2));
    let (_, key) = first_incident(&world, &clock).await;
    set_attribute(&world, &key, "count", AttributeValue::S("many".into())).await;
    // Read through the adapter: unreadable, saying what is wrong as the log says it.
    let table = DynamoTable::new(world.dynamodb(), TABLE);
    match table.get(&key).await.unwrap() {
        Some(Stored::Unreadable { why, salvage }) => {
            assert_eq!(why.to_string(), "count is not a number");
            assert_eq!((salvage.state, salvage.seq), (Some(State::Open), 1));
        }
        other => panic!("{other:?}"),
    }
    let fresh = world.handler(&clock, &[]);
    let later = start_time() + Duration::minutes(1);
    assert_eq!(
        failures(&invoke(&fresh, batch("second", 2, API, later)).await),
        0
    );
    assert!(incident_events(&world).await.is_empty(), "no second page");
    let item = raw_item(&world, &key).await;
    assert_eq!(item["count"].as_n().unwrap(), "2");
    assert_eq!(item["seq"].as_n().unwrap(), "1");
    assert_eq!(item["episode"].as_n().unwrap(), "1");
}

/// A stale binary meets an item a newer version wrote (`itemVersion` above its own): its
/// write fails, named, and the item is left as it was; the batch is acknowledged.
#[tokio::test]
async fn a_stale_binarys_write_to_a_newer_item_fails_without_rewriting_it() {
    let world = world().await;
    let clock = clock_at(start_time() + Duration::hours(2));
    let (h, key) = first_incident(&world, &clock).await;
    set_attribute(&world, &key, "itemVersion", AttributeValue::N("3".into())).await;
    let before = raw_item(&world, &key).await;
    // The process that knew the item, and one that did not.
    for (h, tag) in [(&h, "known"), (&world.handler(&clock, &[]), "new")] {
        let later = start_time() + Duration::minutes(40);
        assert_eq!(failures(&invoke(h, batch(tag, 2, API, later)).await), 0);
    }
    assert_eq!(raw_item(&world, &key).await, before, "left as it was");
    assert!(incident_events(&world).await.is_empty());
}

/// An incident the previous layout (`itemVersion` 1: no `rev`, episodes or outbox) left
/// open when this version is deployed goes on: a batch counts into it without a second
/// page, and the sweep resolves it with the dedup key its page had (the incident's key),
/// so that PagerDuty closes it.
#[tokio::test]
async fn an_incident_the_previous_layout_left_open_goes_on_and_resolves_its_page() {
    let world = world().await;
    let clock = clock_at(start_time() + Duration::hours(2));
    let (_, key) = first_incident(&world, &clock).await;
    // As the previous version wrote it.
    let db = world.dynamodb();
    db.update_item()
        .table_name(TABLE)
        .key("incidentKey", AttributeValue::S(key.clone()))
        .update_expression(
            "SET itemVersion = :one REMOVE rev, episode, announcedSeq, outbox, lastCounted, perHour",
        )
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    // A new container meets it: counted in, no page.
    let h = world.handler(&clock, &[]);
    let later = start_time() + Duration::minutes(10);
    assert_eq!(
        failures(&invoke(&h, batch("later", 2, API, later)).await),
        0
    );
    assert!(incident_events(&world).await.is_empty());
    let item = raw_item(&world, &key).await;
    assert_eq!(item["count"].as_n().unwrap(), "3");
    assert_eq!(item["itemVersion"].as_n().unwrap(), "2");
    assert_eq!(item["rev"].as_n().unwrap(), "1");
    // Quiet on both clocks: resolved once, on the page's own dedup key.
    clock.store(
        (start_time() + Duration::hours(2) + Duration::minutes(16)).timestamp_millis(),
        Ordering::SeqCst,
    );
    assert_eq!(sweep(&world.handler(&clock, &[])).await, (1, 0));
    let events = incident_events(&world).await;
    assert_eq!(transitions(&events), [("resolved".to_owned(), 2)]);
    assert_eq!(events[0]["detail"]["dedupKey"], key.as_str());
    assert_eq!(events[0]["detail"]["episode"], 0);
}

async fn set_attribute(world: &World, key: &str, name: &str, value: AttributeValue) {
    let db = world.dynamodb();
    db.update_item()
        .table_name(TABLE)
        .key("incidentKey", AttributeValue::S(key.to_owned()))
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", name)
        .expression_attribute_values(":v", value)
        .send()
        .await
        .unwrap();
}

async fn raw_item(world: &World, key: &str) -> std::collections::HashMap<String, AttributeValue> {
    let db = world.dynamodb();
    db.get_item()
        .table_name(TABLE)
        .key("incidentKey", AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
        .unwrap()
}

/// Two incidents opened by the function: 3 dead letters against `API`, 1 against another
/// target. The first one's key.
async fn two_open_incidents(world: &World) -> String {
    let clock = clock_at(start_time());
    let h = world.handler(&clock, &[]);
    invoke(&h, batch("one", 3, API, start_time())).await;
    invoke(&h, batch("two", 1, &format!("{API}-other"), start_time())).await;
    let opened = incident_events(world).await;
    opened[0]["detail"]["incidentKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `dlq-triage incidents` lists the table and resolves one by hand, through
/// `AWS_ENDPOINT_URL_DYNAMODB` while EventBridge stays on moto.
#[tokio::test]
async fn the_cli_lists_incidents_and_resolves_one_by_hand() {
    let world = world().await;
    let key = two_open_incidents(&world).await;
    let cli = |args: &[&str]| {
        let mut cmd = world.cli(args);
        cmd.env("NOTIFY_EVENT_BUS", BUS);
        cmd
    };
    let listed = output(cli(&["incidents", "--table", TABLE, "--json"])).await;
    assert!(listed.status.success(), "{}", text(&listed));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        listed[0]["replayCommand"]
            .as_str()
            .unwrap()
            .contains("--to-target")
    );

    let resolved = output(cli(&["incidents", "resolve", &key, "--table", TABLE])).await;
    assert!(resolved.status.success(), "{}", text(&resolved));
    let events = incident_events(&world).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["transition"], "resolved");
    assert_eq!(events[0]["detail"]["resolvedBy"], "hand");
    let again = output(cli(&["incidents", "resolve", &key, "--table", TABLE])).await;
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not open"));

    let open = output(cli(&["incidents", "--table", TABLE])).await;
    let open = String::from_utf8_lossy(&open.stdout).into_owned();
    assert_eq!(
        open.lines().filter(|l| l.contains(" open ")).count(),
        1,
        "{open}"
    );
}

/// `incidents resolve` knowing no bucket (neither `--bucket` nor `REPORT_BUCKET`) puts
/// events whose commands say `REPORTS` where an incident names no report of its own —
/// never `s3:///…`, an address that leads nowhere — and says once on stderr why; with
/// `--bucket` they name it, and nothing is said.
#[tokio::test]
async fn without_a_bucket_the_cli_puts_no_address_that_leads_nowhere() {
    let world = world().await;
    two_open_incidents(&world).await;
    let cli = |args: &[&str]| {
        let mut cmd = world.cli(args);
        cmd.env("NOTIFY_EVENT_BUS", BUS).env_remove("REPORT_BUCKET");
        cmd
    };
    let listed = output(cli(&["incidents", "--table", TABLE, "--json"])).await;
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let keys: Vec<String> = (listed.as_array().unwrap().iter())
        .map(|i| i["incidentKey"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2);
    // As an item that names no report has it (one of layout 1, say).
    for key in &keys {
        world
            .dynamodb()
            .update_item()
            .table_name(TABLE)
            .key("incidentKey", AttributeValue::S(key.clone()))
            .update_expression("REMOVE reportJson, reportMarkdown, reportHtml")
            .send()
            .await
            .unwrap();
    }

    let resolved = output(cli(&["incidents", "resolve", &keys[0], "--table", TABLE])).await;
    assert!(resolved.status.success(), "{}", text(&resolved));
    let stderr = String::from_utf8_lossy(&resolved.stderr);
    assert_eq!(
        stderr
            .matches("dlq-triage: no bucket is known (--bucket, REPORT_BUCKET): the events carry no report link")
            .count(),
        1,
        "{stderr}"
    );
    let events = incident_events(&world).await;
    assert_eq!(events.len(), 1);
    let detail = &events[0]["detail"];
    assert!(!detail.to_string().contains("s3:"), "{detail}");
    assert_eq!(detail["report"], Value::Null);
    for (command, verb) in [("summarize", "summarize"), ("replay", "replay")] {
        let line = detail["commands"][command].as_str().unwrap();
        assert!(
            line.starts_with(&format!("dlq-triage {verb} REPORTS --category ")),
            "{line}"
        );
    }

    let named = output(cli(&[
        "incidents",
        "resolve",
        &keys[1],
        "--table",
        TABLE,
        "--bucket",
        BUCKET,
    ]))
    .await;
    assert!(named.status.success(), "{}", text(&named));
    assert!(
        !String::from_utf8_lossy(&named.stderr).contains("no bucket"),
        "{}",
        text(&named)
    );
    let events = incident_events(&world).await;
    assert_eq!(events.len(), 1);
    let line = events[0]["detail"]["commands"]["summarize"]
        .as_str()
        .unwrap();
    assert!(
        line.starts_with(&format!(
            "dlq-triage summarize s3://{BUCKET}/genesys-dlq/ --category "
        )),
        "{line}"
    );
}

/// `dlq-triage incidents` shows each incident's redrive (its run item beside it in the
/// table) — state, counts and why it is paused — and lists no `redrive#…` item as an
/// incident.
#[tokio::test]
async fn the_cli_lists_each_incidents_redrive_with_its_state_and_counts() {
    let world = world().await;
    let key = two_open_incidents(&world).await;
    let run = serde_json::json!({
        "incident": key, "episode": 1, "category": "rate-limit-exceeded",
        "targetArn": API, "state": "paused", "pass": 1, "cursor": 120, "total": 500,
        "sent": 114, "failedAgain": 6, "gaveUp": 0, "skippedTooOld": 2, "rate": 10.0,
        "why": "the target failed 5 times in a row (last: HTTP 429)"
    });
    let db = world.dynamodb();
    for (k, extra) in [
        (format!("redrive#run#{key}"), Some(run.to_string())),
        (format!("redrive#{API}#ev-1"), None),
    ] {
        let mut put = db
            .put_item()
            .table_name(TABLE)
            .item("incidentKey", AttributeValue::S(k))
            .item("rev", AttributeValue::N("4".into()))
            .item("state", AttributeValue::S("paused".into()));
        if let Some(text) = extra {
            put = put.item("run", AttributeValue::S(text));
        }
        put.send().await.unwrap();
    }
    let cli = |args: &[&str]| world.cli(args);
    let listed = output(cli(&["incidents", "--table", TABLE, "--json"])).await;
    assert!(listed.status.success(), "{}", text(&listed));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "no redrive item listed as an incident");
    let with = listed
        .iter()
        .find(|i| i["incidentKey"] == key.as_str())
        .unwrap();
    let r = &with["redrive"];
    assert_eq!(r["state"], "paused");
    assert_eq!(
        (r["sent"].as_u64(), r["count"].as_u64()),
        (Some(114), Some(500))
    );
    assert_eq!(
        (r["failedAgain"].as_u64(), r["skippedTooOld"].as_u64()),
        (Some(6), Some(2))
    );
    assert!(r["why"].as_str().unwrap().contains("5 times in a row"));
    let without = listed
        .iter()
        .find(|i| i["incidentKey"] != key.as_str())
        .unwrap();
    assert!(without["redrive"].is_null(), "{without}");

    let lines = output(cli(&["incidents", "--table", TABLE])).await;
    let lines = String::from_utf8_lossy(&lines.stdout).into_owned();
    assert!(
        lines.contains("redrive paused: 120 of 500 done (attempt 1), sent 114")
            && lines.contains("5 times in a row"),
        "{lines}"
    );
}

/// The commented routing examples of template.yaml, applied by the project's own input
/// transformation to real incident events: the PagerDuty bodies field by field (the
/// routing key added by the connection as EventBridge adds a body parameter), and the chat
/// message. A `resolve` carries its own episode's dedup key, so the resolution of one
/// episode cannot close the next one's PagerDuty incident.
fn check_routing_examples(opened: &Value, resolved: &Value, reopened: &Value) {
    let examples = routing_examples();
    // The routing key is a secret body parameter of the connection, never in a target.
    let params = &examples["PagerDutyConnection"]["Properties"]["AuthParameters"]["InvocationHttpParameters"]
        ["BodyParameters"];
    assert_eq!(params[0]["Key"], "routing_key");
    assert_eq!(params[0]["IsValueSecret"], true);
    assert_eq!(params[0]["Value"], "PagerDutyRoutingKey");
    let body = |rule: &str, event: &Value| -> Value {
        let target = &examples[rule]["Properties"]["Targets"][0];
        let transformer = &target["InputTransformer"];
        let paths = transformer["InputPathsMap"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let template = transformer["InputTemplate"].as_str().unwrap().to_owned();
        assert!(!template.contains("routing_key"), "{rule}: {template}");
        let input = TargetInput::Transformer { paths, template };
        let rule_ctx = RuleContext::from_arn("arn:aws:events:us-east-1:1:rule/triage-notices/x");
        let out = apply_input_transformation(&input, event.to_string().as_bytes(), &rule_ctx)
            .unwrap_or_else(|e| panic!("{rule}: {e:?}"));
        let mut body: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!("{rule}: not JSON ({e}): {}", String::from_utf8_lossy(&out))
        });
        if rule.contains("PagerDuty") {
            // What EventBridge does with the connection's body parameters.
            body["routing_key"] = json!("R0UTING");
        }
        body
    };
    let d = &opened["detail"];
    let trigger = body("IncidentTriggersToPagerDuty", opened);
    assert_eq!(trigger["routing_key"], "R0UTING");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], d["dedupKey"]);
    assert_eq!(
        trigger["dedup_key"],
        format!("{}-e1", d["incidentKey"].as_str().unwrap())
    );
    assert_eq!(trigger["payload"]["summary"], d["summary"]);
    assert_eq!(trigger["payload"]["source"], "genesys-dlq-triage");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(trigger["payload"]["severity"], d["severity"]);
    assert_eq!(trigger["payload"]["timestamp"], d["firstSeen"]);
    assert_eq!(trigger["payload"]["class"], d["category"]);
    assert_eq!(trigger["payload"]["component"], d["targetArn"]);
    let details = &trigger["payload"]["custom_details"];
    assert_eq!(details["failed_events"], d["count"]);
    assert_eq!(details["report"], d["report"]["consoleLinks"]["markdown"]);
    assert_eq!(details["replay"], d["commands"]["replay"]);
    assert_eq!(details["recommended_action"], d["recommendedAction"]);
    let resolve = body("IncidentResolutionsToPagerDuty", resolved);
    assert_eq!(
        resolve,
        json!({"routing_key": "R0UTING", "event_action": "resolve", "dedup_key": resolved["detail"]["dedupKey"]})
    );
    assert_eq!(
        resolve["dedup_key"], trigger["dedup_key"],
        "one PagerDuty incident per episode"
    );
    // The next episode pages anew; the first one's resolve (late, retried) cannot close it.
    let retrigger = body("IncidentTriggersToPagerDuty", reopened);
    assert_eq!(retrigger["dedup_key"], reopened["detail"]["dedupKey"]);
    assert_ne!(retrigger["dedup_key"], resolve["dedup_key"]);
    assert_eq!(
        reopened["detail"]["incidentKey"], resolved["detail"]["incidentKey"],
        "the same incident"
    );
    let chat = body("IncidentsToChat", resolved);
    let text = chat["text"].as_str().unwrap();
    assert!(text.starts_with("Resolved (quiet): "), "{text}");
    assert_eq!(chat["incident"], resolved["detail"]["dedupKey"]);
    // An error message with quotes in the summary: still one JSON body, the text as it was.
    let mut quoted = resolved.clone();
    quoted["detail"]["summary"] = json!(r#"Opened: e.g. {"message": "no \"route\""}"#);
    let chat = body("IncidentsToChat", &quoted);
    assert_eq!(chat["text"], quoted["detail"]["summary"]);
}

/// The commented resources between the markers of template.yaml, uncommented, as JSON.
fn routing_examples() -> Value {
    let template = std::fs::read_to_string(support::fixtures::repo_path("template.yaml")).unwrap();
    let start = template
        .find("# --- incident routing examples")
        .expect("the examples' start marker");
    let end = template
        .find("# --- end of incident routing examples")
        .unwrap();
    let yaml: String = template[start..end]
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("# "))
        .skip_while(|l| !l.starts_with("PagerDutyConnection:"))
        .take_while(|l| !l.starts_with("(PagerDutyInvokeRole"))
        .map(|l| format!("{l}\n"))
        .collect();
    let parsed: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
    serde_json::to_value(strip_tags(parsed)).unwrap()
}

/// `!Sub`, `!GetAtt` and `!Ref` as their plain values (the tests substitute by hand).
fn strip_tags(v: serde_norway::Value) -> serde_norway::Value {
    use serde_norway::Value as Y;
    match v {
        Y::Tagged(t) => strip_tags(t.value),
        Y::Mapping(m) => Y::Mapping(m.into_iter().map(|(k, v)| (k, strip_tags(v))).collect()),
        Y::Sequence(s) => Y::Sequence(s.into_iter().map(strip_tags).collect()),
        other => other,
    }
}

/// `poll --bucket` keeps the incidents of each page it stores, as the function does, and
/// says so in its summary; with a table it cannot use, it stores and deletes the same and
/// counts the incidents not updated. `incidents sweep` resolves nothing that is not quiet.
#[tokio::test]
async fn poll_keeps_incidents_and_counts_what_the_table_did_not_take() {
    let world = world().await;
    let poll = |table: &str| {
        let mut cmd = world.cli(&["poll", "--wait-seconds", "1", "--concurrency", "1"]);
        cmd.env("NOTIFY_EVENT_BUS", BUS)
            .env("INCIDENT_TABLE", table)
            .args(["--bucket", BUCKET, "--delete", "--no-correlate"]);
        cmd
    };
    let queue = Queue::create(&world.sdk, "dlq").await;
    queue.send(&support::sqs::mixed_dead_letters(), None).await;
    let run = output({
        let mut c = poll(TABLE);
        c.args(["--queue-url", &queue.url]);
        c
    })
    .await;
    assert!(run.status.success(), "{}", text(&run));
    let opened = incident_events(&world).await;
    assert!(!opened.is_empty());
    assert!(opened.iter().all(|e| e["detail"]["transition"] == "opened"));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains(&format!(
            "incidents:  {} transition(s) announced",
            opened.len()
        )),
        "{stdout}"
    );

    queue.send(&support::sqs::mixed_dead_letters(), None).await;
    let missing = output({
        let mut c = poll("no-such-table");
        c.args(["--queue-url", &queue.url]);
        c
    })
    .await;
    assert!(missing.status.success(), "{}", text(&missing));
    let stdout = String::from_utf8_lossy(&missing.stdout);
    assert!(stdout.contains("deleted:    20"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "incidents not updated in INCIDENT_TABLE: {}",
            opened.len()
        )),
        "{stdout}"
    );

    let swept = output(world.cli(&["incidents", "sweep", "--table", TABLE])).await;
    assert!(swept.status.success(), "{}", text(&swept));
    assert!(String::from_utf8_lossy(&swept.stdout).contains("resolved 0 incident(s)"));

    // A table and no bus: nothing claims to be announced, and `poll` says where they wait.
    world.dynalite().create_incident_table("no-bus").await;
    queue.send(&support::sqs::mixed_dead_letters(), None).await;
    let no_bus = output({
        let mut c = poll("no-bus");
        c.env_remove("NOTIFY_EVENT_BUS")
            .args(["--queue-url", &queue.url]);
        c
    })
    .await;
    assert!(no_bus.status.success(), "{}", text(&no_bus));
    let stdout = String::from_utf8_lossy(&no_bus.stdout);
    assert!(!stdout.contains("announced\n"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "incidents:  {} transition(s) recorded, not announced",
            opened.len()
        )),
        "{stdout}"
    );
}

/// With the Genesys secret configured, the sweep's `resolved` event also says how the
/// Genesys side is: here its integration reports ERROR.
#[tokio::test]
async fn a_resolved_event_says_the_genesys_integrations_state() {
    let world = world().await;
    let sim = support::genesys_sim::Sim::with_integrations(
        "sweep-client",
        "sweep-secret",
        [support::genesys_sim::eventbridge_integration(
            "prod-events",
            "ERROR",
            "Access denied to the partner event source",
        )],
    )
    .await;
    support::moto::put_secret(
        &world.sdk,
        "genesys/sweep",
        &format!(
            r#"{{"clientId":"sweep-client","clientSecret":"sweep-secret","apiBase":"{}"}}"#,
            sim.base_url()
        ),
    )
    .await;
    let clock = clock_at(start_time());
    let h = world.handler(&clock, &[("GENESYS_SECRET_ID", "genesys/sweep")]);
    invoke(&h, batch("g", 2, API, start_time())).await;
    incident_events(&world).await;
    clock.store(
        (start_time() + Duration::minutes(20)).timestamp_millis(),
        Ordering::SeqCst,
    );
    assert_eq!(sweep(&h).await, (1, 0));
    let resolved = incident_events(&world).await;
    let genesys = &resolved[0]["detail"]["health"]["genesysIntegrations"];
    assert_eq!(
        genesys[0]["code"], "ERROR",
        "{}",
        resolved[0]["detail"]["health"]
    );
    assert_eq!(
        genesys[0]["detail"],
        "Access denied to the partner event source"
    );
}

/// A call the table refuses keeps DynamoDB's code, and reads as the call and the table.
#[tokio::test]
async fn a_refused_call_keeps_its_code() {
    let world = world().await;
    let missing = DynamoTable::new(world.dynamodb(), "no-such-table");
    let e = missing.get("K").await.unwrap_err();
    assert!(
        matches!(&e, TableError::Call(c) if c.code() == Some("ResourceNotFoundException")),
        "{e:?}"
    );
    let line = e.to_string();
    assert!(
        line.starts_with("dynamodb:GetItem: ResourceNotFoundException")
            && line.ends_with(" (table no-such-table)"),
        "{line}"
    );
}

/// The proxy keeps DynamoDB's 4 KB limit on expression strings, which dynalite does not.
#[tokio::test]
async fn the_test_dynamodb_refuses_an_expression_over_4_kb_as_dynamodb_does() {
    let world = world().await;
    let db = world.dynamodb();
    let key = aws_sdk_dynamodb::types::AttributeValue::S("k".into());
    let clauses: Vec<String> = (0..500).map(|i| format!("a{i} = :one")).collect();
    let wide = db
        .update_item()
        .table_name(TABLE)
        .key("incidentKey", key.clone())
        .update_expression(format!("SET {}", clauses.join(", ")))
        .expression_attribute_values(
            ":one",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await
        .unwrap_err();
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    assert_eq!(wide.code(), Some("ValidationException"));
    assert!(
        wide.message().unwrap().starts_with(
            "Invalid UpdateExpression: Expression size has exceeded the maximum allowed size"
        ),
        "{wide:?}"
    );
    // Within the limit it goes through.
    db.update_item()
        .table_name(TABLE)
        .key("incidentKey", key)
        .update_expression(format!("SET {}", clauses[..100].join(", ")))
        .expression_attribute_values(
            ":one",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await
        .unwrap();
}

/// One dead letter a minute against `target`, from `from` on, `n` of them: a batch as wide
/// as it gets (each record its own minute).
fn spread(tag: &str, n: usize, target: &str, from: DateTime<Utc>) -> SqsEvent {
    let mut event = batch(tag, n, target, from);
    for (i, r) in event.records.iter_mut().enumerate() {
        let at = from + Duration::minutes(i as i64);
        r.attributes
            .insert("SentTimestamp".into(), at.timestamp_millis().to_string());
    }
    event
}

/// Two batches of 200 distinct minutes each (a backlog drained hours late), through the
/// function: one `opened`, the item counts every failure of both, and every write stays
/// within DynamoDB's limits (the proxy refuses an expression over 4 KB as DynamoDB does).
#[tokio::test]
async fn two_batches_of_200_distinct_minutes_open_once_and_count_all() {
    let world = world().await;
    let clock = clock_at(start_time() + Duration::hours(8));
    let h = world.handler(&clock, &[]);
    assert_eq!(
        failures(&invoke(&h, spread("w1", 200, API, start_time())).await),
        0
    );
    clock.store(
        (start_time() + Duration::hours(8) + Duration::minutes(1)).timestamp_millis(),
        Ordering::SeqCst,
    );
    let second = start_time() + Duration::minutes(200);
    assert_eq!(
        failures(&invoke(&h, spread("w2", 200, API, second)).await),
        0
    );
    let events = incident_events(&world).await;
    let kinds: Vec<String> = transitions(&events).into_iter().map(|t| t.0).collect();
    assert_eq!(kinds, ["opened"], "{events:?}");
    let key = events[0]["detail"]["incidentKey"].as_str().unwrap();
    let item = raw_item(&world, key).await;
    assert_eq!(item["count"].as_n().unwrap(), "400");
    assert_eq!(
        item["firstSeen"].as_n().unwrap(),
        &start_time().timestamp_millis().to_string()
    );
    let largest = world.dynalite().largest_item();
    eprintln!("largest item put for 400 distinct minutes: {largest} bytes");
    assert!(largest < 16 * 1024, "{largest}");
}

/// A bus that refuses events while an incident opens: the `opened` event stays in the
/// item's outbox, and a later invocation puts it, exactly once (the sweep after finds
/// nothing left to put).
#[tokio::test]
async fn an_opened_event_the_bus_refused_is_put_later_exactly_once() {
    let world = world().await;
    let clock = clock_at(start_time() + Duration::hours(2));
    let refusing = world.handler(&clock, &[("NOTIFY_EVENT_BUS", "no-such-bus")]);
    assert_eq!(
        failures(&invoke(&refusing, batch("a", 3, API, start_time())).await),
        0
    );
    assert!(incident_events(&world).await.is_empty());
    // Another container, a bus that takes events, two minutes on.
    clock.store(
        (start_time() + Duration::hours(2) + Duration::minutes(2)).timestamp_millis(),
        Ordering::SeqCst,
    );
    let h = world.handler(&clock, &[]);
    let later = start_time() + Duration::minutes(1);
    assert_eq!(failures(&invoke(&h, batch("b", 1, API, later)).await), 0);
    let events = incident_events(&world).await;
    assert_eq!(transitions(&events), [("opened".to_owned(), 1)]);
    assert_eq!(events[0]["detail"]["count"], 4);
    assert_eq!(sweep(&h).await, (0, 0));
    invoke(&h, batch("c", 1, API, later)).await;
    assert!(incident_events(&world).await.is_empty(), "put once");
}

/// With a table and no bus, nothing claims to be announced: the transitions wait in the
/// outbox, and the function's sweep puts them once a bus is configured.
#[tokio::test]
async fn without_a_bus_transitions_wait_in_the_outbox_for_the_sweep() {
    let world = world().await;
    let clock = clock_at(start_time() + Duration::hours(2));
    let config = lambda_config(&[("REPORT_BUCKET", BUCKET), ("INCIDENT_TABLE", TABLE)]);
    let no_bus = world.handler_for(config, Some(&clock));
    invoke(&no_bus, batch("a", 2, API, start_time())).await;
    clock.store(
        (start_time() + Duration::hours(2) + Duration::minutes(5)).timestamp_millis(),
        Ordering::SeqCst,
    );
    let h = world.handler(&clock, &[]);
    assert_eq!(sweep(&h).await, (0, 0));
    assert_eq!(
        transitions(&incident_events(&world).await),
        [("opened".to_owned(), 1)]
    );
    assert_eq!(sweep(&h).await, (0, 0));
    assert!(incident_events(&world).await.is_empty());
}

/// A sweep that cannot use the table answers an error (Lambda counts it in `Errors`).
#[tokio::test]
async fn a_sweep_that_fails_answers_an_error() {
    let world = world().await;
    let clock = clock_at(start_time());
    let h = world.handler(&clock, &[("INCIDENT_TABLE", "no-such-table")]);
    let scheduled: Value =
        serde_json::from_slice(&support::fixtures::event_bytes("scheduled-sweep.json")).unwrap();
    let event = serde_json::from_value(scheduled).unwrap();
    let answer = h
        .handle_invocation(LambdaEvent::new(event, Context::default()))
        .await;
    let error = answer.expect_err("a failed sweep is an error");
    assert_eq!(error.error_type(), "SweepFailed");
}

/// `incidents ack` and `incidents silence` through the CLI: stored in the item, carried by
/// the events; a silenced incident is counted and announces nothing until the silence
/// ends, then the sweep puts what was held.
#[tokio::test]
async fn ack_and_silence_round_trip_through_the_cli() {
    let world = world().await;
    let now = Utc::now();
    let clock = clock_at(now);
    let h = world.handler(&clock, &[]);
    invoke(&h, batch("a", 2, API, now - Duration::hours(2))).await;
    let key = incident_events(&world).await[0]["detail"]["incidentKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let cli = |args: &[&str]| {
        let mut cmd = world.cli(args);
        cmd.env("NOTIFY_EVENT_BUS", BUS)
            .env("INCIDENT_TABLE", TABLE);
        cmd
    };
    let acked = output(cli(&["incidents", "ack", &key])).await;
    assert!(acked.status.success(), "{}", text(&acked));
    let silenced = output(cli(&["incidents", "silence", &key, "--for", "2h"])).await;
    assert!(silenced.status.success(), "{}", text(&silenced));
    let listed = output(cli(&["incidents", "--json"])).await;
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["acknowledged"], true);
    assert!(listed[0]["silencedUntil"].is_string(), "{listed}");
    // Still failing 40 minutes on: counted, the `updated` held.
    clock.store(
        (now + Duration::minutes(40)).timestamp_millis(),
        Ordering::SeqCst,
    );
    invoke(&h, batch("b", 3, API, now + Duration::minutes(39))).await;
    assert!(incident_events(&world).await.is_empty(), "silenced");
    // The silence ended by hand (`--until` a time past); the sweep puts what was held.
    let ended = output(cli(&[
        "incidents",
        "silence",
        &key,
        "--until",
        "2020-01-01T00:00:00Z",
    ]))
    .await;
    assert!(ended.status.success(), "{}", text(&ended));
    clock.store(
        (now + Duration::minutes(42)).timestamp_millis(),
        Ordering::SeqCst,
    );
    assert_eq!(sweep(&h).await, (0, 0));
    let events = incident_events(&world).await;
    assert_eq!(transitions(&events), [("updated".to_owned(), 2)]);
    let d = &events[0]["detail"];
    assert_eq!(d["count"], 5);
    assert_eq!(d["acknowledged"], true);
    // A time past ends the silence when the command runs.
    let ended_at: DateTime<Utc> = d["silencedUntil"].as_str().unwrap().parse().unwrap();
    assert!(
        ended_at >= now - Duration::seconds(1) && ended_at < now + Duration::minutes(5),
        "{ended_at}"
    );
    assert_eq!(d["severity"], "error");
    assert!(d["recommendedAction"].as_str().unwrap().len() > 10);
    let nothing = output(cli(&["incidents", "ack", "NO-SUCH-KEY"])).await;
    assert_eq!(nothing.status.code(), Some(1), "{}", text(&nothing));
}

/// The incident stories of src/incidents/scenarios.rs, on DynamoDB (dynalite behind the
/// proxy that keeps DynamoDB's limits): the same stories the in-memory twin passes.
mod on_dynamodb {
    use super::*;

    /// dynalite and a table of its own for one story.
    async fn table() -> (Dynalite, Arc<DynamoTable>) {
        let dynalite = Dynalite::start().await;
        dynalite.create_incident_table(TABLE).await;
        let sdk = dynalite.sdk().await;
        let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
        (dynalite, Arc::new(table))
    }

    macro_rules! on_dynamodb {
        ($($name:ident),* $(,)?) => {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_dynalite, table) = table().await;
                    super::scenarios::$name(table).await;
                }
            )*
        };
    }

    on_dynamodb!(
        opens_once_and_counts_in_the_next_batches,
        sixteen_at_once_open_once,
        a_backlog_drained_two_hours_late_opens_once_and_resolves_once,
        old_redeliveries_do_not_reopen_a_fresh_failure_reopens_once,
        two_batches_of_200_minutes_open_once_and_count_all,
        an_unannounced_transition_is_put_later_exactly_once,
        ack_and_silence_round_trip,
        a_silence_ends_without_a_flood,
        resolved_by_hand_only_when_open,
    );

    /// Eight hours of one batch a minute: the item DynamoDB is given stays under 16 KB.
    #[tokio::test]
    async fn an_eight_hour_incident_keeps_its_item_under_16_kb() {
        let (dynalite, table) = table().await;
        super::scenarios::an_eight_hour_incident_keeps_its_item_bounded(table).await;
        let largest = dynalite.largest_item();
        eprintln!("largest item put over 8 hours: {largest} bytes");
        assert!(largest > 1000 && largest < 16 * 1024, "{largest}");
    }

    /// DynamoDB calls per batch, by kind: a new incident (read, write, and the write once
    /// its event is put), a normal batch, a late one and a 200-minute-wide one (one write
    /// each, the item already held).
    #[tokio::test]
    async fn calls_per_batch() {
        let (dynalite, table) = table().await;
        let t = IncidentTracker::new(table.clone(), IncidentSettings::default());
        let now = Utc::now();
        let budget = std::time::Duration::from_secs(10);
        let seen = |minutes_ago: i64, width: i64| {
            let first = (now - Duration::minutes(minutes_ago)).timestamp_millis();
            Observation {
                key: "K".into(),
                category: "TARGET_ERROR".into(),
                target_arn: None,
                first_seen: first,
                last_seen: first + (width - 1) * 60_000,
                count: width as u64,
                rules: Default::default(),
                codes: Default::default(),
                sample_errors: vec![],
                http_statuses: Default::default(),
                conversations: 0,
                per_minute: (0..width).map(|i| (first / 60_000 + i, 1)).collect(),
                report: None,
                replayed: 0,
                replays: Default::default(),
            }
        };
        let mut measured = Vec::new();
        for (kind, minutes_ago, width) in [
            ("new", 120, 1),
            ("normal", 119, 1),
            ("late", 400, 1),
            ("wide", 360, 200),
        ] {
            dynalite.reset_calls();
            let tracked = t.observe(vec![seen(minutes_ago, width)], now, budget).await;
            assert!(tracked.failed.is_empty(), "{:?}", tracked.failed);
            for c in &tracked.changes {
                t.announced("K", &[c.seq]).await.unwrap();
            }
            measured.push((kind, dynalite.calls()));
        }
        eprintln!("DynamoDB calls per batch: {measured:?}");
        let put = |n| [("PutItem".to_owned(), n)].into();
        assert_eq!(
            measured[0].1,
            [("GetItem".to_owned(), 1), ("PutItem".to_owned(), 2)].into()
        );
        for (kind, calls) in &measured[1..] {
            assert_eq!(calls, &put(1), "{kind}");
        }
    }
}

/// Through the function: a backlog of failures drained two hours late, one batch a minute
/// for 20 minutes with the scheduled sweep every 5 minutes, opens once and resolves once
/// after the drain (never while batches still come, though every failure is hours old);
/// the same dead letters redelivered after the resolution do not reopen it; a fresh
/// failure does, once.
#[tokio::test]
async fn a_backlog_drained_two_hours_late_pages_once_and_old_redeliveries_never_reopen() {
    let world = world().await;
    let late = Duration::hours(2);
    let clock = clock_at(start_time() + late);
    let h = world.handler(&clock, &[]);
    let set = |t: DateTime<Utc>| clock.store(t.timestamp_millis(), Ordering::SeqCst);
    for minute in 0..20 {
        set(start_time() + late + Duration::minutes(minute));
        let failed_at = start_time() + Duration::minutes(minute);
        invoke(&h, batch(&format!("b{minute}"), 2, API, failed_at)).await;
        if minute % 5 == 4 {
            assert_eq!(sweep(&h).await, (0, 0), "resolved while draining: {minute}");
        }
    }
    let drain_end = start_time() + late + Duration::minutes(19);
    set(drain_end + Duration::minutes(14));
    assert_eq!(sweep(&h).await, (0, 0));
    set(drain_end + Duration::minutes(16));
    assert_eq!(sweep(&h).await, (1, 0));
    let events = incident_events(&world).await;
    assert_eq!(
        transitions(&events),
        [("opened".to_owned(), 1), ("resolved".to_owned(), 2)]
    );
    assert_eq!(events[1]["detail"]["count"], 40);
    // Redelivered (after the visibility timeout): the same failures, hours old.
    for minute in 0..3 {
        set(drain_end + Duration::minutes(20 + minute));
        let failed_at = start_time() + Duration::minutes(minute);
        invoke(&h, batch(&format!("again{minute}"), 2, API, failed_at)).await;
    }
    assert!(incident_events(&world).await.is_empty(), "no reopening");
    // A fresh failure, after the resolution's cut-off: reopened once.
    for minute in 0..2 {
        let now = drain_end + Duration::minutes(30 + minute);
        set(now);
        invoke(&h, batch(&format!("fresh{minute}"), 1, API, now)).await;
    }
    let events = incident_events(&world).await;
    assert_eq!(transitions(&events), [("reopened".to_owned(), 3)]);
    assert_eq!(
        events[0]["detail"]["count"], 1,
        "a new episode counts from its own first"
    );
    assert_ne!(
        events[0]["detail"]["dedupKey"],
        format!(
            "{}-e1",
            events[0]["detail"]["incidentKey"].as_str().unwrap()
        )
    );
}
