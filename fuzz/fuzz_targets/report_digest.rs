//! Any bytes as a stored report: `summarize`'s parse (sonic-rs) and its judge (serde_json)
//! give the same digest, or both refuse the bytes — never a panic, never a disagreement.
#![no_main]

use genesys_dlq_triage::ReportDigest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match (
        ReportDigest::parse(data),
        ReportDigest::parse_with_serde_json(data),
    ) {
        (Ok(fast), Ok(judge)) => assert_eq!(fast, judge),
        (Err(_), Err(_)) => {}
        (fast, judge) => panic!("sonic-rs {fast:?}, serde_json {judge:?}"),
    }
});
