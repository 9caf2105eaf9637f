//! Recovery of events lost beyond the dead-letter queue, from the rule's bus archive
//! (`dlq-triage recover`).
//!
//! What is detected, per minute of the searched period (the failure clock: when
//! EventBridge gave up on the events):
//! - **lost**: the rule's `InvocationsFailedToBeSentToDlq` > 0 — EventBridge could not put
//!   the events into the DLQ (a deleted queue, a denied `sqs:SendMessage`, a KMS key it may
//!   not use); no copy exists anywhere but the archive;
//! - **expired**: `InvocationsSentToDlq` > 0 in a minute older than the DLQ's
//!   `MessageRetentionPeriod`, for a DLQ no event source mapping drains — the copies were
//!   in the queue and SQS has dropped them since. A drained DLQ's dead letters were
//!   consumed (the triage function stores them), not expired.
//!
//! The CloudWatch figures are read as the health look-up reads them (both dimension sets,
//! the period CloudWatch keeps for the window's age). Each stretch of such minutes becomes
//! a replay window on the **event clock**, which is what `StartReplay` selects on: an event
//! fails up to the target's `RetryPolicy.MaximumEventAgeInSeconds` (EventBridge's default
//! 24 h) after its own `time`, so the window starts that much earlier (or `--event-age`).
//! Windows that touch are merged. The archive must hold the window: created before it
//! starts, and keeping events (`RetentionDays`, 0 = forever) back to its start.
//!
//! A replay sends every archived event of the window that the rule matches, delivered ones
//! included (the archive knows nothing of deliveries): the rule's `MatchedEvents` over the
//! window is that count. `Destination.FilterArns` limits the replay to this rule, so the
//! bus's other rules see nothing. AWS advises replaying a window only 10 minutes after its
//! end, as events reach the archive late; `start` refuses earlier unless told. The parts
//! of a window that earlier replays of the rule from the archive cover (`ListReplays` by
//! the name's prefix) are not replayed again.

use std::time::Duration;

use aws_sdk_eventbridge::primitives::DateTime as AwsTime;
use aws_sdk_eventbridge::types::{ArchiveState, ReplayDestination};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::aws_error::AwsError;
use crate::health::{Bounds, Series, series};
use crate::targets::{RuleArn, arn_parts};

/// EventBridge's default `MaximumEventAgeInSeconds` (24 h) for a target without a retry
/// policy.
pub(crate) const DEFAULT_EVENT_AGE: i64 = 86_400;
/// How long after a window's end AWS advises waiting before replaying it.
pub(crate) const ARCHIVE_LAG: i64 = 600;
/// Each AWS call at most this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Planning (every look-up, every page) and starting the replays, each at most this long.
pub(crate) const TOTAL_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a recovery could not be planned or started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecoverError {
    /// `--rule` is not an EventBridge rule ARN.
    #[error(
        "--rule {0}: not an EventBridge rule ARN (arn:aws:events:REGION:ACCOUNT:rule/[BUS/]NAME)"
    )]
    NotARule(String),
    /// An AWS call failed or did not answer in time.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// `arn` (a rule target's dead-letter queue) is not a queue ARN.
    #[error("{arn}: not a queue ARN")]
    NotAQueue { arn: String },
    /// The queue's attributes lack its retention.
    #[error("GetQueueAttributes: no MessageRetentionPeriod for {queue}")]
    NoRetention { queue: String },
    /// The archive's description lacks its ARN.
    #[error("DescribeArchive: no ArchiveArn for {archive}")]
    NoArchiveArn { archive: String },
    /// The rule's metrics could not be read (said in the line, so not its `source()` too).
    #[error("CloudWatch GetMetricData: {0}")]
    Metrics(crate::health::HealthError),
    /// The look-ups together took longer than `after`.
    #[error("the look-ups took more than {after:?} in all: nothing was started")]
    TookTooLong { after: Duration },
    /// Too little time is left before the deadline to start the replay of `start..end`.
    #[error(
        "StartReplay: no time left to start the replay of {start} to {end} within the deadline; run again (what was started is not started twice)"
    )]
    NoTimeLeft { start: String, end: String },
    /// The replay's destination could not be built.
    #[error("StartReplay: {0}")]
    Destination(aws_sdk_eventbridge::error::BuildError),
    /// No archive of the bus holds the window (or none at all).
    #[error("{0}")]
    NoArchive(String),
    /// More than one archive holds it: the person chooses.
    #[error(
        "several archives of bus {bus} hold the window: {}; choose one with --archive NAME",
        names.join(", ")
    )]
    SeveralArchives {
        /// The bus.
        bus: String,
        /// The archives that would do.
        names: Vec<String>,
    },
    /// The window ends too recently for the archive to be complete.
    #[error(
        "the window ends at {end}, less than 10 minutes ago: events reach the archive late, and AWS advises replaying 10 minutes after the window's end (at {ready}); wait, or pass --ignore-archive-lag"
    )]
    TooRecent {
        /// The window's end.
        end: String,
        /// When it may be replayed.
        ready: String,
    },
}

