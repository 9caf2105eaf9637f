//! Arbitrary bodies and attributes never panic and always yield exactly one record per
//! message — through parsing, classification and the whole pipeline.

use genesys_dlq_triage::{
    Layout, MemoryCorrelator, MemoryStore, ReplaySource, TriageOptions, parse_batch,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Bodies: random text, JSON of every kind, and event-like objects with odd field types.
fn body() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".*".prop_map(Value::from),
        Just(Value::from("0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22")),
    ];
    let json_value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("detail".to_owned()),
                    Just("detail-type".to_owned()),
                    Just("source".to_owned()),
                    Just("topicName".to_owned()),
                    Just("eventBody".to_owned()),
                    Just("conversationId".to_owned()),
                    Just("id".to_owned()),
                    Just("busArn".to_owned()),
                    Just("failedMessages".to_owned()),
                    Just("interactionId".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        ".*",
        json_value.prop_map(|v| v.to_string()),
        (".*", ".*").prop_map(|(a, b)| json!({
            "detail-type": a, "source": "aws.partner/genesys.com/cloud/x/y",
            "detail": {"topicName": b, "eventBody": {"conversationId": 5}}
        })
        .to_string()),
    ]
}

/// Attribute maps: any subset of EventBridge's names, values of any JSON type or null.
fn attributes() -> impl Strategy<Value = Value> {
    let names = prop::sample::subsequence(
        vec![
            "RULE_ARN",
            "TARGET_ARN",
            "ERROR_CODE",
            "ERROR_MESSAGE",
            "EXHAUSTED_RETRY_CONDITION",
            "RETRY_ATTEMPTS",
            "OTHER",
        ],
        0..7,
    );
    let value = prop_oneof![
        ".*".prop_map(|s| json!({"stringValue": s, "dataType": "String"})),
        "(status|HTTP|returned)? ?[0-9]{1,4} ?[a-zA-Z ]{0,20}"
            .prop_map(|s| json!({"stringValue": s, "dataType": "String"})),
        Just(json!({"stringValue": null, "dataType": "String"})),
        Just(Value::Null),
        any::<i64>().prop_map(|n| json!({"stringValue": n})),
        Just(json!("bare string")),
    ];
    (names, prop::collection::vec(value, 7)).prop_map(|(names, values)| {
        Value::Object(
            names
                .into_iter()
                .zip(values)
                .map(|(n, v)| (n.to_owned(), v))
                .collect(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: dlq_triage_test_support::proptest_cases(256), ..ProptestConfig::default() })]

    #[test]
    fn every_message_yields_exactly_one_record(
        messages in prop::collection::vec((body(), attributes(), prop::option::of("[ -~]{0,40}")), 0..12)
    ) {
        let records: Vec<Value> = messages.iter().map(|(body, attrs, id)| json!({
            "messageId": id, "body": body, "messageAttributes": attrs,
            "attributes": {"ApproximateReceiveCount": "1"},
        })).collect();
        let input = serde_json::to_vec(&json!({"Records": records})).unwrap();
        let letters = parse_batch(&input).unwrap();
        prop_assert_eq!(letters.len(), messages.len());
        for (letter, (body, _, _)) in letters.iter().zip(&messages) {
            prop_assert_eq!(&letter.body, body);
        }

        let store = MemoryStore::new();
        let opts = TriageOptions::new(Layout::prefixed("p/"), ReplaySource::Bucket("b".into()));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let outcome = rt.block_on(genesys_dlq_triage::run(&letters, &store, &MemoryCorrelator::skipped("test"), &opts));
        prop_assert_eq!(outcome.report.records.len(), messages.len());
        prop_assert_eq!(outcome.acknowledged, messages.len());
        // One payload per record (keys are distinct even for duplicate or hostile ids), plus
        // the report's JSON, Markdown and page.
        prop_assert_eq!(store.keys().len(), messages.len() + 3);
        for record in &outcome.report.records {
            let key = record.replay_payload_key.as_deref().unwrap();
            prop_assert!(key.starts_with("p/replay/dt="));
            prop_assert!(key.split('/').all(|part| !part.is_empty() && part != ".." && part != "."), "{}", key);
        }
    }
}
