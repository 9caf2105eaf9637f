//! The root-cause report (DESIGN §5.2, **contract** field names) and its Markdown rendering.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::classify::{Evidence, FailureCategory};
use crate::correlate::InteractionInfo;
use crate::dlq::BodyKind;

/// The report schema version.
pub const SCHEMA_VERSION: u32 = 1;
/// How many message ids an incident lists as samples.
pub const SAMPLE_IDS: usize = 5;
/// How many conversation ids an incident lists.
pub const INCIDENT_CONVERSATION_IDS: usize = 100;

/// One dead letter as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriageRecord {
    /// The SQS message id.
    pub message_id: String,
    /// EventBridge event id.
    pub event_id: Option<String>,
    /// When the event happened (EventBridge `time`), else when it reached the DLQ.
    pub timestamp: Option<String>,
    /// `detail-type` (the topic pattern).
    pub event_type: Option<String>,
    /// `detail.topicName` (the concrete topic).
    pub topic_name: Option<String>,
    /// EventBridge `source`.
    pub source: Option<String>,
    /// The Genesys conversation id, a canonical UUID.
    pub interaction_id: Option<String>,
    /// The category.
    pub failure_category: FailureCategory,
    /// What decided the category.
    pub evidence: Evidence,
    /// `ERROR_CODE`.
    pub error_code: Option<String>,
    /// `ERROR_MESSAGE`.
    pub error_message: Option<String>,
    /// An HTTP status stated in the message.
    pub http_status: Option<u16>,
    /// `RULE_ARN`.
    pub rule_arn: Option<String>,
    /// `TARGET_ARN`.
    pub target_arn: Option<String>,
    /// `RETRY_ATTEMPTS`.
    pub retry_attempts: Option<u32>,
    /// `EXHAUSTED_RETRY_CONDITION`.
    pub exhausted_retry_condition: Option<String>,
    /// `ApproximateReceiveCount`.
    pub receive_count: Option<u32>,
    /// Where the replay payload was stored (S3 key, or path relative to the CLI's folder);
    /// `null` when it was not stored.
    pub replay_payload_key: Option<String>,
    /// Where a replay should be sent: the configured endpoint, else the failed target.
    pub replay_endpoint: Option<String>,
    /// What is known of the conversation.
    pub interaction_info: InteractionInfo,
    /// What kind of body the message carried.
    pub body_kind: BodyKind,
    /// When the message reached the DLQ (`SentTimestamp`).
    pub sent_timestamp: Option<String>,
    /// Whether the record was acknowledged or returned to the queue, and why.
    pub disposition: Disposition,
}

/// What happened to a record in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Disposition {
    /// Stored; SQS may delete it (or, in the CLI, it was written).
    Stored,
    /// Returned to the queue for another delivery.
    Returned {
        /// Why.
        reason: String,
    },
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Unique per run; names the report objects in S3.
    pub report_id: String,
    /// When the report was built, RFC 3339 UTC.
    pub generated_at: String,
    /// The number of records.
    pub total_failures: usize,
    /// Aggregates.
    pub summary: Summary,
    /// Every record, in batch order.
    pub records: Vec<TriageRecord>,
}

/// Aggregates over the records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Records per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
    /// Records per target ARN (`(no target)` when the attribute is missing).
    pub by_target: BTreeMap<String, usize>,
    /// Records per event type (`detail-type`, or the body kind when it is not an event).
    pub by_event_type: BTreeMap<String, usize>,
    /// Records per correlation status.
    pub by_interaction_status: BTreeMap<String, usize>,
    /// Distinct conversations across the batch.
    pub conversations: usize,
    /// Earliest record timestamp.
    pub first_seen: Option<String>,
    /// Latest record timestamp.
    pub last_seen: Option<String>,
    /// Groups of records by (category, target, error code), largest first.
    pub incidents: Vec<Incident>,
}

