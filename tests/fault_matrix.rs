//! The no-loss invariant under randomized faults: random batches (duplicate ids, FIFO
//! groups, hostile bodies) meet random failures (payload keys, the JSON or the Markdown
//! report alone, transient and permanent correlation failures, a passed deadline, a panic
//! inside one record). Whatever happens, every record is exactly one of: acknowledged, with
//! its payload stored byte for byte and the report stored; or returned. On FIFO, no record
//! is acknowledged after a returned record of its own group.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use genesys_dlq_triage::{
    Artifact, ArtifactStore, DeadLetter, Disposition, FailureContext, InteractionInfo, Layout,
    LookupFailure, MemoryCorrelator, MemoryStore, ReplaySource, Services, StoreError,
    SystemAttributes, TriageOptions, TriageService,
};
use proptest::prelude::*;

const CONVERSATIONS: [&str; 3] = [
    "0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22",
    "1a2b3c4d-1b8e-4d2a-9c1e-7f00aa11bb22",
    "2b3c4d5e-1b8e-4d2a-9c1e-7f00aa11bb22",
];

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    group: Option<&'static str>,
    receives: u32,
    code: Option<&'static str>,
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..3usize).prop_map(|c| format!(
            r#"{{"version":"0","id":"e","detail-type":"v2.detail.events.conversation.{{id}}.customer.end","source":"aws.partner/genesys.com/cloud/o/s","time":"2026-11-28T09:00:00Z","detail":{{"topicName":"t","eventBody":{{"conversationId":"{}"}}}}}}"#,
            CONVERSATIONS[c]
        )),
        ".{0,40}",
        (129..300usize).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        Just("{\"detail-type\":\"x\u{0}\u{1b}[31m\",\"source\":\"s\"}".to_owned()),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop_oneof![3 => "[a-f0-9]{8}", 1 => Just("dup".to_owned()), 1 => Just("../x".to_owned())],
        body(),
        prop_oneof![Just(None), Just(Some("a")), Just(Some("b"))],
        1..5u32,
        prop_oneof![
            Just(None),
            Just(Some("THROTTLING")),
            Just(Some("ERROR_FROM_TARGET"))
        ],
    )
        .prop_map(|(id, body, group, receives, code)| Message {
            id,
            body,
            group,
            receives,
            code,
        })
}

#[derive(Debug, Clone)]
enum Correlation {
    Found,
    Transient,
    Permanent,
}

#[derive(Debug, Clone)]
struct Faults {
    failing_payloads: Vec<usize>,
    panicking_payload: Option<usize>,
    fail_json: bool,
    fail_markdown: bool,
    /// The report's page: it must never change what is acknowledged.
    fail_page: bool,
    correlation: Vec<Correlation>,
    deadline_passed: bool,
}

fn faults() -> impl Strategy<Value = Faults> {
    (
        prop::collection::vec(0..40usize, 0..4),
        prop::option::weighted(0.2, 0..40usize),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
        prop::collection::vec(
            prop_oneof![2 => Just(Correlation::Found), 1 => Just(Correlation::Transient), 1 => Just(Correlation::Permanent)],
            3,
        ),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(failing_payloads, panicking_payload, fail_json, fail_markdown, fail_page, correlation, deadline_passed)| Faults {
            failing_payloads,
            panicking_payload,
            fail_json,
            fail_markdown,
            fail_page,
            correlation,
            deadline_passed,
        })
}

fn letters(messages: &[Message], fifo: bool) -> Vec<DeadLetter> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let receives = m.receives.to_string();
            DeadLetter::new(
                i,
                Some(m.id.clone()),
                m.body.clone(),
                SystemAttributes {
                    receive_count: Some(&receives),
                    sent_timestamp: Some("1795900000000"),
                    message_group_id: if fifo { m.group } else { None },
                },
                FailureContext {
                    error_code: m.code.map(str::to_owned),
                    target_arn: Some("arn:aws:events:eu-west-1:1:api-destination/crm/1".into()),
                    ..FailureContext::default()
                },
                fifo.then(|| "arn:aws:sqs:eu-west-1:1:dlq.fifo".to_owned()),
            )
        })
        .collect()
}

/// The memory store, with one key that panics.
struct Store {
    inner: MemoryStore,
    panics_on: Option<String>,
}

impl ArtifactStore for Store {
    fn put<'a>(&'a self, artifact: &'a Artifact) -> BoxFuture<'a, Result<(), StoreError>> {
        if self.panics_on.as_deref() == Some(artifact.key.as_str()) {
            panic!("store panicked on {}", artifact.key);
        }
        self.inner.put(artifact)
    }
}

