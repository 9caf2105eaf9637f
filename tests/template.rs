//! Invariants of template.yaml that cfn-lint and `sam validate --lint` do not check
//! (toolchain notes: they miss bad FunctionResponseTypes, BatchSize ranges and dangling
//! references in SAM SQS events), plus the least-privilege and bucket-safety rules.

use dlq_triage_test_support::fixtures::repo_path;
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

/// The function's environment variables.
fn function_env(t: &Value) -> &Value {
    get(
        t,
        &[
            "Resources",
            "TriageFunction",
            "Properties",
            "Environment",
            "Variables",
        ],
    )
}

fn param_default(t: &Value, name: &str) -> i64 {
    get(t, &["Parameters", name, "Default"])
        .as_i64()
        .unwrap_or_else(|| panic!("{name} has a numeric default"))
}

fn str_list_or_one(v: &Value) -> Vec<String> {
    match v.as_str() {
        Some(one) => vec![one.to_owned()],
        None => str_list(v),
    }
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
    // The write permission is on the prefix only; reading (the redrive's) too, and only
    // when the redrive is on.
    let role = serde_norway::to_string(get(&t, &["Resources", "TriageRole"])).unwrap();
    assert!(role.contains("${Bucket}/${ReportPrefix}*"), "{role}");
    assert!(!role.contains("s3:*"), "{role}");
    for (sid, statement) in conditioned(&t) {
        let text = serde_norway::to_string(&statement).unwrap();
        if text.contains("s3:GetObject") || text.contains("s3:ListBucket") {
            assert_eq!(sid, "RedriveOn", "{text}");
            assert!(text.contains("${ReportPrefix}*"), "{text}");
        }
    }
}

