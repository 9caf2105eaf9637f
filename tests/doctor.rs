//! `dlq-triage doctor` against moto (rules, targets, queues, KMS keys, Lambda functions,
//! event source mappings), the EventBridge stand-in of tests/support in front of it (the
//! partner event sources moto does not serve, and a connection EventBridge has set
//! `DEAUTHORIZED`), and the Genesys Cloud simulator (the integrations and their topics).
//! Each planted fault is found once, with its severity; the correct pipeline beside them
//! yields no finding; a denied call is one `unavailable:` line.

use std::collections::BTreeSet;
use std::process::Command;

use aws_sdk_eventbridge::types::{DeadLetterConfig, RetryPolicy, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use dlq_triage_test_support as support;
use serde_json::{Value, json};
use support::cli::{output, text};
use support::genesys_sim::{Sim, eventbridge_integration};
use support::moto::user_with_policy;
use support::world::{World, WorldBuilder};

const ACCOUNT: &str = "123456789012";
const SOURCE: &str = "aws.partner/genesys.com/cloud/cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721/prod";
const STALE: &str = "aws.partner/genesys.com/cloud/cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721/stale";
const END: &str = "v2.detail.events.conversation.{id}.customer.end";
const TRANSCRIPTION: &str = "v2.conversations.{id}.transcription";

/// A rule's ARN on the partner bus as moto writes it. EventBridge writes
/// `rule/aws.partner/genesys.com/cloud/<org>/prod/NAME`; moto keeps a rule call's bus by the
/// name's last segment (`prod`: [`genesys_world`] creates that bus too), so its rule ARNs
/// read `rule/prod/NAME`. The doctor takes rule ARNs as ListRules gives them.
fn rule_arn(name: &str) -> String {
    format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/prod/{name}")
}

fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}")
}

/// A queue policy letting EventBridge send for the rules `source_arn` names (a wildcard
/// allowed).
fn events_may_send(queue: &str, source_arn: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn(queue),
            "Condition": {"ArnLike": {"aws:SourceArn": source_arn}}
        }]
    })
    .to_string()
}

/// moto, the EventBridge stand-in in front of it and CloudWatch's stand-in (moto's server
/// does not speak the SDK's CBOR protocol).
fn account() -> WorldBuilder {
    World::builder().event_sources().cloudwatch()
}

/// The account's resources as the doctor's tests plant them.
trait Account {
    async fn queue(&self, name: &str, attributes: &[(QueueAttributeName, String)]) -> String;
    async fn good_dlq(&self) -> String;
    async fn key_for_eventbridge(&self) -> String;
    async fn rule(&self, name: &str, topic: &str, target: Target) -> String;
    async fn good_rule(&self);
    fn doctor(&self, sim: Option<&Sim>, args: &[&str]) -> Command;
}

impl Account for World {
    /// A queue with these attributes; its ARN.
    async fn queue(&self, name: &str, attributes: &[(QueueAttributeName, String)]) -> String {
        let mut request = aws_sdk_sqs::Client::new(&self.sdk)
            .create_queue()
            .queue_name(name);
        for (k, v) in attributes {
            request = request.attributes(k.clone(), v);
        }
        request.send().await.expect("CreateQueue");
        queue_arn(name)
    }