/// A stretch of the event clock to replay, with what it was found for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LostWindow {
    /// Start and end, epoch seconds (end excluded).
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Events that failed to reach the DLQ in the minutes that made it.
    pub(crate) lost: f64,
    /// Dead letters whose DLQ copies expired, in those minutes.
    pub(crate) expired: f64,
    /// The rule's `MatchedEvents` over the window (`None`: not read).
    pub(crate) matched: Option<f64>,
}

/// An archive of the rule's bus.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Archive {
    pub(crate) name: String,
    pub(crate) arn: Option<String>,
    pub(crate) source: String,
    pub(crate) state: String,
    /// Epoch seconds.
    pub(crate) created: Option<i64>,
    /// 0: kept forever.
    pub(crate) retention_days: i32,
    pub(crate) event_pattern: Option<String>,
}

impl Archive {
    /// Whether it holds events of `start..` read at `now`: created before `start` and
    /// keeping events that old, and not being created or failed.
    fn holds(&self, start: i64, now: i64) -> bool {
        let kept =
            self.retention_days <= 0 || start >= now - i64::from(self.retention_days) * 86_400;
        let usable = matches!(self.state.as_str(), "ENABLED" | "DISABLED");
        usable && kept && self.created.is_some_and(|c| c <= start)
    }

    /// "kept forever", "kept 30 days".
    pub(crate) fn retention(&self) -> String {
        if self.retention_days <= 0 {
            "kept forever".into()
        } else {
            format!("kept {} days", self.retention_days)
        }
    }
}

/// A DLQ of the rule's targets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dlq {
    pub(crate) arn: String,
    /// Its `MessageRetentionPeriod` (seconds), when it could be read.
    pub(crate) retention: Option<i64>,
    /// The function an enabled event source mapping drains it into (its dead letters are
    /// consumed within minutes, never left to expire), when there is one.
    pub(crate) drained_by: Option<String>,
}

/// What `recover` found and would replay.
#[derive(Debug, Clone)]
pub(crate) struct RecoveryPlan {
    pub(crate) rule: String,
    pub(crate) region: String,
    /// The rule's bus ARN: the replay's destination.
    pub(crate) bus_arn: String,
    /// How far back of a failure its event may be (seconds), and where that came from.
    pub(crate) event_age: (i64, String),
    /// The DLQs of the rule's targets.
    pub(crate) queues: Vec<Dlq>,
    /// Where the CloudWatch figures were found, one line per metric.
    pub(crate) found_under: Vec<String>,
    pub(crate) windows: Vec<LostWindow>,
    /// The archive (when there is something to replay).
    pub(crate) archive: Option<Archive>,
    /// The replays of the rule from that archive that replayed or are replaying.
    pub(crate) earlier: Vec<Earlier>,
    /// What the figures cannot show, one line each.
    pub(crate) notes: Vec<String>,
}

/// What the person asked for.
#[derive(Debug, Clone)]
pub(crate) struct ReplayRequest {
    pub(crate) rule: String,
    pub(crate) since: i64,
    pub(crate) until: i64,
    pub(crate) archive: Option<String>,
    pub(crate) event_age: Option<i64>,
    pub(crate) now: i64,
}

/// The SDK clients a recovery uses, in the rule's region.
pub(crate) struct Clients {
    pub(crate) events: aws_sdk_eventbridge::Client,
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) cloudwatch: aws_sdk_cloudwatch::Client,
    pub(crate) lambda: aws_sdk_lambda::Client,
}

impl Clients {
    /// Clients of `sdk` in `region`.
    pub(crate) fn new(sdk: &aws_config::SdkConfig, region: &str) -> Clients {
        let sdk = sdk
            .to_builder()
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        Clients {
            events: aws_sdk_eventbridge::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
        }
    }
}

/// `call` (the SDK's `send()` for `action`), bounded by [`CALL_TIMEOUT`].
async fn bounded<T, E>(
    action: &str,
    call: impl std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, RecoverError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    Ok(crate::aws_error::within(action, CALL_TIMEOUT, call).await?)
}

/// The rule's ARN parsed, and its bus's ARN.
pub(crate) fn rule_and_bus(arn: &str) -> Result<(RuleArn, String), RecoverError> {
    let rule = RuleArn::parse(arn).ok_or_else(|| RecoverError::NotARule(arn.to_owned()))?;
    let (_, region, account, _) =
        arn_parts(arn).ok_or_else(|| RecoverError::NotARule(arn.to_owned()))?;
    // A rule has a name, a Region and an account: the SDK would fail on them obscurely.
    if rule.name.is_empty() || region.is_empty() || account.is_empty() {
        return Err(RecoverError::NotARule(arn.to_owned()));
    }
    let partition = arn.split(':').nth(1).unwrap_or("aws");
    let bus = rule.bus.as_deref().unwrap_or("default");
    let bus_arn = format!("arn:{partition}:events:{region}:{account}:event-bus/{bus}");
    Ok((rule, bus_arn))
}

