//! Invariants of template.yaml that cfn-lint and `sam validate --lint` do not check
//! (toolchain notes: they miss bad FunctionResponseTypes, BatchSize ranges and dangling
//! references in SAM SQS events), plus the least-privilege and bucket-safety rules.

use serde_norway::Value;

fn template() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, key| {
        v.get(*key)
            .unwrap_or_else(|| panic!("missing {key} in {path:?}"))
    })
}

fn param_default(t: &Value, name: &str) -> i64 {
    get(t, &["Parameters", name, "Default"])
        .as_i64()
        .unwrap_or_else(|| panic!("{name} has a numeric default"))
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Every tagged intrinsic (`!Ref`, `!GetAtt`, …) anywhere below `v`.
fn intrinsics<'a>(v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Tagged(t) => {
            out.push((
                t.tag.to_string().trim_start_matches('!').to_owned(),
                &t.value,
            ));
            intrinsics(&t.value, out);
        }
        Value::Sequence(s) => s.iter().for_each(|x| intrinsics(x, out)),
        Value::Mapping(m) => m.values().for_each(|x| intrinsics(x, out)),
        _ => {}
    }
}

/// Every IAM/resource policy statement in the template (inside `!If` too).
fn statements(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Mapping(m) => {
            if let Some(Value::Sequence(list)) = m.get("Statement") {
                for s in list {
                    match s {
                        Value::Tagged(t) => {
                            // !If [cond, statement, !Ref AWS::NoValue]
                            if let Some(branches) = t.value.as_sequence() {
                                out.extend(
                                    branches.iter().skip(1).filter(|b| b.is_mapping()).cloned(),
                                );
                            }
                        }
                        other => out.push(other.clone()),
                    }
                }
            }
            m.values().for_each(|x| statements(x, out));
        }
        Value::Sequence(s) => s.iter().for_each(|x| statements(x, out)),
        Value::Tagged(t) => statements(&t.value, out),
        _ => {}
    }
}

#[test]
fn the_function_is_an_arm64_al2023_cargo_lambda_build_of_our_binary() {
    let t = template();
    let f = get(&t, &["Resources", "TriageFunction"]);
    assert_eq!(
        get(f, &["Type"]).as_str(),
        Some("AWS::Serverless::Function")
    );
    assert_eq!(
        get(f, &["Properties", "Runtime"]).as_str(),
        Some("provided.al2023")
    );
    assert_eq!(
        str_list(get(f, &["Properties", "Architectures"])),
        ["arm64"]
    );
    assert_eq!(
        get(f, &["Metadata", "BuildMethod"]).as_str(),
        Some("rust-cargolambda")
    );
    let binary = get(f, &["Metadata", "BuildProperties", "Binary"])
        .as_str()
        .unwrap();
    let cargo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    assert!(
        cargo.contains(&format!("name = \"{binary}\"")),
        "Binary {binary} is not a [[bin]] of Cargo.toml"
    );
}

#[test]
fn the_sqs_event_reports_batch_item_failures_within_documented_limits() {
    let t = template();
    let events = get(&t, &["Resources", "TriageFunction", "Properties", "Events"])
        .as_mapping()
        .unwrap();
    assert_eq!(events.len(), 1);
    let event = events.values().next().unwrap();
    assert_eq!(get(event, &["Type"]).as_str(), Some("SQS"));
    assert_eq!(
        str_list(get(event, &["Properties", "FunctionResponseTypes"])),
        ["ReportBatchItemFailures"]
    );
    let batch = param_default(&t, "BatchSize");
    let window = param_default(&t, "MaximumBatchingWindowInSeconds");
    assert!((1..=10_000).contains(&batch));
    assert!((0..=300).contains(&window));
    assert!(
        batch <= 10 || window >= 1,
        "a batch size over 10 needs a batching window"
    );
    assert_eq!(
        get(&t, &["Parameters", "BatchSize", "MaxValue"]).as_i64(),
        Some(10_000)
    );
    assert_eq!(
        get(&t, &["Parameters", "MaximumConcurrency", "MinValue"]).as_i64(),
        Some(2),
        "Lambda's minimum"
    );
    let queue = get(event, &["Properties", "Queue"]);
    let mut refs = Vec::new();
    intrinsics(queue, &mut refs);
    assert!(
        refs.iter()
            .any(|(tag, v)| tag == "GetAtt" && v.as_str() == Some("DeadLetterQueue.Arn"))
    );
}

#[test]
fn visibility_timeout_is_at_least_six_function_timeouts_plus_the_window() {
    let t = template();
    let visibility = param_default(&t, "QueueVisibilityTimeout");
    let timeout = param_default(&t, "Timeout");
    let window = param_default(&t, "MaximumBatchingWindowInSeconds");
    assert!(
        visibility >= 6 * timeout + window,
        "{visibility} < 6 x {timeout} + {window}"
    );
    let q = get(&t, &["Resources", "DeadLetterQueue", "Properties"]);
    let mut refs = Vec::new();
    intrinsics(get(q, &["VisibilityTimeout"]), &mut refs);
    assert_eq!(refs[0].1.as_str(), Some("QueueVisibilityTimeout"));
    let redrive = get(q, &["RedrivePolicy"]);
    assert!(
        redrive.get("deadLetterTargetArn").is_some() && redrive.get("maxReceiveCount").is_some()
    );
}