    /// The dead-letter queue every correct rule shares: 14 days, a policy for every rule of
    /// the account, drained by the triage function with partial batch responses and a
    /// visibility timeout six times its timeout.
    async fn good_dlq(&self) -> String {
        let arn = self
            .queue(
                "genesys-dlq",
                &[
                    (
                        QueueAttributeName::Policy,
                        events_may_send(
                            "genesys-dlq",
                            &format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/*"),
                        ),
                    ),
                    (QueueAttributeName::MessageRetentionPeriod, "1209600".into()),
                    (QueueAttributeName::VisibilityTimeout, "180".into()),
                    (
                        QueueAttributeName::KmsMasterKeyId,
                        self.key_for_eventbridge().await,
                    ),
                ],
            )
            .await;
        let triage = self.function("dlq-triage", "lambda-role", Some(30)).await;
        aws_sdk_lambda::Client::new(&self.sdk)
            .create_event_source_mapping()
            .event_source_arn(&arn)
            .function_name(&triage)
            .batch_size(10)
            .function_response_types(
                aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures,
            )
            .send()
            .await
            .expect("CreateEventSourceMapping");
        arn
    }

    /// A customer managed key whose policy lets EventBridge encrypt (for the rules of this
    /// account); its id.
    async fn key_for_eventbridge(&self) -> String {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "eventbridge", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                 "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
            ]
        });
        aws_sdk_kms::Client::new(&self.sdk)
            .create_key()
            .policy(policy.to_string())
            .send()
            .await
            .expect("CreateKey")
            .key_metadata
            .unwrap()
            .key_id
    }

    /// Rule `name` on the partner bus with `detail-type` `topic` and its one `target`.
    async fn rule(&self, name: &str, topic: &str, target: Target) -> String {
        let pattern = json!({"source": [SOURCE], "detail-type": [topic]}).to_string();
        support::moto::rule_with_target(&self.events(), Some(SOURCE), name, &pattern, target).await
    }

    /// Rule `to-crm` as it should be: its queue target `crm-in` with the good DLQ.
    async fn good_rule(&self) {
        let dlq = self.good_dlq().await;
        let target = target("crm", &queue_arn("crm-in"), Some(&dlq));
        self.rule("to-crm", END, target).await;
    }

    /// `dlq-triage doctor ARGS` against this world, with Genesys Cloud at `sim` if given.
    fn doctor(&self, sim: Option<&Sim>, args: &[&str]) -> Command {
        let mut cmd = self.cli(&["doctor"]);
        cmd.args(args).env_remove("DLQ_TRIAGE_FUNCTION");
        if let Some(sim) = sim {
            cmd.env("GENESYS_CLIENT_ID", "doctor-client")
                .env("GENESYS_CLIENT_SECRET", "doctor-secret")
                .env("GENESYS_API_BASE", sim.base_url())
                .env("GENESYS_LOGIN_BASE", sim.base_url());
        }
        cmd
    }
}

fn target(id: &str, arn: &str, dlq: Option<&str>) -> Target {
    Target::builder()
        .id(id)
        .arn(arn)
        .set_dead_letter_config(dlq.map(|d| DeadLetterConfig::builder().arn(d).build()))
        .build()
        .unwrap()
}

/// An integration of the simulated org publishing `topics`.
fn integration(suffix: &str, code: &str, detail: &str, topics: &[&str]) -> Value {
    let mut i = eventbridge_integration(suffix, code, detail);
    i["config"]["current"]["properties"]["topicFilters"] = json!(topics);
    i
}

/// The partner bus, its source ACTIVE, an integration publishing `topics`, and a queue
/// target `crm-in` that lets every rule of the account send.
async fn genesys_world(topics: &[&str]) -> (World, Sim) {
    let world = account().build().await;
    world.sources().set(SOURCE, "ACTIVE");
    // Genesys Cloud's side (the partner's call), then the bus associated with the source.
    world
        .events()
        .create_partner_event_source()
        .name(SOURCE)
        .account(ACCOUNT)
        .send()
        .await
        .expect("CreatePartnerEventSource");
    world
        .events()
        .create_event_bus()
        .name(SOURCE)
        .event_source_name(SOURCE)
        .send()
        .await
        .expect("CreateEventBus");
    world
        .events()
        .create_event_bus()
        .name("prod")
        .send()
        .await
        .expect("CreateEventBus (moto's rule calls keep the partner bus's rules here)");
    let sim = Sim::with_integrations(
        "doctor-client",
        "doctor-secret",
        [integration("prod", "ACTIVE", "", topics)],
    )
    .await;
    world
        .queue(
            "crm-in",
            &[(
                QueueAttributeName::Policy,
                events_may_send(
                    "crm-in",
                    &format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/*"),
                ),
            )],
        )
        .await;
    (world, sim)
}

async fn run_json(cmd: Command) -> (Option<i32>, Value) {
    let run = output(cmd).await;
    let json = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&run)));
    (run.status.code(), json)
}

/// (code, severity, resource) of every finding.
fn found(json: &Value) -> Vec<(String, String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["resource"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_correct_pipeline_yields_no_finding() {
    let (world, sim) = genesys_world(&[END]).await;
    world.good_rule().await;
    let (status, json) = run_json(world.doctor(Some(&sim), &["--json"])).await;
    assert_eq!(found(&json), vec![], "{json:#}");
    assert_eq!(json["unavailable"], json!([]), "{json:#}");
    assert_eq!(json["checked"]["buses"], json!([SOURCE]));
    assert_eq!(json["checked"]["rules"], 1);
    assert_eq!(json["checked"]["targets"], 1);
    assert_eq!(json["checked"]["integrations"], 1);
    assert_eq!(status, Some(0));
}

#[tokio::test]
async fn the_integrations_event_source_is_found_on_a_later_page() {
    let (world, sim) = genesys_world(&[END]).await;
    // Other orgs' Genesys Cloud sources sort before this one; one source a page.
    for org in ["0a", "0b", "0c"] {
        world.sources().set(
            &format!("aws.partner/genesys.com/cloud/{org}/other"),
            "ACTIVE",
        );
    }
    world.sources().set_page_size(1);
    world.good_rule().await;
    let (status, json) = run_json(world.doctor(Some(&sim), &["--json"])).await;
    assert_eq!(found(&json), vec![], "{json:#}");
    assert_eq!(json["checked"]["buses"], json!([SOURCE]), "{json:#}");
    assert_eq!(status, Some(0));
}

#[tokio::test]
async fn each_planted_fault_is_found_once_with_its_severity() {
    let (world, sim) = genesys_world(&[END, TRANSCRIPTION]).await;
    // A second integration whose source lost its bus, and one in ERROR with no source.
    world.sources().set(STALE, "PENDING");
    sim.state.integrations.lock().unwrap().extend([
        integration("stale", "ACTIVE", "", &[END]),
        integration(
            "eu",
            "ERROR",
            "The AWS account could not be reached",
            &[END],
        ),
    ]);
    let dlq = world.good_dlq().await;
    let crm = queue_arn("crm-in");

    // No dead-letter queue at all.
    world.rule("no-dlq", END, target("crm", &crm, None)).await;
    // A DLQ whose policy names another rule, kept 4 days, drained by nobody.
    let closed = world
        .queue(
            "closed-dlq",
            &[
                (
                    QueueAttributeName::Policy,
                    events_may_send("closed-dlq", &rule_arn("some-other-rule")),
                ),
                (QueueAttributeName::MessageRetentionPeriod, "345600".into()),
            ],
        )
        .await;
    world
        .rule("closed", END, target("crm", &crm, Some(&closed)))
        .await;
    // A DLQ encrypted with a customer key whose policy leaves EventBridge out.
    let kms = aws_sdk_kms::Client::new(&world.sdk);
    let key = kms
        .create_key()
        .policy(
            json!({"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":format!("arn:aws:iam::{ACCOUNT}:root")},"Action":"kms:*","Resource":"*"}]})
                .to_string(),
        )
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .unwrap();
    let encrypted = world
        .queue(
            "encrypted-dlq",
            &[
                (
                    QueueAttributeName::Policy,
                    events_may_send(
                        "encrypted-dlq",
                        &format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/*"),
                    ),
                ),
                (QueueAttributeName::MessageRetentionPeriod, "1209600".into()),
                (QueueAttributeName::KmsMasterKeyId, key.key_id.clone()),
                (QueueAttributeName::VisibilityTimeout, "180".into()),
            ],
        )
        .await;
    // Drained like the good one, so only the key is wrong.
    aws_sdk_lambda::Client::new(&world.sdk)
        .create_event_source_mapping()
        .event_source_arn(&encrypted)
        .function_name("dlq-triage")
        .function_response_types(
            aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures,
        )
        .send()
        .await
        .unwrap();
    world
        .rule("encrypted", END, target("crm", &crm, Some(&encrypted)))
        .await;
    // A function target without a permission for its rule and without an on-failure
    // destination.
    let function = world.function("crm-sync", "lambda-role", Some(10)).await;
    world
        .rule("to-function", END, target("fn", &function, Some(&dlq)))
        .await;
    // An API destination whose connection EventBridge deauthorized.
    let events = world.events();
    let connection = support::moto::api_key_connection(&events, "crm-connection").await;
    let destination = world
        .api_destination(
            "crm-webhook",
            &connection,
            "https://crm.example.com/hooks/genesys",
            10,
        )
        .await;
    world
        .sources()
        .set_connection("crm-connection", "DEAUTHORIZED");
    let mut api_target = target("api", &destination, Some(&dlq));
    api_target.role_arn = Some(format!("arn:aws:iam::{ACCOUNT}:role/events-invoke"));
    world.rule("to-webhook", END, api_target).await;
    // EventBridge invoked it at 30/s for five minutes two hours ago: above its 10/s.
    let two_hours_ago = chrono::Utc::now().timestamp() / 60 * 60 - 2 * 3600;
    let on_bus = [("EventBusName", SOURCE), ("RuleName", "to-webhook")];
    for minute in 0..5 {
        world
            .put_metric("Invocations", &on_bus, two_hours_ago + minute * 60, 1800.0)
            .await;
    }
    // A topic target whose policy lets EventBridge publish for another rule only.
    let sns = aws_sdk_sns::Client::new(&world.sdk);
    let topic = sns
        .create_topic()
        .name("crm-alerts")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let topic_policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn("some-other-rule")}}
        }]
    });
    sns.set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("Policy")
        .attribute_value(topic_policy.to_string())
        .send()
        .await
        .unwrap();
    world
        .rule("to-topic", END, target("alerts", &topic, Some(&dlq)))
        .await;
    // Retries cut to one minute.
    let mut hasty = target("crm", &crm, Some(&dlq));
    hasty.retry_policy = Some(
        RetryPolicy::builder()
            .maximum_event_age_in_seconds(60)
            .maximum_retry_attempts(2)
            .build(),
    );
    world.rule("hasty", END, hasty).await;
    // A pattern for a topic the integration does not publish (`ended`, not `end`).
    world
        .rule(
            "mistyped",
            "v2.detail.events.conversation.{id}.customer.ended",
            target("crm", &crm, Some(&dlq)),
        )
        .await;

    let out = tempfile::tempdir().unwrap();
    let (status, json) = run_json(world.doctor(
        Some(&sim),
        &["--json", "--out", out.path().to_str().unwrap()],
    ))
    .await;
    let function_arn = function.clone();
    let expected: BTreeSet<(String, String, String)> = [
        (
            "integration-not-active",
            "critical",
            "Genesys Cloud integration \"Amazon EventBridge Source eu\"".to_owned(),
        ),
        (
            "event-source-missing",
            "critical",
            "Genesys Cloud integration \"Amazon EventBridge Source eu\"".to_owned(),
        ),
        ("event-source-pending", "critical", STALE.to_owned()),
        ("connection-deauthorized", "critical", connection.clone()),
        (
            "api-destination-rate-limit-low",
            "warning",
            destination.clone(),
        ),
        (
            "target-permission-missing",
            "critical",
            rule_arn("to-function"),
        ),
        (
            "target-permission-missing",
            "critical",
            rule_arn("to-topic"),
        ),
        (
            "target-without-dlq",
            "error",
            format!("{} target crm", rule_arn("no-dlq")),
        ),
        ("dlq-policy-denies", "error", rule_arn("closed")),
        ("dlq-kms-denies", "error", key.arn.clone().unwrap()),
        ("function-without-on-failure", "error", function_arn),
        ("dlq-retention-short", "warning", closed.clone()),
        (
            "retry-policy-short",
            "warning",
            format!("{} target crm", rule_arn("hasty")),
        ),
        (
            "topic-unrouted",
            "warning",
            format!("{SOURCE} topic {TRANSCRIPTION}"),
        ),
        ("rule-matches-no-topic", "warning", rule_arn("mistyped")),
        ("dlq-polled-by-hand", "info", closed.clone()),
    ]
    .into_iter()
    .map(|(c, s, r)| (c.to_owned(), s.to_owned(), r))
    .collect();
    let got = found(&json);
    let got_set: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(got.len(), got_set.len(), "a finding twice: {json:#}");
    assert_eq!(got_set, expected, "{json:#}");
    assert_eq!(json["unavailable"], json!([]), "{json:#}");
    // Most severe first.
    let rank = |s: &str| {
        ["critical", "error", "warning", "info"]
            .iter()
            .position(|x| *x == s)
    };
    assert!(
        got.windows(2).all(|w| rank(&w[0].1) <= rank(&w[1].1)),
        "{got:?}"
    );
    assert_eq!(status, Some(2));
    // Each names its fix.
    let fix_of = |code: &str| {
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == code && f["resource"] != rule_arn("to-topic").as_str())
            .map(|f| f["fix"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert!(fix_of("target-permission-missing").contains(&format!(
        "aws lambda add-permission --function-name {function} --statement-id to-function --action lambda:InvokeFunction --principal events.amazonaws.com --source-arn {}",
        rule_arn("to-function")
    )));
    assert!(
        fix_of("dlq-policy-denies")
            .contains(&format!("\"aws:SourceArn\":\"{}\"", rule_arn("closed")))
    );
    assert!(fix_of("dlq-kms-denies").contains("kms:GenerateDataKey"));
    assert!(fix_of("dlq-retention-short").contains("MessageRetentionPeriod=1209600"));
    assert!(fix_of("event-source-pending").contains(&format!(
        "aws events create-event-bus --name {STALE} --event-source-name {STALE}"
    )));
    assert!(fix_of("target-without-dlq").contains("DeadLetterConfig"));
    let topic_fix = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["resource"] == rule_arn("to-topic").as_str())
        .map(|f| f["fix"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(
        topic_fix.contains("\"Action\":\"sns:Publish\"")
            && topic_fix.contains(&rule_arn("to-topic")),
        "{topic_fix}"
    );
    assert!(fix_of("api-destination-rate-limit-low").contains(
        "aws events update-api-destination --name crm-webhook --invocation-rate-limit-per-second 30"
    ));
    assert!(fix_of("function-without-on-failure").contains("put-function-event-invoke-config"));
    // The page and the record beside it; no secret anywhere.
    let page = std::fs::read_to_string(out.path().join("doctor.html")).unwrap();
    assert!(page.contains("connection-deauthorized") && page.contains("Content-Security-Policy"));
    let stored: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("doctor.json")).unwrap()).unwrap();
    assert_eq!(stored["findings"], json["findings"]);
    assert!(!json.to_string().contains("doctor-secret") && !page.contains("doctor-secret"));
}

#[tokio::test]
async fn the_text_lists_findings_most_severe_first_and_exit_1_for_warnings_alone() {
    let (world, sim) = genesys_world(&[END, TRANSCRIPTION]).await;
    world.good_rule().await;
    let run = output(world.doctor(Some(&sim), &[])).await;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(
        stdout.starts_with(&format!(
            "WARNING  topic-unrouted  {SOURCE} topic {TRANSCRIPTION}"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("checked 1 bus(es), 1 rule(s), 1 target(s), 1 Genesys Cloud integration(s): 1 finding(s)"), "{stdout}");
}

#[tokio::test]
async fn a_denied_call_is_one_unavailable_line() {
    // Exactly five unauthenticated set-up calls: rule, targets, user, policy, key.
    let world = World::builder()
        .moto_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "5")])
        .build()
        .await;
    support::moto::rule_with_target(
        &world.events(),
        None,
        "to-crm",
        &json!({"source": [{"prefix": "aws.partner/genesys.com/"}]}).to_string(),
        target("crm", &queue_arn("crm-in"), None),
    )
    .await;
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["events:*", "sqs:*", "lambda:*", "kms:*"], "Resource": "*"},
            {"Effect": "Deny", "Action": ["events:ListTargetsByRule"], "Resource": "*"},
        ]
    });
    let (access, secret) = user_with_policy(&world.sdk, "auditor", &policy).await;
    let mut cmd = world.cli(&["doctor", "--bus", "default"]);
    cmd.env("AWS_ACCESS_KEY_ID", &access)
        .env("AWS_SECRET_ACCESS_KEY", &secret);
    let run = output(cmd).await;
    let stdout = String::from_utf8_lossy(&run.stdout);
    let unavailable: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("unavailable: "))
        .collect();
    assert_eq!(unavailable.len(), 1, "{}", text(&run));
    assert!(
        unavailable[0].contains("ListTargetsByRule") && unavailable[0].contains("to-crm"),
        "{stdout}"
    );
    assert!(!stdout.contains(&secret));
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
}

#[tokio::test]
async fn the_triage_functions_own_bucket_table_bus_and_schedule_are_checked() {
    let world = account().build().await;
    let function = world.function("dlq-triage", "lambda-role", Some(30)).await;
    let lambda = aws_sdk_lambda::Client::new(&world.sdk);
    let env = aws_sdk_lambda::types::Environment::builder()
        .variables("REPORT_BUCKET", "reports-that-were-never-made")
        .variables("INCIDENT_TABLE", "incidents-gone")
        .variables("NOTIFY_EVENT_BUS", "ops-gone")
        .build();
    lambda
        .update_function_configuration()
        .function_name("dlq-triage")
        .environment(env)
        .send()
        .await
        .unwrap();
    let events = world.events();
    events
        .put_rule()
        .name("dlq-triage-sweep")
        .schedule_expression("rate(5 minutes)")
        .state(aws_sdk_eventbridge::types::RuleState::Disabled)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("dlq-triage-sweep")
        .targets(target("fn", &function, None))
        .send()
        .await
        .unwrap();
    let (status, json) = run_json(world.doctor(
        None,
        &["--json", "--bus", "no-such-bus", "--function", "dlq-triage"],
    ))
    .await;
    let got: BTreeSet<_> = found(&json).into_iter().collect();
    let expected: BTreeSet<(String, String, String)> = [
        (
            "stack-bucket-missing",
            "error",
            "reports-that-were-never-made",
        ),
        ("stack-table-missing", "warning", "incidents-gone"),
        ("stack-bus-missing", "warning", "ops-gone"),
        (
            "stack-schedule-disabled",
            "warning",
            "arn:aws:events:us-east-1:123456789012:rule/dlq-triage-sweep",
        ),
    ]
    .into_iter()
    .map(|(c, s, r)| (c.to_owned(), s.to_owned(), r.to_owned()))
    .collect();
    assert_eq!(got, expected, "{json:#}");
    assert_eq!(
        json["unavailable"],
        json!(["EventBridge ListRules (no-such-bus): no such event bus"]),
        "{json:#}"
    );
    assert_eq!(status, Some(2));
}

/// The scheduled run's account: a partner bus, `prod` and `ops` buses, a rule on `ops`
/// sending findings to the world's channel queue, the triage function, and one fault:
/// rule `to-crm`'s target has no dead-letter queue (its queue's policy is right). The
/// incident table `incidents` on dynalite.
async fn world_with_one_fault() -> World {
    let world = account()
        .incident_table("incidents")
        .bus("ops")
        .channel(
            "finding-channel",
            "findings-to-the-channel",
            "DLQ Triage Finding",
        )
        .build()
        .await;
    let sdk = world.sdk.clone();
    let events = world.events();
    events
        .create_partner_event_source()
        .name(SOURCE)
        .account(ACCOUNT)
        .send()
        .await
        .unwrap();
    events
        .create_event_bus()
        .name(SOURCE)
        .event_source_name(SOURCE)
        .send()
        .await
        .unwrap();
    events.create_event_bus().name("prod").send().await.unwrap();
    world.queue("crm-in", &[]).await;
    world.function("triage", "lambda-role", Some(30)).await;
    // The one fault: a target without a dead-letter queue (its queue's policy is right).
    let policy = events_may_send("crm-in", &rule_arn("to-crm"));
    aws_sdk_sqs::Client::new(&sdk)
        .set_queue_attributes()
        .queue_url(
            aws_sdk_sqs::Client::new(&sdk)
                .get_queue_url()
                .queue_name("crm-in")
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap(),
        )
        .attributes(QueueAttributeName::Policy, policy)
        .send()
        .await
        .unwrap();
    world
        .rule("to-crm", END, target("crm", &queue_arn("crm-in"), None))
        .await;
    world
}

/// The function's daily run: the same audit, one `DLQ Triage Finding` event per new
/// finding on NOTIFY_EVENT_BUS, deduplicated through the incident table (dynalite).
#[tokio::test]
async fn the_scheduled_run_announces_each_new_finding_once() {
    use chrono::TimeZone;
    use genesys_dlq_triage::Response;
    use lambda_runtime::{Context, LambdaEvent};
    use std::sync::atomic::Ordering;

    let world = world_with_one_fault().await;
    let channel = world.channel();
    let clock =
        support::world::clock_at(chrono::Utc.with_ymd_and_hms(2026, 12, 7, 6, 0, 0).unwrap());
    // NOTIFY_EVENT_BUS `ops`, INCIDENT_TABLE `incidents`: the world's.
    let handler = world.handler(&clock, &[("REPORT_BUCKET", "reports")]);
    let run = || async {
        let event = serde_json::from_value(
            json!({"source": "genesys-dlq-triage", "detail-type": "DLQ Triage Doctor Run"}),
        )
        .expect("the doctor schedule's input is an invocation");
        match handler
            .handle_invocation(LambdaEvent::new(event, Context::default()))
            .await
            .unwrap()
        {
            Response::Doctor(done) => serde_json::to_value(done).unwrap(),
            other => panic!("not a doctor run: {other:?}"),
        }
    };
    let first = run().await;
    assert_eq!(
        first,
        json!({"findings": 1, "unavailable": 0, "announced": 1, "failed": 0})
    );
    let bodies = channel.drain_bodies().await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let event: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(event["detail-type"], "DLQ Triage Finding");
    assert_eq!(event["source"], "genesys-dlq-triage");
    let resource = format!("{} target crm", rule_arn("to-crm"));
    assert_eq!(event["detail"]["code"], "target-without-dlq");
    assert_eq!(event["detail"]["severity"], "error");
    assert_eq!(event["detail"]["resource"], resource.as_str());
    assert_eq!(
        event["detail"]["dedupKey"],
        format!("finding#target-without-dlq#{resource}")
    );
    // The next day's run finds it again and announces nothing.
    clock.fetch_add(24 * 3600 * 1000, Ordering::SeqCst);
    let second = run().await;
    assert_eq!(
        second,
        json!({"findings": 1, "unavailable": 0, "announced": 0, "failed": 0})
    );
    assert_eq!(channel.drain_bodies().await, Vec::<String>::new());
}

/// A service that never answers costs one `unavailable:` line per call, each within its
/// own timeout, and the audit still ends.
#[tokio::test]
async fn a_hung_service_is_one_unavailable_line_per_call_within_its_timeout() {
    let world = account().build().await;
    let hole = support::net::black_hole().await;
    let mut cmd = world.doctor(
        None,
        &["--call-timeout-ms", "300", "--function", "dlq-triage"],
    );
    cmd.env("AWS_ENDPOINT_URL_EVENTBRIDGE", &hole)
        .env("AWS_ENDPOINT_URL_LAMBDA", &hole);
    let started = std::time::Instant::now();
    let run = output(cmd).await;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let unavailable: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("unavailable: "))
        .collect();
    assert_eq!(
        unavailable,
        [
            "unavailable: EventBridge ListEventBuses (aws.partner/genesys.com/): no answer within 300ms",
            "unavailable: Lambda GetFunctionConfiguration (dlq-triage): no answer within 300ms",
        ],
        "{}",
        text(&run)
    );
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
}