fn options() -> TriageOptions {
    let mut opts = TriageOptions::new(Layout::prefixed("p/"), ReplaySource::Bucket("b".into()));
    opts.report_id = "r".into();
    opts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: dlq_triage_test_support::proptest_cases(512), ..ProptestConfig::default() })]

    #[test]
    fn no_record_is_ever_lost(
        messages in prop::collection::vec(message(), 1..40),
        fifo in any::<bool>(),
        faults in faults(),
    ) {
        let letters = letters(&messages, fifo);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let correlator = CONVERSATIONS.iter().zip(&faults.correlation).fold(
            MemoryCorrelator::skipped("unused"),
            |c, (id, kind)| {
                let info = match kind {
                    Correlation::Found => InteractionInfo::NotFound,
                    Correlation::Transient => InteractionInfo::Unavailable(LookupFailure { error: "503".into(), transient: true }),
                    Correlation::Permanent => InteractionInfo::Unavailable(LookupFailure { error: "403".into(), transient: false }),
                };
                c.with(*id, info)
            },
        );
        // The keys a fault-free run uses, to aim the faults.
        let clean = rt.block_on(genesys_dlq_triage::run(&letters, &MemoryStore::new(), &correlator, &options()));
        let keys: Vec<String> = clean.report.records.iter().filter_map(|r| r.replay_payload_key.clone()).collect();
        let stored = clean.report_keys.clone().unwrap();
        let (json_key, md_key) = (stored.json, stored.markdown);
        let page_key = json_key.replace(".json", ".html");

        let store = Arc::new(Store {
            inner: MemoryStore::new(),
            panics_on: faults.panicking_payload.and_then(|i| keys.get(i).cloned()),
        });
        for i in &faults.failing_payloads {
            if let Some(k) = keys.get(*i) { store.inner.fail_key(k); }
        }
        if faults.fail_json { store.inner.fail_key(&json_key); }
        if faults.fail_markdown { store.inner.fail_key(&md_key); }
        if faults.fail_page { store.inner.fail_key(&page_key); }
        let mut opts = options();
        if faults.deadline_passed {
            opts.deadline = Some(tokio::time::Instant::now());
            opts.safety_margin = Duration::from_secs(1);
        }
        // Through the triage service, which stores the page after the pipeline.
        let service = TriageService::new(Services::new(store.clone()));
        let mut taken = letters.clone();
        let outcome = rt.block_on(service.triage(&mut taken, &correlator, opts)).outcome;

        // One record per message, in order.
        prop_assert_eq!(outcome.report.records.len(), letters.len());
        let report_stored = store.inner.get(&json_key).is_some() && store.inner.get(&md_key).is_some();
        prop_assert_eq!(outcome.batch_error.is_none(), report_stored);
        if let Some(keys) = &outcome.report_keys {
            prop_assert_eq!(keys.html.is_some(), !faults.fail_page);
        }
        let mut expected_returned = Vec::new();
        let mut acknowledged = 0;
        let mut returned_groups: HashSet<&str> = HashSet::new();
        for (letter, record) in letters.iter().zip(&outcome.report.records) {
            let stored_here = matches!(record.disposition, Disposition::Stored) && report_stored;
            if stored_here {
                acknowledged += 1;
                // Its payload is there, byte for byte.
                let key = record.replay_payload_key.as_deref().unwrap();
                let payload = store.inner.get(key);
                prop_assert_eq!(payload.as_deref(), Some(&letter.body[..]));
                // FIFO: nothing acknowledged after a returned record of its group.
                if let Some(g) = &letter.message_group_id {
                    prop_assert!(!returned_groups.contains(g.as_str()), "{} stored after its group failed", letter.message_id);
                }
            } else {
                expected_returned.push(letter.message_id.clone());
                if let Some(g) = &letter.message_group_id {
                    returned_groups.insert(g);
                }
            }
        }
        prop_assert_eq!(&outcome.returned, &expected_returned);
        prop_assert_eq!(outcome.acknowledged, acknowledged);
        prop_assert_eq!(acknowledged + outcome.returned.len(), letters.len());
        // A transient correlation failure inside the receive budget always goes back.
        for (letter, record) in letters.iter().zip(&outcome.report.records) {
            if record.interaction_info.is_transient_failure() && letter.receive_count.unwrap_or(1) < 3 {
                prop_assert!(outcome.returned.contains(&letter.message_id));
            }
        }
        // Payload files never collide, even for duplicate or hostile ids.
        let distinct: HashMap<&str, usize> = outcome.report.records.iter()
            .filter_map(|r| r.replay_payload_key.as_deref())
            .fold(HashMap::new(), |mut m, k| { *m.entry(k).or_insert(0) += 1; m });
        prop_assert!(distinct.values().all(|n| *n == 1));
    }
}