/// Records that failed the same way against the same target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// The category.
    pub category: FailureCategory,
    /// The target ARN.
    pub target_arn: Option<String>,
    /// The `ERROR_CODE`.
    pub error_code: Option<String>,
    /// How many records.
    pub count: usize,
    /// Earliest record timestamp.
    pub first_seen: Option<String>,
    /// Latest record timestamp.
    pub last_seen: Option<String>,
    /// Distinct conversations affected.
    pub conversations: usize,
    /// Up to [`SAMPLE_IDS`] message ids.
    pub sample_message_ids: Vec<String>,
    /// What to do about it (the taxonomy's typical fix).
    pub recommended_action: String,
    /// Whether the payloads can be replayed unchanged once fixed.
    pub replay_as_is: String,
    /// HTTP statuses seen, sorted.
    pub http_statuses: Vec<u16>,
    /// One error message, verbatim, as a sample.
    pub sample_error_message: Option<String>,
    /// Up to [`INCIDENT_CONVERSATION_IDS`] affected conversation ids, sorted.
    pub conversation_ids: Vec<String>,
}

/// Parses a record timestamp for ordering; both RFC 3339 strings and epoch milliseconds.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    s.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Default)]
struct Span(Option<(DateTime<Utc>, DateTime<Utc>)>);

impl Span {
    fn add(&mut self, t: Option<DateTime<Utc>>) {
        if let Some(t) = t {
            self.0 = Some(match self.0 {
                None => (t, t),
                Some((a, b)) => (a.min(t), b.max(t)),
            });
        }
    }
    fn first(&self) -> Option<String> {
        self.0.map(|(a, _)| fmt_time(a))
    }
    fn last(&self) -> Option<String> {
        self.0.map(|(_, b)| fmt_time(b))
    }
}

/// Label used for records without a target ARN.
pub const NO_TARGET: &str = "(no target)";

