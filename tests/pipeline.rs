//! The no-loss rules (`docs/architecture.md`), on the pipeline with in-memory ports.

use std::time::Duration;

use futures::future::BoxFuture;
use genesys_dlq_triage::{
    Artifact, ArtifactStore, DeadLetter, Disposition, Layout, LookupFailure, MemoryCorrelator,
    MemoryStore, ReplaySource, StoreError, TriageOptions, parse_batch,
};
use tokio::time::Instant;

fn mixed_batch() -> Vec<DeadLetter> {
    parse_batch(&dlq_triage_test_support::fixtures::event_bytes(
        "sqs-mixed-batch.json",
    ))
    .unwrap()
}

fn options() -> TriageOptions {
    TriageOptions::new(
        Layout::prefixed("genesys-dlq/"),
        ReplaySource::Bucket("bucket".into()),
    )
}

fn skip() -> MemoryCorrelator {
    MemoryCorrelator::skipped("test")
}

fn ids(letters: &[DeadLetter]) -> Vec<String> {
    letters.iter().map(|l| l.message_id.clone()).collect()
}

#[tokio::test]
async fn everything_stored_means_everything_acknowledged() {
    let letters = mixed_batch();
    let store = MemoryStore::new();
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    assert!(outcome.returned.is_empty());
    assert_eq!(outcome.acknowledged, letters.len());
    let keys = outcome.report_keys.clone().unwrap();
    let (json_key, md_key) = (keys.json, keys.markdown);
    assert!(json_key.starts_with("genesys-dlq/reports/dt="));
    assert!(store.get(&json_key).is_some() && store.get(&md_key).is_some());
    for (record, letter) in outcome.report.records.iter().zip(&letters) {
        let key = record.replay_payload_key.as_deref().unwrap();
        assert_eq!(store.get(key).unwrap(), &letter.body[..]);
        assert_eq!(record.disposition, Disposition::Stored);
    }
}

#[tokio::test]
async fn a_failed_payload_write_returns_exactly_that_record() {
    let letters = mixed_batch();
    let first = genesys_dlq_triage::run(&letters, &MemoryStore::new(), &skip(), &options()).await;
    let victim = &first.report.records[3];
    let store = MemoryStore::new();
    store.fail_key(victim.replay_payload_key.as_deref().unwrap());
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    assert_eq!(outcome.returned, vec![victim.message_id.clone()]);
    let record = &outcome.report.records[3];
    assert_eq!(record.replay_payload_key, None);
    assert!(
        matches!(&record.disposition, Disposition::Returned { reason } if reason.to_string().contains("write failed"))
    );
}

#[tokio::test]
async fn a_failed_report_write_returns_every_record() {
    let letters = mixed_batch();
    let store = MemoryStore::new();
    store.fail_prefix("genesys-dlq/reports/");
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    assert_eq!(outcome.returned, ids(&letters));
    assert_eq!(outcome.acknowledged, 0);
    assert!(outcome.batch_error.is_some());
}

#[tokio::test]
async fn nothing_new_starts_inside_the_safety_margin() {
    let letters = mixed_batch();
    let store = MemoryStore::new();
    let mut opts = options();
    opts.deadline = Some(Instant::now() + Duration::from_secs(1));
    opts.safety_margin = Duration::from_secs(2);
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &opts).await;
    assert_eq!(outcome.returned, ids(&letters));
    // The report still says why.
    assert!(outcome.report.records.iter().all(|r| matches!(&r.disposition, Disposition::Returned { reason } if reason.to_string().starts_with("deadline"))));
    assert!(
        store.keys().iter().all(|k| k.contains("/reports/")),
        "no payload was started"
    );
}

#[tokio::test]
async fn transient_correlation_failures_return_until_the_receive_budget_is_spent() {
    let letters = mixed_batch();
    let transient = MemoryCorrelator::unavailable(LookupFailure {
        error: "HTTP 503".into(),
        transient: true,
    });
    let outcome =
        genesys_dlq_triage::run(&letters, &MemoryStore::new(), &transient, &options()).await;
    let with_conversation: Vec<String> = outcome
        .report
        .records
        .iter()
        .filter(|r| r.interaction_id.is_some())
        .map(|r| r.message_id.clone())
        .collect();
    assert!(!with_conversation.is_empty());
    assert_eq!(
        outcome.returned, with_conversation,
        "receive count 1 < 3: back to the queue"
    );

    let mut late = letters.clone();
    for l in &mut late {
        l.receive_count = Some(3);
    }
    let outcome = genesys_dlq_triage::run(&late, &MemoryStore::new(), &transient, &options()).await;
    assert!(
        outcome.returned.is_empty(),
        "budget spent: archived as unavailable"
    );
    assert!(
        outcome
            .report
            .records
            .iter()
            .filter(|r| r.interaction_id.is_some())
            .all(|r| r.interaction_info.status() == "unavailable")
    );

    let permanent = MemoryCorrelator::unavailable(LookupFailure {
        error: "HTTP 403".into(),
        transient: false,
    });
    let outcome =
        genesys_dlq_triage::run(&letters, &MemoryStore::new(), &permanent, &options()).await;
    assert!(
        outcome.returned.is_empty(),
        "a permanent failure is archived at once"
    );
}