/// Each `!If [CONDITION, statement, …]` statement of the function's role, with its
/// condition.
fn conditioned(t: &Value) -> Vec<(String, Value)> {
    let list = get(t, &["Resources", "TriageRole", "Properties", "Policies"])[0]["PolicyDocument"]
        ["Statement"]
        .as_sequence()
        .unwrap()
        .clone();
    list.into_iter()
        .filter_map(|s| match s {
            Value::Tagged(tagged) => {
                let branches = tagged.value.as_sequence()?.clone();
                Some((branches[0].as_str()?.to_owned(), branches[1].clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_redrive_is_off_by_default_and_its_grants_exist_only_when_it_is_on() {
    let t = template();
    assert_eq!(
        get(&t, &["Parameters", "Redrive", "Default"]).as_str(),
        Some("off")
    );
    assert_eq!(
        get(&t, &["Parameters", "RedriveCategories", "Default"]).as_str(),
        Some("RATE_LIMIT_EXCEEDED,ENDPOINT_UNREACHABLE,TARGET_ERROR")
    );
    assert_eq!(param_default(&t, "RedriveMaxAgeHours"), 24);
    assert_eq!(param_default(&t, "RedriveAttempts"), 3);
    let on = serde_norway::to_string(get(&t, &["Conditions", "RedriveOn"])).unwrap();
    assert!(on.contains("KeepIncidents") && on.contains("auto"), "{on}");
    let env = serde_norway::to_string(function_env(&t)).unwrap();
    for name in [
        "REDRIVE",
        "REDRIVE_CATEGORIES",
        "REDRIVE_MAX_AGE_HOURS",
        "REDRIVE_ATTEMPTS",
        "REDRIVE_SHARE",
        "REDRIVE_RATE",
    ] {
        assert!(function_env(&t).get(name).is_some(), "{name}: {env}");
    }
    // The connection secrets: EventBridge's own names, and only when the redrive is on.
    let role = serde_norway::to_string(get(&t, &["Resources", "TriageRole"])).unwrap();
    let secrets: Vec<_> = conditioned(&t)
        .into_iter()
        .filter(|(_, s)| {
            serde_norway::to_string(s)
                .unwrap()
                .contains("events!connection")
        })
        .collect();
    assert_eq!(secrets.len(), 1, "{role}");
    assert_eq!(secrets[0].0, "RedriveOn");
    assert_eq!(
        secrets[0].1["Action"].as_str(),
        Some("secretsmanager:GetSecretValue")
    );
    let resource = serde_norway::to_string(&secrets[0].1["Resource"]).unwrap();
    assert!(
        resource.contains(":secret:events!connection/*"),
        "{resource}"
    );
    // The journal's conditional updates: the incident table's own grant (the daily audit
    // needs UpdateItem too), not one of the redrive's.
    assert!(
        conditioned(&t).into_iter().all(|(c, s)| c != "RedriveOn"
            || !serde_norway::to_string(&s).unwrap().contains("dynamodb:")),
        "no DynamoDB grant of the redrive's own"
    );
    // The minute schedule that works the slices: only when on, with its permission, and
    // no Input (it is the sweep's own scheduled event).
    for name in ["RedriveSchedule", "RedrivePermission"] {
        assert_eq!(
            get(&t, &["Resources", name, "Condition"]).as_str(),
            Some("RedriveOn"),
            "{name}"
        );
    }
    let rule = get(&t, &["Resources", "RedriveSchedule", "Properties"]);
    assert_eq!(rule["ScheduleExpression"].as_str(), Some("rate(1 minute)"));
    assert!(rule["Targets"][0].get("Input").is_none());
    let permission = get(&t, &["Resources", "RedrivePermission", "Properties"]);
    assert!(
        serde_norway::to_string(&permission["SourceArn"])
            .unwrap()
            .contains("RedriveSchedule")
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
    let vars = function_env(&t).as_mapping().unwrap();
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

/// Evaluates the subset of CloudFormation rule functions the template uses, with `params`
/// as parameter values (strings, as CloudFormation compares them).
fn rule_value(v: &Value, params: &dyn Fn(&str) -> String) -> Value {
    let Value::Tagged(tagged) = v else {
        return v.clone();
    };
    let args = |i: usize| rule_value(&tagged.value.as_sequence().unwrap()[i], params);
    let tag = tagged.tag.to_string();
    match tag.trim_start_matches('!') {
        "Ref" => Value::String(params(tagged.value.as_str().unwrap())),
        "Equals" => Value::Bool(args(0) == args(1)),
        "Not" => Value::Bool(!args(0).as_bool().unwrap()),
        "And" => Value::Bool(
            (0..tagged.value.as_sequence().unwrap().len()).all(|i| args(i).as_bool().unwrap()),
        ),
        "Contains" => Value::Bool(args(0).as_sequence().unwrap().contains(&args(1))),
        other => panic!("rule function {other} not evaluated here"),
    }
}

/// Whether the template's rules reject these parameter values.
fn rules_reject(t: &Value, params: &dyn Fn(&str) -> String) -> bool {
    get(t, &["Rules"])
        .as_mapping()
        .unwrap()
        .values()
        .any(|rule| {
            let applies = rule
                .get("RuleCondition")
                .is_none_or(|c| rule_value(c, params).as_bool().unwrap());
            applies
                && rule["Assertions"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|a| !rule_value(&a["Assert"], params).as_bool().unwrap())
        })
}

#[test]
fn a_created_queue_never_quarantines_a_record_before_it_is_archived() {
    let t = template();
    let range = |name: &str| {
        let p = get(&t, &["Parameters", name]);
        p["MinValue"].as_i64().unwrap()..=p["MaxValue"].as_i64().unwrap()
    };
    for correlation in range("CorrelationMaxReceives") {
        for max_receive in range("MaxReceiveCount").take(40) {
            for existing in ["", "arn:aws:sqs:eu-west-1:111122223333:dlq"] {
                let params = |name: &str| match name {
                    "CorrelationMaxReceives" => correlation.to_string(),
                    "MaxReceiveCount" => max_receive.to_string(),
                    "ExistingQueueArn" => existing.to_string(),
                    "Redrive" => "off".to_string(),
                    other => panic!("rule reads {other}"),
                };
                let expected = existing.is_empty() && max_receive <= correlation;
                assert_eq!(
                    rules_reject(&t, &params),
                    expected,
                    "CorrelationMaxReceives={correlation} MaxReceiveCount={max_receive} existing={existing:?}"
                );
            }
        }
    }
}

#[test]
fn customer_keys_are_granted_only_through_their_service() {
    let t = template();
    let mut found = std::collections::BTreeMap::new();
    let mut all = Vec::new();
    statements(get(&t, &["Resources", "TriageRole"]), &mut all);
    for s in &all {
        let action = s["Action"].as_str().unwrap_or_default();
        if !action.starts_with("kms:") {
            continue;
        }
        let via = format!("{:?}", s["Condition"]["StringEquals"]["kms:ViaService"]);
        found.insert(
            action.to_owned() + " " + &format!("{:?}", s["Resource"]),
            via,
        );
    }
    let expect = [
        ("kms:Decrypt", "QueueKmsKeyArn", "sqs."),
        ("kms:Decrypt", "SecretKmsKeyArn", "secretsmanager."),
        ("kms:GenerateDataKey", "ReportKmsKeyArn", "s3."),
        // The redrive reads the payloads it sends back.
        ("kms:Decrypt", "ReportKmsKeyArn", "s3."),
    ];
    for (action, param, service) in expect {
        let (_, via) = found
            .iter()
            .find(|(k, _)| k.starts_with(action) && k.contains(param))
            .unwrap_or_else(|| panic!("{action} on {param}: {found:?}"));
        assert!(via.contains(service), "{action} on {param} via {via}");
    }
    assert_eq!(found.len(), 4, "{found:?}");
}

#[test]
fn an_alarm_watches_records_returned_to_the_queue() {
    let t = template();
    let alarm = get(&t, &["Resources", "ReturnedRecordsAlarm", "Properties"]);
    assert_eq!(alarm["Namespace"], "GenesysDlqTriage");
    assert_eq!(alarm["MetricName"], "Returned");
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold");
}

/// Pages that are not going out, and a sweep that keeps failing, each trip an alarm: on
/// the EMF metrics the function writes (`IncidentUnannounced` from each sweep, the
/// transitions in an outbox for over ten minutes; `IncidentSweepFailed`), only with
/// incidents kept.
#[test]
fn alarms_watch_unannounced_incident_transitions_and_failing_sweeps() {
    let t = template();
    for (name, metric, statistic, condition) in [
        (
            "IncidentUnannouncedAlarm",
            "IncidentUnannounced",
            "Maximum",
            "AnnounceIncidents",
        ),
        (
            "IncidentSweepFailedAlarm",
            "IncidentSweepFailed",
            "Sum",
            "KeepIncidents",
        ),
    ] {
        let resource = get(&t, &["Resources", name]);
        assert_eq!(resource["Condition"], condition, "{name}");
        let alarm = &resource["Properties"];
        assert_eq!(alarm["Namespace"], "GenesysDlqTriage", "{name}");
        assert_eq!(alarm["MetricName"], metric, "{name}");
        assert_eq!(alarm["Statistic"], statistic, "{name}");
        assert_eq!(alarm["Threshold"].as_f64(), Some(0.0), "{name}");
        assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold");
        assert_eq!(alarm["Dimensions"][0]["Name"], "FunctionName");
        // The metric is written every five minutes (the sweep's schedule).
        assert_eq!(alarm["Period"].as_u64(), Some(300), "{name}");
    }
    // Without a bus every transition waits in its outbox by design (the default
    // deployment): the unannounced alarm exists only with incidents kept and a bus.
    let Value::Tagged(and) = get(&t, &["Conditions", "AnnounceIncidents"]) else {
        panic!("AnnounceIncidents is not an intrinsic");
    };
    assert_eq!(and.tag.to_string(), "!And");
    let parts: Vec<String> = and
        .value
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| match c {
            Value::Tagged(c) if c.tag == "!Condition" => c.value.as_str().unwrap().to_owned(),
            other => panic!("not a !Condition: {other:?}"),
        })
        .collect();
    assert_eq!(parts, ["KeepIncidents", "HasNotificationBus"]);
}

#[test]
fn an_existing_fifo_queue_is_accepted() {
    let t = template();
    let pattern = get(&t, &["Parameters", "ExistingQueueArn", "AllowedPattern"])
        .as_str()
        .unwrap();
    let re = regex::Regex::new(pattern).unwrap();
    assert!(re.is_match("arn:aws:sqs:eu-west-1:111122223333:genesys-dlq.fifo"));
    assert!(re.is_match("arn:aws:sqs:eu-west-1:111122223333:genesys-dlq"));
    assert!(re.is_match(""));
    assert!(!re.is_match("arn:aws:sqs:eu-west-1:111122223333:genesys-dlq.fifo.x"));
}

#[test]
fn sam_build_needs_no_beta_flag_for_the_rust_builder() {
    // SAM CLI gated `rust-cargolambda` behind `--beta-features` in its early releases; the
    // pinned release (tools/requirements.txt) lists no such experimental flag any more, so
    // the documented commands must not ask for beta features.
    for file in ["Makefile", "README.md"] {
        let text = std::fs::read_to_string(repo_path(file)).unwrap();
        assert!(!text.contains("--beta-features"), "{file}");
    }
    let site = repo_path(".venv-tools/lib");
    let Some(experimental) = std::fs::read_dir(&site).ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| {
                e.path()
                    .join("site-packages/samcli/commands/_utils/experimental.py")
            })
            .find(|p| p.exists())
    }) else {
        return; // no venv (make test-unit): the documents are checked above
    };
    let flags = std::fs::read_to_string(experimental).unwrap();
    assert!(
        flags.contains("class ExperimentalFlag"),
        "SAM CLI moved its flags"
    );
    assert!(
        !flags.to_ascii_lowercase().contains("cargo") && !flags.contains("Rust"),
        "the pinned SAM CLI gates the Rust builder again"
    );
}

#[test]
fn the_dashboard_shows_what_operators_watch() {
    let t = template();
    let dashboard = get(&t, &["Resources", "OperationsDashboard", "Properties"]);
    let Value::Tagged(sub) = get(dashboard, &["DashboardBody"]) else {
        panic!("DashboardBody is a !Sub");
    };
    let parts = sub.value.as_sequence().expect("!Sub [body, variables]");
    let variables = parts[1].as_mapping().unwrap();
    // Every ${Name} the body uses is a variable of the !Sub or a pseudo parameter.
    let body = parts[0].as_str().unwrap();
    for name in body.split("${").skip(1).map(|s| &s[..s.find('}').unwrap()]) {
        assert!(
            name.starts_with("AWS::") || variables.contains_key(name),
            "${{{name}}} is not defined"
        );
    }
    let filled = body
        .split("${")
        .enumerate()
        .map(|(i, s)| {
            if i == 0 {
                s.to_owned()
            } else {
                format!("X{}", &s[s.find('}').unwrap() + 1..])
            }
        })
        .collect::<String>();
    let json: serde_json::Value = serde_json::from_str(&filled).expect("the body is JSON");
    let metrics: Vec<String> = json["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["properties"]["metrics"].as_array())
        .flatten()
        .map(|m| m[1].as_str().unwrap().to_owned())
        .collect();
    for category in genesys_dlq_triage::FailureCategory::ALL {
        assert!(
            metrics.contains(&format!("Failures.{category}")),
            "{category}"
        );
    }
    for metric in [
        "Acknowledged",
        "Returned",
        "GenesysCalls",
        "DurationMs",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
    ] {
        assert!(metrics.iter().any(|m| m == metric), "{metric}");
    }
}

/// The incident table as the function expects it: its key, the sparse state index, TTL.
fn assert_incident_table_as_expected(t: &Value) {
    let table = get(t, &["Resources", "IncidentTable", "Properties"]);
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        table["SSESpecification"]["SSEEnabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        table["KeySchema"][0]["AttributeName"].as_str(),
        Some("incidentKey")
    );
    let index = &table["GlobalSecondaryIndexes"][0];
    assert_eq!(index["IndexName"].as_str(), Some("open-by-last-seen"));
    assert_eq!(
        index["KeySchema"][0]["AttributeName"].as_str(),
        Some("openState")
    );
    assert_eq!(
        index["KeySchema"][1]["AttributeName"].as_str(),
        Some("lastSeen")
    );
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("expiresAt")
    );
}

/// The function may write the incident table and query its state index, and nothing else
/// of DynamoDB: every statement naming a `dynamodb:` action is on the table (writes) or
/// its `open-by-last-seen` index (the sweep's query).
#[test]
fn the_policy_grants_the_incident_table_and_its_index_only() {
    let t = template();
    let mut all = Vec::new();
    statements(get(&t, &["Resources", "TriageRole"]), &mut all);
    let dynamo: Vec<&Value> = all
        .iter()
        .filter(|s| {
            serde_norway::to_string(&s["Action"])
                .unwrap()
                .contains("dynamodb:")
        })
        .collect();
    assert_eq!(dynamo.len(), 2, "{dynamo:?}");
    for s in dynamo {
        let actions = serde_norway::to_string(&s["Action"]).unwrap();
        let resource = serde_norway::to_string(&s["Resource"]).unwrap();
        assert!(
            !actions.contains('*') && !resource.contains('*'),
            "{actions} on {resource}"
        );
        if actions.contains("dynamodb:Query") {
            assert!(!actions.contains("Item"), "{actions}");
            assert!(
                resource.contains("${IncidentTable.Arn}/index/open-by-last-seen"),
                "{resource}"
            );
        } else {
            let mut granted: Vec<String> = str_list(&s["Action"]);
            granted.sort();
            assert_eq!(
                granted,
                [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem"
                ]
            );
            assert!(
                resource.contains("IncidentTable.Arn") && !resource.contains("index"),
                "{resource}"
            );
        }
    }
    assert_incident_table_as_expected(&t);
    // The sweep's schedule invokes the function every 5 minutes, with its permission.
    let rule = get(&t, &["Resources", "IncidentSweepSchedule", "Properties"]);
    assert_eq!(rule["ScheduleExpression"].as_str(), Some("rate(5 minutes)"));
    let permission = get(&t, &["Resources", "IncidentSweepPermission", "Properties"]);
    assert_eq!(
        permission["Principal"].as_str(),
        Some("events.amazonaws.com")
    );
    let env = function_env(&t);
    for name in [
        "INCIDENT_TABLE",
        "INCIDENT_QUIET_MINUTES",
        "INCIDENT_UPDATE_MINUTES",
        "INCIDENT_RETENTION_DAYS",
    ] {
        assert!(env.get(name).is_some(), "{name}");
    }
}

/// Every call the health look-up of a `resolved` event makes is granted to the function
/// (a denied one would make every event say "unavailable" and the LOST search never run).
#[test]
fn the_policy_grants_every_call_of_the_health_look_up() {
    let t = template();
    let mut all = Vec::new();
    statements(get(&t, &["Resources", "TriageRole"]), &mut all);
    let granted: Vec<String> = all
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::Sequence(_) => str_list(&s["Action"]),
            a => vec![a.as_str().unwrap_or_default().to_owned()],
        })
        .collect();
    for action in [
        "cloudwatch:GetMetricData",
        "cloudwatch:ListMetrics",
        "events:DescribeApiDestination",
        "events:DescribeConnection",
        "events:DescribeEventSource",
    ] {
        assert!(granted.iter().any(|g| g == action), "{action}: {granted:?}");
    }
    let connection = all
        .iter()
        .find(|s| {
            serde_norway::to_string(&s["Action"])
                .unwrap()
                .contains("events:DescribeConnection")
        })
        .unwrap();
    assert!(
        serde_norway::to_string(&connection["Resource"])
            .unwrap()
            .contains(":connection/*"),
        "{connection:?}"
    );
}

/// The daily audit: its own schedule (told apart from the sweep's by its input), its
/// permission, and a read-only policy granting every call `src/doctor/aws.rs` makes.
#[test]
fn the_daily_audit_is_scheduled_apart_and_granted_every_read_it_makes() {
    let t = template();
    let rule = get(&t, &["Resources", "DoctorSchedule", "Properties"]);
    assert_eq!(rule["ScheduleExpression"].as_str(), Some("rate(1 day)"));
    let input: serde_json::Value =
        serde_json::from_str(rule["Targets"][0]["Input"].as_str().unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!({"source": "genesys-dlq-triage", "detail-type": "DLQ Triage Doctor Run"})
    );
    let sweep = get(&t, &["Resources", "IncidentSweepSchedule", "Properties"]);
    assert!(sweep["Targets"][0].get("Input").is_none());
    let permission = get(&t, &["Resources", "DoctorPermission", "Properties"]);
    assert_eq!(
        permission["Principal"].as_str(),
        Some("events.amazonaws.com")
    );
    let policy = get(&t, &["Resources", "DoctorReadOnlyPolicy", "Properties"]);
    assert_eq!(
        serde_norway::to_string(&policy["Roles"]).unwrap().trim(),
        "- !Ref TriageRole"
    );
    let mut all = Vec::new();
    statements(policy, &mut all);
    let granted: std::collections::BTreeSet<String> = all
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            list => str_list(list),
        })
        .collect();
    for action in &granted {
        let verb = action.split(':').nth(1).unwrap();
        assert!(
            ["List", "Describe", "Get"]
                .iter()
                .any(|p| verb.starts_with(p)),
            "{action} is not read-only"
        );
    }
    // Every call the audit makes, as its code names it ("SQS GetQueueUrl"), is granted.
    let code = std::fs::read_to_string(repo_path("src/doctor/aws.rs")).unwrap();
    let calls = regex::Regex::new(
        r#""(EventBridge|SQS|KMS|Lambda|SNS|S3|DynamoDB|CloudWatch) ([A-Za-z]+)""#,
    )
    .unwrap();
    let mut needed = std::collections::BTreeSet::new();
    for c in calls.captures_iter(&code) {
        let action = match (&c[1], &c[2]) {
            ("S3", "HeadBucket") => "s3:ListBucket".to_owned(),
            (service, call) => {
                let prefix = match service {
                    "EventBridge" => "events",
                    "DynamoDB" => "dynamodb",
                    other => &other.to_lowercase(),
                };
                format!("{prefix}:{call}")
            }
        };
        needed.insert(action);
    }
    assert!(needed.len() >= 20, "{needed:?}");
    let missing: Vec<_> = needed.difference(&granted).collect();
    assert!(missing.is_empty(), "not granted: {missing:?}");
}