/// The minutes (period starts) that lost events: (start, lost, expired). A period is
/// expired when it ended before `now - retention` of the DLQ (the shortest of the rule's
/// DLQs when it has several).
pub(crate) fn lost_periods(
    failed: &Series,
    sent: &Series,
    retention: Option<i64>,
    now: i64,
) -> Vec<(i64, f64, f64)> {
    let period = i64::from(failed.period.max(sent.period).max(60));
    let mut by_start: std::collections::BTreeMap<i64, (f64, f64)> = Default::default();
    for (t, v) in &failed.points {
        if *v > 0.0 {
            by_start.entry(*t).or_default().0 += v;
        }
    }
    if let Some(retention) = retention {
        for (t, v) in &sent.points {
            if *v > 0.0 && t + period <= now - retention {
                by_start.entry(*t).or_default().1 += v;
            }
        }
    }
    by_start
        .into_iter()
        .map(|(t, (lost, expired))| (t, lost, expired))
        .collect()
}

/// The replay windows of `periods` (each `period` long): from `event_age` before the
/// period to its end; windows that overlap or touch are one.
pub(crate) fn windows(periods: &[(i64, f64, f64)], period: i64, event_age: i64) -> Vec<LostWindow> {
    let mut out: Vec<LostWindow> = Vec::new();
    for &(t, lost, expired) in periods {
        let (start, end) = (t - event_age, t + period);
        match out.last_mut() {
            Some(w) if start <= w.end => {
                w.end = w.end.max(end);
                w.lost += lost;
                w.expired += expired;
            }
            _ => out.push(LostWindow {
                start,
                end,
                lost,
                expired,
                matched: None,
            }),
        }
    }
    out
}

/// The sum of `series` over the periods that start inside `window`.
pub(crate) fn sum_in(series: &Series, window: &LostWindow) -> f64 {
    series
        .points
        .iter()
        .filter(|(t, _)| *t >= window.start && *t < window.end)
        .map(|(_, v)| v)
        .sum()
}

/// A deterministic replay name for `window` of `rule` (at most 64 characters of
/// `[.\-_A-Za-z0-9]`, as `StartReplay` requires): the rule's name (cut to 20), a digest
/// of its ARN, and the window's start and end to the minute ([`replay_prefix`] and the
/// window). Asking for the same window again names the same replay, which EventBridge
/// refuses as existing (the last guard when two runs race; [`start`] skips what earlier
/// replays covered before that).
pub(crate) fn replay_name(rule_arn: &str, rule_name: &str, window: &LostWindow) -> String {
    let minute = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .map_or_else(|| t.to_string(), |d| d.format("%Y%m%dT%H%M").to_string())
    };
    format!(
        "{}{}-{}",
        replay_prefix(rule_arn, rule_name),
        minute(window.start),
        minute(window.end)
    )
}

/// What every replay name of `rule_arn` starts with: `rcv-`, the rule's name (cut to 20,
/// other characters than `[.\-_A-Za-z0-9]` as `-`), 8 hex digits of SHA-256 of its ARN, `-`.
pub(crate) fn replay_prefix(rule_arn: &str, rule_name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(rule_arn.as_bytes());
    let name: String = rule_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .take(20)
        .collect();
    format!("rcv-{name}-{}-", hex::encode(&digest[..4]))
}