impl Report {
    /// Aggregates records into a report.
    pub fn build(
        report_id: String,
        generated_at: DateTime<Utc>,
        records: Vec<TriageRecord>,
    ) -> Report {
        struct Acc<'a> {
            count: usize,
            span: Span,
            samples: Vec<&'a str>,
            statuses: BTreeSet<u16>,
            message: Option<&'a str>,
            conversations: BTreeSet<&'a str>,
        }
        let mut by_category = BTreeMap::new();
        let mut by_target = BTreeMap::new();
        let mut by_event_type = BTreeMap::new();
        let mut by_interaction_status = BTreeMap::new();
        let mut conversations = BTreeSet::new();
        let mut span = Span::default();
        let mut groups: HashMap<(FailureCategory, Option<&str>, Option<&str>), Acc> =
            HashMap::new();
        let mut order = Vec::new();
        for r in &records {
            *by_category.entry(r.failure_category).or_insert(0) += 1;
            *by_target
                .entry(r.target_arn.clone().unwrap_or_else(|| NO_TARGET.to_owned()))
                .or_insert(0) += 1;
            let event_type = match &r.event_type {
                Some(t) => t.clone(),
                None => format!("({})", r.body_kind.as_str()),
            };
            *by_event_type.entry(event_type).or_insert(0) += 1;
            *by_interaction_status
                .entry(r.interaction_info.status().to_owned())
                .or_insert(0) += 1;
            if let Some(id) = &r.interaction_id {
                conversations.insert(id.as_str());
            }
            let t = r.timestamp.as_deref().and_then(parse_time);
            span.add(t);
            let key = (
                r.failure_category,
                r.target_arn.as_deref(),
                r.error_code.as_deref(),
            );
            let acc = groups.entry(key).or_insert_with(|| {
                order.push(key);
                Acc {
                    count: 0,
                    span: Span::default(),
                    samples: Vec::new(),
                    statuses: BTreeSet::new(),
                    message: None,
                    conversations: BTreeSet::new(),
                }
            });
            acc.count += 1;
            acc.span.add(t);
            if acc.samples.len() < SAMPLE_IDS {
                acc.samples.push(&r.message_id);
            }
            acc.statuses.extend(r.http_status);
            acc.message = acc.message.or(r.error_message.as_deref());
            if let Some(id) = &r.interaction_id {
                acc.conversations.insert(id);
            }
        }
        let mut incidents: Vec<Incident> = order
            .iter()
            .map(|key| {
                let acc = &groups[key];
                let (category, target, code) = *key;
                Incident {
                    category,
                    target_arn: target.map(str::to_owned),
                    error_code: code.map(str::to_owned),
                    count: acc.count,
                    first_seen: acc.span.first(),
                    last_seen: acc.span.last(),
                    conversations: acc.conversations.len(),
                    sample_message_ids: acc.samples.iter().map(|s| s.to_string()).collect(),
                    recommended_action: category.recommended_action().to_owned(),
                    replay_as_is: category.replay_as_is().to_owned(),
                    http_statuses: acc.statuses.iter().copied().collect(),
                    sample_error_message: acc.message.map(str::to_owned),
                    conversation_ids: acc
                        .conversations
                        .iter()
                        .take(INCIDENT_CONVERSATION_IDS)
                        .map(|s| s.to_string())
                        .collect(),
                }
            })
            .collect();
        // Largest first; ties in a stable, readable order.
        incidents.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.category.cmp(&b.category))
                .then(a.target_arn.cmp(&b.target_arn))
                .then(a.error_code.cmp(&b.error_code))
        });
        let summary = Summary {
            by_category,
            by_target,
            by_event_type,
            by_interaction_status,
            conversations: conversations.len(),
            first_seen: span.first(),
            last_seen: span.last(),
            incidents,
        };
        Report {
            schema_version: SCHEMA_VERSION,
            report_id,
            generated_at: fmt_time(generated_at),
            total_failures: records.len(),
            summary,
            records,
        }
    }

    /// The report as JSON. `pretty` (the CLI's choice) indents reports of up to 1,000
    /// records; otherwise it is one line, which Athena's JSON SerDe reads as one row and
    /// which is half the size.
    pub fn to_json(&self, pretty: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024 + self.records.len() * 1536);
        // Serializing plain data into a Vec cannot fail.
        let _ = if pretty && self.records.len() <= 1000 {
            serde_json::to_writer_pretty(&mut out, self)
        } else {
            serde_json::to_writer(&mut out, self)
        };
        out.push(b'\n');
        out
    }
}

/// Where the replay payloads of a report are, for the commands the Markdown prints.
#[derive(Debug, Clone)]
pub enum ReplaySource {
    /// A local folder (the CLI's `--out`), as the user typed it.
    Folder(String),
    /// An S3 bucket; record keys are full keys.
    Bucket(String),
}