#[test]
fn s3_and_secrets_manager_statements_never_grant_every_resource() {
    let t = template();
    let mut all = Vec::new();
    statements(&t, &mut all);
    assert!(all.len() >= 6, "found {} statements", all.len());
    for s in &all {
        let actions: Vec<String> = match s.get("Action") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Sequence(list)) => list
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        };
        let sensitive = actions.iter().any(|a| {
            a.starts_with("s3:") || a.starts_with("secretsmanager:") || a.starts_with("sqs:")
        });
        let allow = s.get("Effect").and_then(Value::as_str) == Some("Allow");
        if sensitive && allow {
            let resource = s.get("Resource").unwrap();
            assert_ne!(resource.as_str(), Some("*"), "{s:?}");
            if let Some(list) = resource.as_sequence() {
                assert!(list.iter().all(|r| r.as_str() != Some("*")), "{s:?}");
            }
        }
    }
    // The write permission is on the prefix only.
    let role = serde_norway::to_string(get(&t, &["Resources", "TriageRole"])).unwrap();
    assert!(role.contains("${Bucket}/${ReportPrefix}*"), "{role}");
    assert!(
        !role.contains("s3:GetObject") && !role.contains("s3:*"),
        "{role}"
    );
}

#[test]
fn the_function_role_is_explicit_so_sam_adds_no_broad_managed_policy() {
    let t = template();
    let props = get(&t, &["Resources", "TriageFunction", "Properties"]);
    assert!(props.get("Role").is_some());
    assert!(props.get("Policies").is_none());
}

#[test]
fn the_bucket_is_private_encrypted_and_tls_only() {
    let t = template();
    let bucket = get(&t, &["Resources", "ReportBucket", "Properties"]);
    let block = get(bucket, &["PublicAccessBlockConfiguration"]);
    for key in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(get(block, &[key]).as_bool(), Some(true), "{key}");
    }
    assert!(bucket.get("BucketEncryption").is_some());
    assert!(bucket.get("LifecycleConfiguration").is_some());
    let policy = get(
        &t,
        &[
            "Resources",
            "ReportBucketPolicy",
            "Properties",
            "PolicyDocument",
            "Statement",
        ],
    );
    let tls = policy.as_sequence().unwrap().iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Deny")
            && s.get("Condition")
                .and_then(|c| c.get("Bool"))
                .and_then(|b| b.get("aws:SecureTransport"))
                .and_then(Value::as_str)
                == Some("false")
    });
    assert!(tls, "a Deny on aws:SecureTransport=false");
}

#[test]
fn every_reference_resolves() {
    let t = template();
    let mut known: Vec<String> = [
        "AWS::NoValue",
        "AWS::Region",
        "AWS::AccountId",
        "AWS::Partition",
        "AWS::StackName",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for section in ["Parameters", "Resources"] {
        known.extend(
            get(&t, &[section])
                .as_mapping()
                .unwrap()
                .keys()
                .map(|k| k.as_str().unwrap().to_owned()),
        );
    }
    let conditions: Vec<String> = get(&t, &["Conditions"])
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let mut refs = Vec::new();
    intrinsics(&t, &mut refs);
    assert!(refs.len() > 20);
    for (tag, value) in refs {
        match tag.as_str() {
            "Ref" => assert!(
                known.contains(&value.as_str().unwrap().to_owned()),
                "!Ref {value:?}"
            ),
            "GetAtt" => {
                let target = value.as_str().unwrap().split('.').next().unwrap();
                assert!(known.contains(&target.to_owned()), "!GetAtt {value:?}");
            }
            "If" => {
                let cond = value.as_sequence().unwrap()[0].as_str().unwrap();
                assert!(conditions.contains(&cond.to_owned()), "!If {cond}");
            }
            _ => {}
        }
    }
    for (_, resource) in get(&t, &["Resources"]).as_mapping().unwrap() {
        if let Some(c) = resource.get("Condition").and_then(Value::as_str) {
            assert!(conditions.contains(&c.to_owned()), "Condition {c}");
        }
    }
}

#[test]
fn the_environment_uses_only_the_configuration_contract_names() {
    let t = template();
    let vars = get(
        &t,
        &[
            "Resources",
            "TriageFunction",
            "Properties",
            "Environment",
            "Variables",
        ],
    )
    .as_mapping()
    .unwrap();
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config.rs")).unwrap();
    for name in vars.keys().map(|k| k.as_str().unwrap()) {
        assert!(
            config.contains(&format!("\"{name}\"")),
            "{name} is not read by src/config.rs"
        );
    }
    assert!(vars.contains_key("REPORT_BUCKET"));
}

#[test]
fn the_readme_documents_every_parameter() {
    let t = template();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for name in get(&t, &["Parameters"])
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
    {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "README's parameter table lacks {name}"
        );
    }
}