#[tokio::test]
async fn on_fifo_a_failure_holds_back_only_the_later_records_of_its_group() {
    let mut letters = mixed_batch();
    for (i, l) in letters.iter_mut().enumerate() {
        l.source_queue_arn = Some("arn:aws:sqs:eu-west-1:111122223333:genesys-dlq.fifo".into());
        l.message_group_id = Some(if i % 2 == 0 { "a" } else { "b" }.into());
    }
    let first = genesys_dlq_triage::run(&letters, &MemoryStore::new(), &skip(), &options()).await;
    let store = MemoryStore::new();
    // Record 4 is in group a.
    store.fail_key(
        first.report.records[4]
            .replay_payload_key
            .as_deref()
            .unwrap(),
    );
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    let expected: Vec<String> = letters
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= 4 && i % 2 == 0)
        .map(|(_, l)| l.message_id.clone())
        .collect();
    assert_eq!(
        outcome.returned, expected,
        "record 4 and the later records of group a"
    );
    let stored = store
        .keys()
        .iter()
        .filter(|k| k.contains("/replay/"))
        .count();
    assert_eq!(stored, letters.len() - expected.len(), "group b went on");
    let held_back = outcome
        .report
        .records
        .iter()
        .filter(|r| matches!(&r.disposition, Disposition::Returned { reason } if reason.to_string().starts_with("fifo")))
        .count();
    assert_eq!(held_back, expected.len() - 1);
}

/// A store that panics on one key.
struct PanicOn(String, MemoryStore);

impl ArtifactStore for PanicOn {
    fn put<'a>(&'a self, artifact: &'a Artifact) -> BoxFuture<'a, Result<(), StoreError>> {
        if artifact.key == self.0 {
            panic!("boom");
        }
        self.1.put(artifact)
    }
}

#[tokio::test]
async fn a_panic_while_storing_one_record_fails_only_that_record() {
    let letters = mixed_batch();
    let first = genesys_dlq_triage::run(&letters, &MemoryStore::new(), &skip(), &options()).await;
    let victim = &first.report.records[7];
    let store = PanicOn(
        victim.replay_payload_key.clone().unwrap(),
        MemoryStore::new(),
    );
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    assert_eq!(outcome.returned, vec![victim.message_id.clone()]);
}

#[tokio::test]
async fn redelivered_records_overwrite_their_own_keys() {
    let letters = mixed_batch();
    let store = MemoryStore::new();
    let a = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    let b = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    let keys = |o: &genesys_dlq_triage::Outcome| {
        o.report
            .records
            .iter()
            .map(|r| r.replay_payload_key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&a), keys(&b));
}

#[tokio::test]
async fn duplicate_message_ids_in_one_batch_never_share_a_file() {
    let mut letters = mixed_batch();
    letters.truncate(2);
    letters[1].message_id = letters[0].message_id.clone();
    let store = MemoryStore::new();
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    let k0 = outcome.report.records[0]
        .replay_payload_key
        .clone()
        .unwrap();
    let k1 = outcome.report.records[1]
        .replay_payload_key
        .clone()
        .unwrap();
    assert_ne!(k0, k1);
    assert_eq!(store.get(&k1).unwrap(), &letters[1].body[..]);
}

/// A store whose writes never finish (a bucket endpoint that accepts and never answers).
struct Hung;

impl ArtifactStore for Hung {
    fn put<'a>(&'a self, _: &'a Artifact) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_never_answers_cannot_outlast_the_deadline() {
    let letters = mixed_batch();
    let mut opts = options();
    let started = Instant::now();
    opts.deadline = Some(started + Duration::from_secs(30));
    opts.safety_margin = Duration::from_secs(4);
    let outcome = genesys_dlq_triage::run(&letters, &Hung, &skip(), &opts).await;
    assert!(
        Instant::now() < started + Duration::from_secs(30),
        "returned before the deadline"
    );
    assert_eq!(outcome.returned, ids(&letters));
    assert!(
        outcome.outage().is_some_and(|o| o.contains("timed out")),
        "{:?}",
        outcome.outage()
    );
}

