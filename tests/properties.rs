//! Arbitrary bodies and attributes never panic and always yield exactly one record per
//! message — through parsing, classification and the whole pipeline.

use std::sync::Arc;

use genesys_dlq_triage::{
    Layout, MemoryCorrelator, MemoryStore, ReplaySource, Services, TriageOptions, TriageService,
    parse_batch,
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

        let store = Arc::new(MemoryStore::new());
        let opts = TriageOptions::new(Layout::prefixed("p/"), ReplaySource::Bucket("b".into()));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // Through the triage service, which stores the page after the pipeline.
        let service = TriageService::new(Services::new(store.clone()));
        let outcome = rt.block_on(service.triage(&mut letters.clone(), &MemoryCorrelator::skipped("test"), opts)).outcome;
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

/// A JSON string literal of hostile text: escapes of every kind (control characters,
/// surrogate pairs, lone surrogates, `\/`), raw non-ASCII, or plain text.
fn json_string() -> impl Strategy<Value = String> {
    // Mostly text a report holds; now and then text no JSON parser may accept.
    let piece = prop_oneof![
        20 => "[ -~&&[^\"\\\\]]{0,8}".prop_map(|s| s),
        4 => Just(r"\u0000".to_owned()),
        4 => Just(r"\ud83d\ude00".to_owned()),
        4 => Just(r#"\"\\\/\b\f\n\r\t"#.to_owned()),
        4 => Just("\u{202e}é😀".to_owned()),
        4 => "\\\\u00[0-7][0-9a-fA-F]",
        1 => "\\\\u[0-9a-fA-F]{4}",
        1 => Just(r"\ud800".to_owned()),
        1 => Just(r"\udc00x".to_owned()),
        1 => Just(r"\x".to_owned()),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// A report's text built by hand: the fields `summarize` reads, each one a hostile string,
/// a wrong type or missing, beside fields it skips.
fn report_text() -> impl Strategy<Value = String> {
    let opt_string = prop_oneof![
        12 => json_string(),
        6 => Just("null".to_owned()),
        1 => Just("7".to_owned()),
        1 => Just("[]".to_owned())
    ];
    let record = (
        json_string(),
        opt_string.clone(),
        opt_string.clone(),
        opt_string,
        prop_oneof![
            10 => Just("\"RATE_LIMIT_EXCEEDED\"".to_owned()),
            10 => Just("\"UNKNOWN\"".to_owned()),
            1 => json_string()
        ],
        prop_oneof![
            10 => Just("429".to_owned()),
            10 => Just("null".to_owned()),
            1 => Just("70000".to_owned()),
            1 => Just("-1".to_owned()),
            1 => Just("4.5".to_owned())
        ],
        prop_oneof![
            10 => Just(r#"{"status":"stored"}"#.to_owned()),
            10 => Just(r#"{"status":"returned","reason":"x"}"#.to_owned()),
            1 => json_string().prop_map(|s| format!(r#"{{"status":{s}}}"#)),
        ],
        prop_oneof![
            10 => Just(r#"{"status":"skipped"}"#.to_owned()),
            10 => json_string().prop_map(|s| format!(
                r#"{{"status":"found","mediaTypes":[{s}],"conversationStart":{s}}}"#
            )),
            1 => json_string().prop_map(|s| format!(r#"{{"status":{s}}}"#)),
        ],
    )
        .prop_map(|(id, at, target, error, category, status, disposition, info)| {
            format!(
                r#"{{"messageId":{id},"sentTimestamp":{at},"timestamp":{at},"targetArn":{target},"errorMessage":{error},"failureCategory":{category},"httpStatus":{status},"disposition":{disposition},"interactionInfo":{info},"evidence":{{"rule":"x","matched":[1,{{"a":null}}]}}}}"#
            )
        });
    (
        prop_oneof![20 => Just("1"), 1 => Just("2"), 1 => Just("\"1\"")],
        json_string(),
        prop::collection::vec(record, 0..4),
    )
        .prop_map(|(version, generated, records)| {
            format!(
                r#"{{"schemaVersion":{version},"generatedAt":{generated},"summary":{{"incidents":[]}},"records":[{}]}}"#,
                records.join(",")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: dlq_triage_test_support::proptest_cases(512), ..ProptestConfig::default() })]

    /// `summarize` reads reports with sonic-rs; serde_json is the judge: both parsers give
    /// the same digest, or both refuse the text.
    #[test]
    fn sonic_rs_reads_reports_as_serde_json_does(text in report_text()) {
        let fast = genesys_dlq_triage::ReportDigest::parse(text.as_bytes());
        let judge = genesys_dlq_triage::ReportDigest::parse_with_serde_json(text.as_bytes());
        match (&fast, &judge) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "sonic-rs {:?}\nserde_json {:?}\ntext {}", fast, judge, text),
        }
    }

    /// Reports as the pipeline writes them (generated batches) read the same through both.
    #[test]
    fn sonic_rs_reads_pipeline_reports_as_serde_json_does(
        messages in prop::collection::vec((body(), attributes(), prop::option::of("[ -~]{0,40}")), 0..8)
    ) {
        let records: Vec<Value> = messages.iter().map(|(body, attrs, id)| json!({
            "messageId": id, "body": body, "messageAttributes": attrs,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764320000123"},
        })).collect();
        let letters = parse_batch(&serde_json::to_vec(&json!({"Records": records})).unwrap()).unwrap();
        let store = MemoryStore::new();
        let opts = TriageOptions::new(Layout::prefixed("p/"), ReplaySource::Bucket("b".into()));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(genesys_dlq_triage::run(&letters, &store, &MemoryCorrelator::skipped("test"), &opts));
        let key = store.keys().into_iter().find(|k| k.contains("/reports/") && k.ends_with(".json")).unwrap();
        let bytes = store.get(&key).unwrap();
        let fast = genesys_dlq_triage::ReportDigest::parse(&bytes).unwrap();
        prop_assert_eq!(fast.records.len(), messages.len());
        prop_assert_eq!(fast, genesys_dlq_triage::ReportDigest::parse_with_serde_json(&bytes).unwrap());
    }
}