/// Renders the report for an incident channel: headline, pie, incident table, next steps,
/// affected conversations and replay commands.
pub fn render_markdown(report: &Report, replay: &ReplaySource) -> String {
    let s = &report.summary;
    let mut md = String::with_capacity(4096);
    let _ = writeln!(
        md,
        "# Genesys EventBridge DLQ triage — {}",
        report.generated_at
    );
    md.push('\n');
    let _ = writeln!(md, "{}", headline(report));
    md.push('\n');
    if report.total_failures == 0 {
        md.push_str("The batch was empty: nothing to triage.\n");
        return md;
    }

    md.push_str(
        "## Failures by category\n\n```mermaid\npie showData\n    title Failures by category\n",
    );
    for (category, count) in &s.by_category {
        let _ = writeln!(md, "    \"{category}\" : {count}");
    }
    md.push_str("```\n\n");

    md.push_str("## Incidents\n\n");
    md.push_str("| # | Category | Target | Error code | HTTP | Count | First seen | Last seen | Conversations | Sample message |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for (i, inc) in s.incidents.iter().enumerate() {
        let statuses: Vec<String> = inc.http_statuses.iter().map(u16::to_string).collect();
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            inc.category,
            cell(
                &inc.target_arn
                    .as_deref()
                    .map(short_arn)
                    .unwrap_or_else(|| NO_TARGET.to_owned())
            ),
            cell(inc.error_code.as_deref().unwrap_or("—")),
            if statuses.is_empty() {
                "—".to_owned()
            } else {
                statuses.join(", ")
            },
            inc.count,
            inc.first_seen.as_deref().unwrap_or("—"),
            inc.last_seen.as_deref().unwrap_or("—"),
            inc.conversations,
            inc.sample_message_ids
                .first()
                .map(|m| format!("`{}`", cell(m)))
                .unwrap_or_default(),
        );
    }
    md.push('\n');

    md.push_str("## Next steps\n\n");
    for category in s.by_category.keys() {
        let n = s.by_category[category];
        let _ = writeln!(
            md,
            "### `{category}` ({n} {})\n",
            plural(n, "record", "records")
        );
        let _ = writeln!(md, "- **What it means:** {}.", category.meaning());
        let _ = writeln!(md, "- **Do:** {}", category.recommended_action());
        let _ = writeln!(
            md,
            "- **Replay as-is after the fix:** {}.",
            category.replay_as_is()
        );
        for inc in s.incidents.iter().filter(|i| i.category == *category) {
            if let Some(m) = &inc.sample_error_message {
                let _ = writeln!(
                    md,
                    "- Error from `{}`: `{}`",
                    cell(
                        &inc.target_arn
                            .as_deref()
                            .map(short_arn)
                            .unwrap_or_else(|| NO_TARGET.to_owned())
                    ),
                    cell(&truncate(m, 300)).replace('`', "'")
                );
            }
        }
        md.push('\n');
    }

    render_conversations(report, &mut md);
    render_replay(report, replay, &mut md);
    md
}

/// One line an on-call engineer can paste as the incident's summary.
pub fn headline(report: &Report) -> String {
    let s = &report.summary;
    let n = report.total_failures;
    if n == 0 {
        return "**0 failed deliveries.**".to_owned();
    }
    let targets = s.by_target.len();
    let (top, top_n) = s
        .by_category
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(c, n)| (*c, *n))
        .unwrap_or((FailureCategory::Unknown, 0));
    let window = match (&s.first_seen, &s.last_seen) {
        (Some(a), Some(b)) if a == b => format!(" at {a}"),
        (Some(a), Some(b)) => format!(" between {a} and {b}"),
        _ => String::new(),
    };
    format!(
        "**{n} failed {} to {targets} {}{window}; top cause `{top}` ({top_n}, {}%); {} {} affected.**",
        plural(n, "delivery", "deliveries"),
        plural(targets, "target", "targets"),
        top_n * 100 / n,
        s.conversations,
        plural(s.conversations, "conversation", "conversations"),
    )
}