/// RFC 3339 UTC to the second.
pub(crate) fn rfc3339(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d: DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// The archive to replay `start..` from: the one named (it must be of `bus_arn` and hold
/// the window), else the only one of the bus that holds it.
pub(crate) fn choose_archive(
    archives: &[Archive],
    requested: Option<&str>,
    bus_arn: &str,
    start: i64,
    now: i64,
) -> Result<Archive, RecoverError> {
    let why_not = |a: &Archive| {
        let later = match a.created {
            Some(c) if c > start => format!(
                " (the window starts {} s before its archive: a shorter --event-age, of the seconds an event may have waited before failing, starts it later)",
                c - start
            ),
            _ => String::new(),
        };
        format!(
            "archive {} ({}, created {}, {}) does not hold events from {}: an archive holds events from its creation on, for its retention{later}",
            a.name,
            a.state,
            a.created.map_or("at an unknown time".into(), rfc3339),
            a.retention(),
            rfc3339(start)
        )
    };
    if let Some(name) = requested {
        let a = archives.iter().find(|a| a.name == name).ok_or_else(|| {
            RecoverError::NoArchive(format!("no archive {name} of bus {bus_arn}"))
        })?;
        if a.source != bus_arn {
            return Err(RecoverError::NoArchive(format!(
                "archive {name} archives {}, not the rule's bus {bus_arn}",
                a.source
            )));
        }
        return if a.holds(start, now) {
            Ok(a.clone())
        } else {
            Err(RecoverError::NoArchive(why_not(a)))
        };
    }
    let holding: Vec<&Archive> = archives
        .iter()
        .filter(|a| a.source == bus_arn && a.holds(start, now))
        .collect();
    match holding.as_slice() {
        [one] => Ok((*one).clone()),
        [] if archives.is_empty() => Err(RecoverError::NoArchive(format!(
            "bus {bus_arn} has no archive: events lost beyond the DLQ cannot be recovered from EventBridge (create one now for the next time: aws events create-archive --archive-name NAME --event-source-arn {bus_arn})"
        ))),
        [] => Err(RecoverError::NoArchive(
            archives.iter().map(why_not).collect::<Vec<_>>().join("; "),
        )),
        several => Err(RecoverError::SeveralArchives {
            bus: bus_arn.to_owned(),
            names: several.iter().map(|a| a.name.clone()).collect(),
        }),
    }
}

/// The rule's targets: the longest `MaximumEventAgeInSeconds` among them (with where it
/// came from) and their DLQ ARNs.
async fn targets(
    events: &aws_sdk_eventbridge::Client,
    rule: &RuleArn,
) -> Result<((i64, String), Vec<String>), RecoverError> {
    let call = events
        .list_targets_by_rule()
        .rule(&rule.name)
        .set_event_bus_name(rule.bus.clone())
        .send();
    let answer = bounded("ListTargetsByRule", call).await?;
    let mut age: Option<(i64, String)> = None;
    let mut queues = Vec::new();
    for t in answer.targets() {
        let (seconds, from) = match t
            .retry_policy()
            .and_then(|p| p.maximum_event_age_in_seconds())
        {
            Some(s) => (
                i64::from(s),
                format!("target {}'s RetryPolicy.MaximumEventAgeInSeconds", t.id()),
            ),
            None => (
                DEFAULT_EVENT_AGE,
                format!(
                    "target {} has no RetryPolicy: EventBridge's default 24 h",
                    t.id()
                ),
            ),
        };
        if age.as_ref().is_none_or(|(a, _)| seconds > *a) {
            age = Some((seconds, from));
        }
        if let Some(arn) = t.dead_letter_config().and_then(|d| d.arn()) {
            queues.push(arn.to_owned());
        }
    }
    let age = age.unwrap_or((
        DEFAULT_EVENT_AGE,
        "the rule has no targets: EventBridge's default 24 h".into(),
    ));
    Ok((age, queues))
}

/// A queue's `MessageRetentionPeriod` (seconds), by its ARN.
async fn retention_of(sqs: &aws_sdk_sqs::Client, queue_arn: &str) -> Result<i64, RecoverError> {
    let (_, _, account, name) = arn_parts(queue_arn).ok_or_else(|| RecoverError::NotAQueue {
        arn: queue_arn.to_owned(),
    })?;
    let url = bounded(
        "GetQueueUrl",
        sqs.get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send(),
    )
    .await?;
    let url = url.queue_url().unwrap_or_default().to_owned();
    let attrs = bounded(
        "GetQueueAttributes",
        sqs.get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::MessageRetentionPeriod)
            .send(),
    )
    .await?;
    attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::MessageRetentionPeriod))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| RecoverError::NoRetention {
            queue: queue_arn.to_owned(),
        })
}

/// Every archive of `bus_arn` (`ListArchives` by `EventSourceArn`, every page).
async fn archives(
    events: &aws_sdk_eventbridge::Client,
    bus_arn: &str,
) -> Result<Vec<Archive>, RecoverError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = bounded(
            "ListArchives",
            events
                .list_archives()
                .event_source_arn(bus_arn)
                .set_next_token(next.take())
                .send(),
        )
        .await?;
        out.extend(page.archives().iter().map(|a| Archive {
            name: a.archive_name().unwrap_or_default().to_owned(),
            arn: None,
            source: a.event_source_arn().unwrap_or_default().to_owned(),
            state: a.state().map_or("", ArchiveState::as_str).to_owned(),
            created: a.creation_time().map(AwsTime::secs),
            retention_days: a.retention_days().unwrap_or(0),
            event_pattern: None,
        }));
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// `DescribeArchive` of `name`: its ARN and event pattern.
async fn describe_archive(
    events: &aws_sdk_eventbridge::Client,
    name: &str,
) -> Result<Archive, RecoverError> {
    let a = bounded(
        "DescribeArchive",
        events.describe_archive().archive_name(name).send(),
    )
    .await?;
    Ok(Archive {
        name: a.archive_name().unwrap_or(name).to_owned(),
        arn: a.archive_arn().map(str::to_owned),
        source: a.event_source_arn().unwrap_or_default().to_owned(),
        state: a.state().map_or("", ArchiveState::as_str).to_owned(),
        created: a.creation_time().map(AwsTime::secs),
        retention_days: a.retention_days().unwrap_or(0),
        event_pattern: a.event_pattern().map(str::to_owned),
    })
}

/// The function an enabled (or enabling, updating) event source mapping drains `queue_arn`
/// into, if any (`ListEventSourceMappings` by `EventSourceArn`).
async fn drained_by(
    lambda: &aws_sdk_lambda::Client,
    queue_arn: &str,
) -> Result<Option<String>, RecoverError> {
    let found = bounded(
        "ListEventSourceMappings",
        lambda
            .list_event_source_mappings()
            .event_source_arn(queue_arn)
            .send(),
    )
    .await?;
    Ok(found
        .event_source_mappings()
        .iter()
        .find(|m| {
            !m.state().is_some_and(|s| {
                s.eq_ignore_ascii_case("disabled") || s.eq_ignore_ascii_case("disabling")
            })
        })
        .map(|m| m.function_arn().unwrap_or("a function").to_owned()))
}

