//! Any bytes as a batch file: parsing either yields one dead letter per message or a clear
//! error, and every dead letter classifies and yields its conversation id — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(letters) = genesys_dlq_triage::parse_batch(data) {
        for letter in &letters {
            let _ = genesys_dlq_triage::classify(&letter.failure, letter.kind);
            if let Some(event) = &letter.event {
                let _ = event.conversation_id();
            }
        }
    }
    // A body on its own (what one SQS message carries).
    if let Ok(body) = std::str::from_utf8(data) {
        let letter = genesys_dlq_triage::DeadLetter::new(
            0,
            Some("m".into()),
            body.to_owned(),
            Default::default(),
            Default::default(),
            None,
        );
        let _ = genesys_dlq_triage::classify(&letter.failure, letter.kind);
    }
});