/// Every DynamoDB item call the function makes whenever it keeps incidents (the incidents'
/// adapter, the daily audit's finding dedup, the redrive's journal) is granted by the
/// statement that exists whenever the table does, not by one of an optional feature.
#[test]
fn every_item_call_the_function_makes_is_granted_with_the_incident_table() {
    let t = template();
    let kept: Vec<String> = conditioned(&t)
        .into_iter()
        .filter(|(c, _)| c == "KeepIncidents")
        .flat_map(|(_, s)| str_list_or_one(&s["Action"]))
        .collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "src/incidents/dynamo.rs",
        "src/doctor/scheduled.rs",
        "src/redrive/dynamo.rs",
    ] {
        let code = std::fs::read_to_string(root.join(file)).unwrap();
        for (call, action) in [
            (".get_item()", "dynamodb:GetItem"),
            (".put_item()", "dynamodb:PutItem"),
            (".update_item()", "dynamodb:UpdateItem"),
            (".delete_item()", "dynamodb:DeleteItem"),
        ] {
            if code.contains(call) {
                assert!(
                    kept.iter().any(|a| a == action),
                    "{file} calls {call}, but {action} is not granted with the table: {kept:?}"
                );
            }
        }
    }
}

#[test]
fn a_redrive_is_refused_without_a_bus_to_announce_it() {
    let t = template();
    for (redrive, bus, rejected) in [
        ("auto", "", true),
        ("auto", "ops", false),
        ("off", "", false),
    ] {
        let params = |name: &str| match name {
            "Redrive" => redrive.to_string(),
            "NotificationBusName" => bus.to_string(),
            // The queue rules hold for their defaults.
            "CorrelationMaxReceives" => "3".to_string(),
            "MaxReceiveCount" => "5".to_string(),
            "ExistingQueueArn" => String::new(),
            other => panic!("rule reads {other}"),
        };
        assert_eq!(
            rules_reject(&t, &params),
            rejected,
            "Redrive={redrive} bus={bus:?}"
        );
    }
}