/// The DLQs with their retention and drain (or a note why not known), and the shortest
/// retention among those nothing drains: dead letters of a drained queue were consumed
/// (and stored by the triage function), not expired.
async fn queues(
    clients: &Clients,
    arns: Vec<String>,
    notes: &mut Vec<String>,
) -> (Vec<Dlq>, Option<i64>) {
    let mut out = Vec::new();
    for arn in arns {
        let retention = match retention_of(&clients.sqs, &arn).await {
            Ok(r) => Some(r),
            Err(e) => {
                notes.push(format!("the DLQ's retention could not be read ({e}): expired dead letters of {arn} are not looked for"));
                None
            }
        };
        let drained = match drained_by(&clients.lambda, &arn).await {
            Ok(d) => d,
            Err(e) => {
                notes.push(format!("whether a function drains {arn} could not be read ({e}): its dead letters are not taken for expired"));
                Some("an unknown consumer".to_owned())
            }
        };
        out.push(Dlq {
            arn,
            retention,
            drained_by: drained,
        });
    }
    let shortest = out
        .iter()
        .filter(|q| q.drained_by.is_none())
        .filter_map(|q| q.retention)
        .min();
    (out, shortest)
}

/// Finds what was lost in the request's period and the archive to replay it from, within
/// [`TOTAL_TIMEOUT`] (each call within its own [`CALL_TIMEOUT`]).
pub(crate) async fn plan(
    clients: &Clients,
    request: &ReplayRequest,
) -> Result<RecoveryPlan, RecoverError> {
    match tokio::time::timeout(TOTAL_TIMEOUT, plan_within(clients, request)).await {
        Ok(planned) => planned,
        Err(_) => Err(RecoverError::TookTooLong {
            after: TOTAL_TIMEOUT,
        }),
    }
}

async fn plan_within(
    clients: &Clients,
    request: &ReplayRequest,
) -> Result<RecoveryPlan, RecoverError> {
    let (rule, bus_arn) = rule_and_bus(&request.rule)?;
    let (found_age, dlqs) = targets(&clients.events, &rule).await?;
    let event_age = match request.event_age {
        Some(s) => (s, "--event-age".to_owned()),
        None => found_age,
    };
    let mut notes = Vec::new();
    let (queues, retention) = queues(clients, dlqs, &mut notes).await;
    let bounds = Bounds {
        per_call: CALL_TIMEOUT,
        total: CALL_TIMEOUT * 2,
    };
    let metrics = [
        "InvocationsFailedToBeSentToDlq",
        "InvocationsSentToDlq",
        "MatchedEvents",
    ];
    // The matched events are read back to where the earliest window may start.
    let read = (request.since - event_age.0, request.until, request.now);
    let found = series(&clients.cloudwatch, &rule, &metrics, read, bounds)
        .await
        .map_err(RecoverError::Metrics)?;
    let (failed, sent, matched) = (&found[0], &found[1], &found[2]);
    let found_under = metrics
        .iter()
        .zip(&found)
        .map(|(m, s)| match s.under {
            Some(set) => format!("{m} under {{{}}}", set.as_str().replace(',', ", ")),
            None => format!("{m}: no data under {{RuleName}} or {{EventBusName, RuleName}}"),
        })
        .collect();
    let in_period = |s: &Series| Series {
        points: s
            .points
            .iter()
            .copied()
            .filter(|(t, _)| *t > request.since - i64::from(s.period) && *t < request.until)
            .collect(),
        ..s.clone()
    };
    let lost = lost_periods(&in_period(failed), &in_period(sent), retention, request.now);
    let mut windows = windows(&lost, i64::from(failed.period.max(60)), event_age.0);
    for w in &mut windows {
        w.matched = matched.under.map(|_| sum_in(matched, w));
    }
    let archive = match windows.first() {
        None => None,
        Some(first) => {
            let listed = archives(&clients.events, &bus_arn).await?;
            let chosen = choose_archive(
                &listed,
                request.archive.as_deref(),
                &bus_arn,
                first.start,
                request.now,
            )?;
            Some(describe_archive(&clients.events, &chosen.name).await?)
        }
    };
    let earlier = match archive.as_ref().and_then(|a| a.arn.as_deref()) {
        Some(arn) => {
            let prefix = replay_prefix(&request.rule, &rule.name);
            earlier_replays(&clients.events, arn, &prefix).await?
        }
        None => Vec::new(),
    };
    Ok(RecoveryPlan {
        rule: request.rule.clone(),
        region: rule.region.clone(),
        bus_arn,
        event_age,
        queues,
        found_under,
        windows,
        archive,
        earlier,
        notes,
    })
}

/// What became of (a part of) one window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Started {
    /// Started now: (replay name, its state).
    Now(String, String),
    /// A replay of that name exists already (started by an earlier run).
    Already(String),
    /// `start..end` was replayed already by earlier replays of this rule from this archive
    /// (named with their state): not replayed again.
    Covered {
        start: i64,
        end: i64,
        by: Vec<String>,
    },
}

/// An earlier replay of the rule from the archive: (name, state, start, end).
pub(crate) type Earlier = (String, String, i64, i64);

/// A part of a window earlier replays covered: (start, end, those replays with state).
pub(crate) type Covered = (i64, i64, Vec<String>);

