//! The pure pipeline over a generated 10,000-record batch: parse, classify, extract ids,
//! build and serialize the report (JSON and Markdown). Payloads go to an in-memory store;
//! nothing touches the disk or the network. Target: under 50 ms.

use criterion::{Criterion, criterion_group, criterion_main};
use genesys_dlq_triage::{
    Layout, MemoryCorrelator, MemoryStore, ReplaySource, TriageOptions, parse_batch,
};
use serde_json::Value;

/// 10,000 records made from the bundled mixed batch, each with its own message id.
fn generated_batch(n: usize) -> Vec<u8> {
    let sample: Value =
        serde_json::from_str(include_str!("../events/sqs-mixed-batch.json")).expect("sample batch");
    let records = sample["Records"].as_array().expect("Records");
    let batch: Vec<Value> = (0..n)
        .map(|i| {
            let mut r = records[i % records.len()].clone();
            r["messageId"] = Value::String(format!("{:08x}-0000-4000-8000-{:012x}", i, i));
            r
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "Records": batch })).expect("serialize")
}

fn pipeline(c: &mut Criterion) {
    let input = generated_batch(10_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let skip = MemoryCorrelator::skipped("benchmark");
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(20);
    group.bench_function("parse_10k", |b| {
        b.iter(|| parse_batch(&input).expect("parse").len())
    });
    group.bench_function("triage_10k", |b| {
        b.iter(|| {
            let letters = parse_batch(&input).expect("parse");
            let store = MemoryStore::new();
            let opts = TriageOptions::new(
                Layout::prefixed("genesys-dlq/"),
                ReplaySource::Bucket("bench".into()),
            );
            let outcome = rt.block_on(genesys_dlq_triage::run(&letters, &store, &skip, &opts));
            assert_eq!(outcome.acknowledged, 10_000);
            outcome.report.total_failures
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