#[tokio::test]
async fn a_batch_the_pipeline_owns_gives_the_same_report_and_byte_exact_payloads() {
    // `run_taking_bodies` releases the bodies once the payloads are written (the Lambda
    // and `analyze` use it); nothing it reports or stores may differ from `run`'s.
    let letters = mixed_batch();
    let opts = options();
    let borrowed_store = MemoryStore::new();
    let borrowed = genesys_dlq_triage::run(&letters, &borrowed_store, &skip(), &opts).await;
    let owned_store = MemoryStore::new();
    let mut taken = letters.clone();
    let owned =
        genesys_dlq_triage::run_taking_bodies(&mut taken, &owned_store, &skip(), &opts).await;
    assert!(
        taken.iter().all(|l| l.body.is_empty()),
        "the bodies were taken"
    );
    assert!(
        taken
            .iter()
            .zip(&letters)
            .all(|(t, l)| t.message_id == l.message_id),
        "the records stay with the caller"
    );
    assert_eq!(owned.report, borrowed.report);
    assert_eq!(owned.returned, borrowed.returned);
    assert_eq!(owned.report_keys, borrowed.report_keys);
    for (record, letter) in owned.report.records.iter().zip(&letters) {
        let key = record.replay_payload_key.as_deref().unwrap();
        assert_eq!(owned_store.get(key).unwrap(), &letter.body[..]);
    }
    let json = owned.report_keys.unwrap().json;
    assert_eq!(owned_store.get(&json), borrowed_store.get(&json));
}

#[tokio::test]
async fn payloads_that_cannot_be_flushed_are_not_acknowledged() {
    // The CLI's folder store makes payloads durable with one flush after writing them; if
    // that flush fails, nothing it wrote counts as stored.
    let letters = mixed_batch();
    let store = MemoryStore::new();
    store.fail_sync_after(0);
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    assert_eq!(outcome.returned, ids(&letters));
    assert!(
        outcome
            .report
            .records
            .iter()
            .all(|r| r.replay_payload_key.is_none())
    );
}

#[tokio::test]
async fn a_report_that_cannot_be_flushed_acknowledges_nothing() {
    let letters = mixed_batch();
    let store = MemoryStore::new();
    store.fail_sync_after(1);
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    assert!(outcome.batch_error.is_some());
    assert_eq!(outcome.returned, ids(&letters));
}

/// The report is drafted while the payloads are written, as if every write succeeds; what
/// is stored must still say what happened when one did not.
#[tokio::test]
async fn the_stored_report_tells_what_happened_to_every_write() {
    let letters = mixed_batch();
    let first = genesys_dlq_triage::run(&letters, &MemoryStore::new(), &skip(), &options()).await;
    let victim = first.report.records[2].replay_payload_key.clone().unwrap();
    for fail in [None, Some(victim.as_str())] {
        let store = MemoryStore::new();
        if let Some(key) = fail {
            store.fail_key(key);
        }
        let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
        let json_key = outcome.report_keys.clone().unwrap().json;
        let stored: serde_json::Value =
            serde_json::from_slice(&store.get(&json_key).unwrap()).unwrap();
        assert_eq!(
            stored,
            serde_json::from_slice::<serde_json::Value>(&outcome.report.to_json(false).unwrap())
                .unwrap(),
            "the stored report is the outcome's"
        );
        let dispositions: Vec<&str> = stored["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["disposition"]["status"].as_str().unwrap_or("?"))
            .collect();
        for (i, d) in dispositions.iter().enumerate() {
            let expected = if fail.is_some() && i == 2 {
                "returned"
            } else {
                "stored"
            };
            assert_eq!(*d, expected, "record {i}");
        }
    }
}

#[tokio::test]
async fn a_long_batch_with_repeated_ids_numbers_each_copy_in_batch_order() {
    // Each message id repeated far apart in the batch: the copies are numbered in batch
    // order, and every record keeps its own analysis and key.
    let mixed = mixed_batch();
    let short = genesys_dlq_triage::run(&mixed, &MemoryStore::new(), &skip(), &options()).await;
    let distinct = 2_500;
    let letters: Vec<DeadLetter> = (0..6_000)
        .map(|i| {
            let mut l = mixed[i % mixed.len()].clone();
            l.message_id = format!("m-{:05}", i % distinct);
            l
        })
        .collect();
    let store = MemoryStore::new();
    let outcome = genesys_dlq_triage::run(&letters, &store, &skip(), &options()).await;
    assert_eq!(outcome.returned, Vec::<String>::new());
    assert_eq!(outcome.report.records.len(), letters.len());
    let mut keys = std::collections::HashSet::new();
    for (i, (record, letter)) in outcome.report.records.iter().zip(&letters).enumerate() {
        assert_eq!(
            record.message_id, letter.message_id,
            "record {i} in batch order"
        );
        let alone = &short.report.records[i % mixed.len()];
        assert_eq!(
            record.failure_category, alone.failure_category,
            "record {i}"
        );
        assert_eq!(record.evidence, alone.evidence, "record {i}");
        assert_eq!(record.interaction_id, alone.interaction_id, "record {i}");
        let key = record.replay_payload_key.clone().unwrap();
        let copy = i / distinct + 1;
        let stem = if copy == 1 {
            format!("{}.json", letter.message_id)
        } else {
            format!("{}~{copy}.json", letter.message_id)
        };
        assert!(key.ends_with(&format!("/{stem}")), "record {i}: {key}");
        assert_eq!(store.get(&key).unwrap(), &letter.body[..], "record {i}");
        assert!(keys.insert(key), "record {i} shares a key");
    }
}
