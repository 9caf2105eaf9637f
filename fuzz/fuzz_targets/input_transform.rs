//! A rule target's InputTransformer applied to an event, both from the fuzzer: the first
//! line is the template, the rest the event. Never a panic, whatever either holds.
#![no_main]

use genesys_dlq_triage::{RuleContext, TargetInput, apply_input_transformation as apply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (template, event) = text.split_once('\n').unwrap_or((&text, "{}"));
    let rule = RuleContext::from_arn("arn:aws:events:us-east-1:1:rule/bus/r");
    let paths = [
        ("a", "$.detail.a"),
        ("b", "$.detail.items[*].id"),
        ("c", "$.resources[0]"),
        ("d", template.get(..template.len().min(20)).unwrap_or("$")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let _ = apply(
        &TargetInput::Transformer {
            paths,
            template: template.to_owned(),
        },
        event.as_bytes(),
        &rule,
    );
    let _ = apply(
        &TargetInput::Path(template.to_owned()),
        event.as_bytes(),
        &rule,
    );
});