/// A new failure category is a new metric the function emits (`Failures.<CATEGORY>`):
/// the dashboard draws each, and the operators' documents (the taxonomy and severity
/// tables of docs/contract.md, the README's what-to-do list) name each, so adding one
/// without them fails here.
#[test]
fn every_failure_category_is_drawn_on_the_dashboard_and_documented() {
    let t = template();
    let body = format!(
        "{:?}",
        get(
            &t,
            &[
                "Resources",
                "OperationsDashboard",
                "Properties",
                "DashboardBody"
            ]
        )
    );
    let contract = std::fs::read_to_string(repo_path("docs/contract.md")).unwrap();
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    for category in genesys_dlq_triage::FailureCategory::ALL {
        let name = category.as_str();
        assert!(
            body.contains(&format!("Failures.{name}")),
            "the dashboard does not draw {name}"
        );
        assert!(
            contract.contains(&format!("| `{name}` |")),
            "docs/contract.md's taxonomy table has no row for {name}"
        );
        let severity = contract.lines().any(|l| {
            l.starts_with('|')
                && l.contains(&format!("`{name}`"))
                && ["`critical`", "`error`", "`warning`"]
                    .iter()
                    .any(|s| l.contains(s))
        });
        assert!(severity, "docs/contract.md gives {name} no severity");
        assert!(
            readme.contains(&format!("- **`{name}`** —")),
            "the README says nothing of what to do about {name}"
        );
    }
}