fn render_conversations(report: &Report, md: &mut String) {
    let s = &report.summary;
    if s.conversations == 0 {
        return;
    }
    // The first answer per conversation (all records of one conversation share it).
    let mut info_of: HashMap<&str, &InteractionInfo> = HashMap::new();
    for r in &report.records {
        if let Some(id) = &r.interaction_id {
            info_of.entry(id).or_insert(&r.interaction_info);
        }
    }
    md.push_str("## Affected conversations\n\n");
    if !s.by_interaction_status.is_empty() {
        let statuses: Vec<String> = s
            .by_interaction_status
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            md,
            "Correlation with Genesys Cloud — {}.\n",
            statuses.join(", ")
        );
    }
    const SHOWN: usize = 10;
    md.push_str("| Incident | Conversation | Status | Start | End | Duration | Direction | Media | Queues | Divisions |\n|---|---|---|---|---|---|---|---|---|---|\n");
    let mut more = Vec::new();
    for (i, inc) in s
        .incidents
        .iter()
        .enumerate()
        .filter(|(_, i)| i.conversations > 0)
    {
        for id in inc.conversation_ids.iter().take(SHOWN) {
            let _ = write!(md, "| {} `{}` | `{id}` ", i + 1, inc.category);
            match info_of.get(id.as_str()) {
                Some(InteractionInfo::Found(c)) => {
                    let _ = writeln!(
                        md,
                        "| found | {} | {} | {} | {} | {} | {} | {} |",
                        c.conversation_start.as_deref().unwrap_or("—"),
                        c.conversation_end.as_deref().unwrap_or("in progress"),
                        c.duration_ms
                            .map(|d| format!("{}s", d / 1000))
                            .unwrap_or_else(|| "—".into()),
                        c.originating_direction.as_deref().unwrap_or("—"),
                        list(&c.media_types),
                        list(&c.queue_ids),
                        list(&c.division_ids),
                    );
                }
                other => {
                    let status = other.map(|i| i.status()).unwrap_or("unknown");
                    let _ = writeln!(md, "| {status} | | | | | | | |");
                }
            }
        }
        if inc.conversations > SHOWN {
            more.push(format!(
                "incident {}: {} more",
                i + 1,
                inc.conversations - SHOWN
            ));
        }
    }
    if !more.is_empty() {
        let _ = writeln!(
            md,
            "\nNot shown ({}); every id is in the JSON report.",
            more.join("; ")
        );
    }
    md.push('\n');
}

fn render_replay(report: &Report, replay: &ReplaySource, md: &mut String) {
    // Folder of each stored payload, per category.
    let mut folders: BTreeMap<FailureCategory, BTreeSet<&str>> = BTreeMap::new();
    for r in &report.records {
        if let Some(key) = &r.replay_payload_key {
            let dir = key.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            folders.entry(r.failure_category).or_default().insert(dir);
        }
    }
    if folders.is_empty() {
        return;
    }
    md.push_str("## Replay\n\n");
    md.push_str("Each payload is the original event, byte for byte. Fix the cause first, then replay one category at a time, slowly (set `ENDPOINT` to the consumer's URL; `--data-binary` keeps the bytes exact):\n\n");
    for (category, dirs) in &folders {
        let _ = writeln!(
            md,
            "### `{category}` — replay as-is: {}\n",
            category.replay_as_is()
        );
        md.push_str("```sh\n");
        if category.replay_as_is() != "yes" {
            let _ = writeln!(md, "# {category}: {}", category.recommended_action());
        }
        match replay {
            ReplaySource::Folder(out) => {
                for dir in dirs {
                    let _ = writeln!(md, "for f in {}/{dir}/*.json; do", shell_path(out));
                    md.push_str("  curl -sS --fail -X POST -H 'Content-Type: application/json' --data-binary @\"$f\" \"$ENDPOINT\" && sleep 0.2\ndone\n");
                }
            }
            ReplaySource::Bucket(bucket) => {
                for dir in dirs {
                    let _ = writeln!(
                        md,
                        "aws s3 cp --recursive 's3://{bucket}/{dir}/' './{dir}/'"
                    );
                    let _ = writeln!(md, "for f in './{dir}'/*.json; do");
                    md.push_str("  curl -sS --fail -X POST -H 'Content-Type: application/json' --data-binary @\"$f\" \"$ENDPOINT\" && sleep 0.2\ndone\n");
                }
            }
        }
        md.push_str("```\n\n");
    }
}

fn shell_path(p: &str) -> String {
    if p.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        p.to_owned()
    } else {
        format!("'{}'", p.replace('\'', r"'\''"))
    }
}

/// The resource part of an ARN (`api-destination/crm-webhook`), which is what people name.
pub fn short_arn(arn: &str) -> String {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    // API destination ARNs end in a UUID that nobody recognises.
    match resource.strip_prefix("api-destination/") {
        Some(rest) => format!("api-destination/{}", rest.split('/').next().unwrap_or(rest)),
        None => resource.to_owned(),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "—".to_owned()
    } else {
        items.join(", ")
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