/// The replays of `archive_arn` whose names start with `prefix` (`ListReplays`, every
/// page) that replayed or are replaying events: `FAILED` and `CANCELLED` ones are left
/// out (they may have stopped anywhere in their window).
async fn earlier_replays(
    events: &aws_sdk_eventbridge::Client,
    archive_arn: &str,
    prefix: &str,
) -> Result<Vec<Earlier>, RecoverError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = bounded(
            "ListReplays",
            events
                .list_replays()
                .event_source_arn(archive_arn)
                .name_prefix(prefix)
                .set_next_token(next.take())
                .send(),
        )
        .await?;
        for r in page.replays() {
            let state = r.state().map_or("", |s| s.as_str()).to_owned();
            let (Some(start), Some(end)) = (r.event_start_time(), r.event_end_time()) else {
                continue;
            };
            if !matches!(state.as_str(), "FAILED" | "CANCELLED") {
                let name = r.replay_name().unwrap_or_default().to_owned();
                out.push((name, state, start.secs(), end.secs()));
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// The parts of `start..end` that none of `earlier` covers, and the covered parts with
/// the replays covering them.
pub(crate) fn split(start: i64, end: i64, earlier: &[Earlier]) -> (Vec<(i64, i64)>, Vec<Covered>) {
    let mut cover: Vec<&Earlier> = earlier
        .iter()
        .filter(|(_, _, s, e)| *s < end && *e > start)
        .collect();
    cover.sort_by_key(|(_, _, s, _)| *s);
    let (mut open, mut covered) = (Vec::new(), Vec::new());
    let mut at = start;
    for (name, state, s, e) in cover {
        if *s > at {
            open.push((at, *s));
        }
        let (from, to) = (at.max(*s), end.min(*e));
        if to > from {
            covered.push((from, to, vec![format!("{name} ({state})")]));
        } else if let Some(last) = covered.last_mut().filter(|c| c.1 >= *s) {
            last.2.push(format!("{name} ({state})"));
        }
        at = at.max(to);
    }
    if at < end {
        open.push((at, end));
    }
    (open, covered)
}

/// Refuses a plan whose last window ends less than [`ARCHIVE_LAG`] before `now`.
pub(crate) fn check_lag(plan: &RecoveryPlan, now: i64) -> Result<(), RecoverError> {
    match plan.windows.iter().map(|w| w.end).max() {
        Some(end) if end + ARCHIVE_LAG > now => Err(RecoverError::TooRecent {
            end: rfc3339(end),
            ready: rfc3339(end + ARCHIVE_LAG),
        }),
        _ => Ok(()),
    }
}

/// `StartReplay` of each window: from the archive to the rule's bus, to this rule alone.
/// The parts of a window that earlier replays of this rule from this archive (found by
/// their name's prefix, [`replay_prefix`], when planning) cover are not replayed again, whatever window
/// those were started for. Stops at the first failure other than an existing replay of
/// the same name; what was started before it is returned with the failure.
pub(crate) async fn start(
    events: &aws_sdk_eventbridge::Client,
    plan: &RecoveryPlan,
    rule_name: &str,
    deadline: tokio::time::Instant,
) -> (Vec<Started>, Option<RecoverError>) {
    let mut out = Vec::new();
    let Some(archive) = &plan.archive else {
        return (out, None);
    };
    let Some(archive_arn) = archive.arn.clone() else {
        let e = RecoverError::NoArchiveArn {
            archive: archive.name.clone(),
        };
        return (out, Some(e));
    };
    for w in &plan.windows {
        let (open, covered) = split(w.start, w.end, &plan.earlier);
        out.extend(
            covered
                .into_iter()
                .map(|(start, end, by)| Started::Covered { start, end, by }),
        );
        for (start, end) in open {
            let part = LostWindow {
                start,
                end,
                ..w.clone()
            };
            if tokio::time::Instant::now() + CALL_TIMEOUT > deadline {
                let e = RecoverError::NoTimeLeft {
                    start: rfc3339(start),
                    end: rfc3339(end),
                };
                return (out, Some(e));
            }
            match start_one(events, plan, rule_name, &archive_arn, &part).await {
                Ok(s) => out.push(s),
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// `StartReplay` of one window.
async fn start_one(
    events: &aws_sdk_eventbridge::Client,
    plan: &RecoveryPlan,
    rule_name: &str,
    archive_arn: &str,
    w: &LostWindow,
) -> Result<Started, RecoverError> {
    let name = replay_name(&plan.rule, rule_name, w);
    let destination = ReplayDestination::builder()
        .arn(&plan.bus_arn)
        .filter_arns(&plan.rule)
        .build()
        .map_err(RecoverError::Destination)?;
    let call = events
        .start_replay()
        .replay_name(&name)
        .description(format!("dlq-triage recover of rule {rule_name}"))
        .event_source_arn(archive_arn)
        .event_start_time(AwsTime::from_secs(w.start))
        .event_end_time(AwsTime::from_secs(w.end))
        .destination(destination)
        .send();
    match crate::aws_error::within("StartReplay", CALL_TIMEOUT, call).await {
        Ok(o) => Ok(Started::Now(
            name,
            o.state().map_or("", |s| s.as_str()).to_owned(),
        )),
        Err(e) if e.code() == Some("ResourceAlreadyExistsException") => Ok(Started::Already(name)),
        // The replay's name says which one did not answer.
        Err(AwsError::TimedOut { after, .. }) => Err(RecoverError::Aws(AwsError::TimedOut {
            action: format!("StartReplay {name}"),
            after,
        })),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metrics' failure is said once, printed with its causes or not.
    #[test]
    fn a_destination_that_cannot_be_built_says_why_once() {
        let e = RecoverError::Destination(ReplayDestination::builder().build().unwrap_err());
        assert!(e.to_string().starts_with("StartReplay: "), "{e}");
        assert_eq!(crate::aws_error::said_twice(&e), Vec::<String>::new());
    }

    #[test]
    fn a_metrics_failure_says_its_cause_once() {
        let e = RecoverError::Metrics(crate::health::HealthError::WindowTooOld);
        assert_eq!(
            e.to_string(),
            "CloudWatch GetMetricData: the window starts more than 455 days ago: CloudWatch keeps no metric data that old"
        );
        assert_eq!(crate::aws_error::said_twice(&e), Vec::<String>::new());
    }

    const RULE: &str = "arn:aws:events:us-east-1:111122223333:rule/aws.partner/genesys.com/cloud/3a1b/prod-events/conversations-to-crm";

    fn series(points: &[(i64, f64)]) -> Series {
        Series {
            points: points.to_vec(),
            under: None,
            period: 60,
        }
    }

    fn archive(name: &str, created: i64, days: i32) -> Archive {
        Archive {
            name: name.into(),
            arn: None,
            source: "arn:aws:events:us-east-1:111122223333:event-bus/b".into(),
            state: "ENABLED".into(),
            created: Some(created),
            retention_days: days,
            event_pattern: None,
        }
    }

    #[test]
    fn a_partner_buss_rule_names_its_bus() {
        let (rule, bus) = rule_and_bus(RULE).unwrap();
        assert_eq!(rule.name, "conversations-to-crm");
        assert_eq!(
            bus,
            "arn:aws:events:us-east-1:111122223333:event-bus/aws.partner/genesys.com/cloud/3a1b/prod-events"
        );
        let (_, bus) = rule_and_bus("arn:aws:events:eu-west-1:111122223333:rule/r").unwrap();
        assert_eq!(
            bus,
            "arn:aws:events:eu-west-1:111122223333:event-bus/default"
        );
        assert!(rule_and_bus("arn:aws:sqs:us-east-1:1:q").is_err());
        for odd in [
            "arn:aws:events:us-east-1:111122223333:rule/",
            "arn:aws:events:us-east-1:111122223333:rule/bus/",
            "arn:aws:events:::rule/r",
            "arn:aws:events:us-east-1::rule/r",
        ] {
            assert!(
                matches!(rule_and_bus(odd), Err(RecoverError::NotARule(_))),
                "{odd}"
            );
        }
    }

    #[test]
    fn lost_minutes_and_expired_copies_become_windows_reaching_back_by_the_event_age() {
        let now = 1_800_000_000;
        let failed = series(&[(now - 7200, 3.0), (now - 7140, 2.0), (now - 3600, 0.0)]);
        // Dead letters 5 days ago expired from a queue keeping them 4 days; yesterday's not.
        let sent = series(&[(now - 5 * 86_400, 7.0), (now - 86_400, 9.0)]);
        let lost = lost_periods(&failed, &sent, Some(4 * 86_400), now);
        assert_eq!(
            lost,
            vec![
                (now - 5 * 86_400, 0.0, 7.0),
                (now - 7200, 3.0, 0.0),
                (now - 7140, 2.0, 0.0)
            ]
        );
        let w = windows(&lost, 60, 300);
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[1].start, w[1].end, w[1].lost),
            (now - 7500, now - 7080, 5.0)
        );
        assert_eq!(
            (w[0].start, w[0].end, w[0].expired),
            (now - 5 * 86_400 - 300, now - 5 * 86_400 + 60, 7.0)
        );
        // Without a readable retention nothing counts as expired.
        assert_eq!(lost_periods(&failed, &sent, None, now).len(), 2);
    }

    #[test]
    fn a_replay_name_is_deterministic_and_valid_for_start_replay() {
        let w = LostWindow {
            start: 1_746_180_000,
            end: 1_746_181_200,
            lost: 1.0,
            expired: 0.0,
            matched: None,
        };
        let long = "a-rule-whose-name-is-as-long-as-eventbridge-allows-it-to-be-xxxx";
        for (arn, name) in [
            (RULE, "conversations-to-crm"),
            (RULE, long),
            (RULE, "odd name/with:chars"),
        ] {
            let n = replay_name(arn, name, &w);
            assert!(n.len() <= 64, "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
                "{n}"
            );
            assert_eq!(n, replay_name(arn, name, &w));
        }
        assert_eq!(
            replay_name(RULE, "r", &w),
            "rcv-r-".to_owned() + &replay_name(RULE, "r", &w)[6..]
        );
        assert!(replay_name(RULE, "r", &w).ends_with("-20250502T1000-20250502T1020"));
        assert_ne!(
            replay_name(RULE, "r", &w),
            replay_name("arn:aws:events:us-east-1:1:rule/r", "r", &w)
        );
    }

    #[test]
    fn the_archive_must_be_of_the_bus_and_hold_the_window() {
        let bus = "arn:aws:events:us-east-1:111122223333:event-bus/b";
        let now = 1_800_000_000;
        let start = now - 3 * 86_400;
        let old = archive("old", now - 30 * 86_400, 0);
        let young = archive("young", now - 86_400, 0);
        let short = archive("short", now - 30 * 86_400, 2);
        let chosen = choose_archive(
            &[young.clone(), old.clone(), short.clone()],
            None,
            bus,
            start,
            now,
        );
        assert_eq!(chosen.unwrap().name, "old");
        assert!(
            matches!(choose_archive(std::slice::from_ref(&young), Some("young"), bus, start, now), Err(RecoverError::NoArchive(m)) if m.contains("does not hold"))
        );
        let twin = archive("twin", now - 40 * 86_400, 90);
        assert!(
            matches!(choose_archive(&[old.clone(), twin.clone()], None, bus, start, now), Err(RecoverError::SeveralArchives { names, .. }) if names == ["old", "twin"])
        );
        assert_eq!(
            choose_archive(&[old.clone(), twin], Some("twin"), bus, start, now)
                .unwrap()
                .name,
            "twin"
        );
        let mut other = old.clone();
        other.source = "arn:aws:events:us-east-1:111122223333:event-bus/other".into();
        assert!(choose_archive(&[other], Some("old"), bus, start, now).is_err());
        assert!(
            matches!(choose_archive(&[], None, bus, start, now), Err(RecoverError::NoArchive(m)) if m.contains("has no archive"))
        );
    }

    #[test]
    fn earlier_replays_cut_a_window_into_what_they_left_out() {
        let r = |n: &str, s: i64, e: i64| (n.to_owned(), "COMPLETED".to_owned(), s, e);
        // Nothing earlier: the whole window.
        assert_eq!(split(100, 200, &[]), (vec![(100, 200)], vec![]));
        // One inside, one over the end, one elsewhere.
        let (open, covered) = split(
            100,
            200,
            &[r("a", 120, 140), r("b", 180, 260), r("c", 300, 400)],
        );
        assert_eq!(open, vec![(100, 120), (140, 180)]);
        assert_eq!(
            covered,
            vec![
                (120, 140, vec!["a (COMPLETED)".to_owned()]),
                (180, 200, vec!["b (COMPLETED)".to_owned()])
            ]
        );
        // Covered whole, by overlapping replays.
        let (open, covered) = split(100, 200, &[r("a", 50, 150), r("b", 140, 210)]);
        assert!(open.is_empty());
        assert_eq!(covered.len(), 2);
        assert_eq!((covered[0].0, covered[1].1), (100, 200));
        // One nested in a part already covered is named with it.
        let (open, covered) = split(100, 200, &[r("a", 50, 250), r("b", 120, 130)]);
        assert!(open.is_empty());
        assert_eq!(
            covered,
            vec![(
                100,
                200,
                vec!["a (COMPLETED)".to_owned(), "b (COMPLETED)".to_owned()]
            )]
        );
    }

    #[tokio::test]
    async fn no_replay_is_started_past_the_deadline() {
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let events = aws_sdk_eventbridge::Client::from_conf(config);
        let mut a = archive("a", 0, 0);
        a.arn = Some("arn:aws:events:us-east-1:111122223333:archive/a".into());
        let plan = RecoveryPlan {
            rule: RULE.into(),
            region: "us-east-1".into(),
            bus_arn: String::new(),
            event_age: (0, String::new()),
            queues: vec![],
            found_under: vec![],
            windows: vec![LostWindow {
                start: 1_800_000_000,
                end: 1_800_000_060,
                lost: 1.0,
                expired: 0.0,
                matched: None,
            }],
            archive: Some(a),
            earlier: vec![],
            notes: vec![],
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let (started, failed) = start(&events, &plan, "r", deadline).await;
        assert!(started.is_empty());
        assert!(
            matches!(&failed, Some(RecoverError::NoTimeLeft { .. })),
            "{failed:?}"
        );
    }

    #[test]
    fn a_window_ending_within_ten_minutes_is_refused() {
        let now = 1_800_000_000;
        let plan = |end: i64| RecoveryPlan {
            rule: RULE.into(),
            region: "us-east-1".into(),
            bus_arn: String::new(),
            event_age: (0, String::new()),
            queues: vec![],
            found_under: vec![],
            windows: vec![LostWindow {
                start: end - 60,
                end,
                lost: 1.0,
                expired: 0.0,
                matched: None,
            }],
            archive: None,
            earlier: vec![],
            notes: vec![],
        };
        assert!(matches!(
            check_lag(&plan(now - 300), now),
            Err(RecoverError::TooRecent { .. })
        ));
        assert!(check_lag(&plan(now - 600), now).is_ok());
    }
}
