//! [`IncidentTable`] in DynamoDB: an item is read with `GetItem` (consistent) and written
//! whole with one conditional `PutItem` whose condition is fixed in size (the item's `rev`
//! and `itemVersion`), however wide the batch or long the incident. The state index
//! `open-by-last-seen` (`openState`, `lastSeen`) holds the open incidents (`openState`
//! `open`) and the resolved ones whose outbox is not empty (`unannounced`). The item's
//! attributes are listed in docs/contract.md.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::BoxFuture;

use super::Transition;
use super::table::{
    Expect, ITEM_VERSION, IncidentItem, IncidentTable, Pending, ReportRef, Salvage, State, Stored,
    TableError,
};

/// The sparse index of open (and unannounced) incidents by last failure.
pub(super) const OPEN_INDEX: &str = "open-by-last-seen";

type Item = HashMap<String, AttributeValue>;

/// The incident table in DynamoDB.
#[derive(Debug)]
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    calls: AtomicU64,
}

impl DynamoTable {
    /// The table `table` through `client` (whose configuration bounds each call in time).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoTable {
        DynamoTable {
            client,
            table: table.into(),
            calls: AtomicU64::new(0),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.table
    }

    fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl IncidentTable for DynamoTable {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, TableError>> {
        Box::pin(async move {
            self.count_call();
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("incidentKey", s(key))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| failed("GetItem", &self.table, e))?;
            let Some(item) = out.item() else {
                return Ok(None);
            };
            if let Some(version) = newer(item) {
                return Err(TableError::Newer {
                    key: key.to_owned(),
                    version,
                });
            }
            Ok(Some(match parse(&upgraded(item)) {
                Ok(i) => Stored::Item(Box::new(i)),
                Err(why) => Stored::Unreadable {
                    why,
                    salvage: salvage(item),
                },
            }))
        })
    }

    fn put<'a>(
        &'a self,
        item: &'a IncidentItem,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, TableError>> {
        Box::pin(async move {
            let mut values = HashMap::new();
            let fence = "(attribute_not_exists(itemVersion) OR itemVersion <= :version)";
            let condition = match expect {
                Expect::Absent => "attribute_not_exists(incidentKey)".to_owned(),
                // Rev 0 is never written: it is an item of layout 1, which has no `rev`.
                Expect::Rev(0) => {
                    values.insert(":version".to_owned(), n(ITEM_VERSION));
                    format!(
                        "attribute_exists(incidentKey) AND attribute_not_exists(#rev) AND {fence}"
                    )
                }
                Expect::Rev(rev) | Expect::Unreadable(Some(rev)) => {
                    values.insert(":rev".to_owned(), n(rev));
                    values.insert(":version".to_owned(), n(ITEM_VERSION));
                    format!("attribute_exists(incidentKey) AND #rev = :rev AND {fence}")
                }
                Expect::Unreadable(None) => {
                    values.insert(":version".to_owned(), n(ITEM_VERSION));
                    format!(
                        "attribute_exists(incidentKey) AND attribute_not_exists(#rev) AND {fence}"
                    )
                }
            };
            let names = condition
                .contains("#rev")
                .then(|| HashMap::from([("#rev".to_owned(), "rev".to_owned())]));
            self.count_call();
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(to_item(item)))
                .condition_expression(condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values((!values.is_empty()).then_some(values))
                .send()
                .await;
            match result {
                Ok(_) => Ok(true),
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
                // Never a reason to rewrite anything: the request is wrong, and is named.
                Err(e) if e.code() == Some("ValidationException") => Err(TableError::Invalid {
                    key: item.key.clone(),
                    why: e.message().unwrap_or("ValidationException").to_owned(),
                }),
                Err(e) => Err(failed("PutItem", &self.table, e)),
            }
        })
    }

    fn indexed<'a>(
        &'a self,
        index_state: &'a str,
    ) -> BoxFuture<'a, Result<Vec<IncidentItem>, TableError>> {
        Box::pin(async move {
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OPEN_INDEX)
                .key_condition_expression("openState = :state")
                .expression_attribute_values(":state", s(index_state))
                .into_paginator()
                .send();
            let mut found = Vec::new();
            while let Some(page) = pages.next().await {
                self.count_call();
                let page = page.map_err(|e| failed("Query", &self.table, e))?;
                found.extend(page.items().iter().filter_map(readable));
            }
            Ok(found)
        })
    }

    fn list(&self, state: Option<State>) -> BoxFuture<'_, Result<Vec<IncidentItem>, TableError>> {
        Box::pin(async move {
            if state == Some(State::Open) {
                return self.indexed("open").await;
            }
            let mut pages = self
                .client
                .scan()
                .table_name(&self.table)
                .into_paginator()
                .send();
            let mut found = Vec::new();
            while let Some(page) = pages.next().await {
                self.count_call();
                let page = page.map_err(|e| failed("Scan", &self.table, e))?;
                found.extend(
                    page.items()
                        .iter()
                        .filter_map(readable)
                        .filter(|i| state.is_none_or(|s| i.state == s)),
                );
            }
            Ok(found)
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// An item of a listing this version can read; one it cannot is named in the log. Items
/// of other families share the table under `family#…` keys (the daily audit's
/// `finding#<code>#<resource>`); an incident's key never holds `#`, so they are passed over
/// without a word.
fn readable(item: &Item) -> Option<IncidentItem> {
    if item
        .get("incidentKey")
        .and_then(|k| k.as_s().ok())
        .is_some_and(|k| k.contains('#'))
    {
        return None;
    }
    let why = match newer(item) {
        Some(v) => format!("itemVersion {v}: written by a newer version"),
        None => match parse(&upgraded(item)) {
            Ok(i) => return Some(i),
            Err(why) => why,
        },
    };
    let key = item.get("incidentKey").and_then(|k| k.as_s().ok());
    tracing::warn!(incident = ?key, %why, "incident item skipped: cannot be read");
    None
}

/// The `itemVersion` of an item newer than this version's.
fn newer(item: &Item) -> Option<u64> {
    let v: u64 = item.get("itemVersion")?.as_n().ok()?.parse().ok()?;
    (v > ITEM_VERSION).then_some(v)
}

/// An item of layout 1 (`itemVersion` 1: before episodes, the outbox and `rev`) in this
/// layout's terms, so that the incidents open when this version is deployed go on and
/// resolve: its episode is 0 (whose dedup key is the incident's key, as its pages had),
/// everything up to its `seq` was announced, its last batch was counted at its latest
/// transition, a resolution's cut-off is its last failure, and its `rev` is 0 (the next
/// write's condition: no `rev` yet). Any other item is as it is.
fn upgraded(item: &Item) -> std::borrow::Cow<'_, Item> {
    if Attrs(item).number("itemVersion") != Ok(Some(1)) {
        return std::borrow::Cow::Borrowed(item);
    }
    let mut up = item.clone();
    let copy = |up: &mut Item, to: &str, from: &str| {
        if let Some(v) = item.get(from) {
            up.entry(to.to_owned()).or_insert_with(|| v.clone());
        }
    };
    copy(&mut up, "lastCounted", "lastAnnounced");
    copy(&mut up, "announcedSeq", "seq");
    if item.contains_key("resolvedAt") {
        copy(&mut up, "resolvedCutoff", "lastSeen");
    }
    up.entry("episode".to_owned()).or_insert_with(|| n(0));
    up.entry("rev".to_owned()).or_insert_with(|| n(0));
    std::borrow::Cow::Owned(up)
}

/// What can be read of an item that does not parse.
fn salvage(item: &Item) -> Salvage {
    let a = Attrs(item);
    let count = |name: &str| a.count(name).ok();
    Salvage {
        state: match a.text("state").ok().as_deref() {
            Some("open") => Some(State::Open),
            Some("resolved") => Some(State::Resolved),
            _ => None,
        },
        seq: count("seq").unwrap_or(0),
        episode: count("episode").unwrap_or(0),
        rev: count("rev"),
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ss(v: &BTreeSet<String>) -> Option<AttributeValue> {
    (!v.is_empty()).then(|| AttributeValue::Ss(v.iter().cloned().collect()))
}

fn strings(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|e| s(e)).collect())
}

fn counts(v: &BTreeMap<i64, u64>) -> AttributeValue {
    AttributeValue::M(v.iter().map(|(m, c)| (m.to_string(), n(c))).collect())
}

fn outbox(v: &[Pending]) -> AttributeValue {
    AttributeValue::L(
        v.iter()
            .map(|p| {
                AttributeValue::M(HashMap::from([
                    ("seq".to_owned(), n(p.seq)),
                    ("transition".to_owned(), s(p.transition.as_str())),
                    ("episode".to_owned(), n(p.episode)),
                    ("at".to_owned(), n(p.at)),
                    ("sinceLast".to_owned(), n(p.since_last)),
                    ("byHand".to_owned(), AttributeValue::Bool(p.by_hand)),
                    ("rewritten".to_owned(), AttributeValue::Bool(p.rewritten)),
                ]))
            })
            .collect(),
    )
}

/// The whole item, for `PutItem`.
fn to_item(i: &IncidentItem) -> Item {
    let mut item: Item = HashMap::from([
        ("incidentKey".to_owned(), s(&i.key)),
        ("state".to_owned(), s(i.state.as_str())),
        ("category".to_owned(), s(&i.category)),
        ("firstSeen".to_owned(), n(i.first_seen)),
        ("lastSeen".to_owned(), n(i.last_seen)),
        ("lastCounted".to_owned(), n(i.last_counted)),
        ("count".to_owned(), n(i.count)),
        ("announcedCount".to_owned(), n(i.announced_count)),
        ("sampleErrors".to_owned(), strings(&i.sample_errors)),
        ("conversations".to_owned(), n(i.conversations)),
        ("perMinute".to_owned(), counts(&i.per_minute)),
        ("perHour".to_owned(), counts(&i.per_hour)),
        ("peakPerMinute".to_owned(), n(i.peak_per_minute)),
        ("seq".to_owned(), n(i.seq)),
        ("episode".to_owned(), n(i.episode)),
        ("announcedSeq".to_owned(), n(i.announced_seq)),
        ("outbox".to_owned(), outbox(&i.outbox)),
        ("lastAnnounced".to_owned(), n(i.last_announced)),
        ("rev".to_owned(), n(i.rev)),
        ("itemVersion".to_owned(), n(ITEM_VERSION)),
    ]);
    if let Some(index) = i.index_state() {
        item.insert("openState".into(), s(index));
    }
    if let Some(t) = &i.target_arn {
        item.insert("targetArn".into(), s(t));
    }
    if i.replayed > 0 {
        item.insert("replayed".into(), n(i.replayed));
    }
    for (attr, v) in [
        ("rules", &i.rules),
        ("codes", &i.codes),
        ("replays", &i.replays),
    ] {
        if let Some(v) = ss(v) {
            item.insert(attr.into(), v);
        }
    }
    if let Some(r) = &i.report {
        item.insert("reportJson".into(), s(&r.json));
        item.insert("reportMarkdown".into(), s(&r.markdown));
        if let Some(html) = &r.html {
            item.insert("reportHtml".into(), s(html));
        }
    }
    for (attr, v) in [
        ("resolvedAt", i.resolved_at),
        ("resolvedCutoff", i.resolved_cutoff),
        ("expiresAt", i.expires_at),
        ("acknowledgedAt", i.acknowledged_at),
        ("silencedUntil", i.silenced_until),
    ] {
        if let Some(v) = v {
            item.insert(attr.into(), n(v));
        }
    }
    if i.resolved_at.is_some() {
        let by = if i.resolved_by_hand {
            "hand"
        } else {
            "quiet period"
        };
        item.insert("resolvedBy".into(), s(by));
    }
    item
}

/// The attributes of an item, read by type.
struct Attrs<'a>(&'a Item);

impl Attrs<'_> {
    fn text(&self, name: &str) -> Result<String, String> {
        match self.0.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            Some(_) => Err(format!("{name} is not a string")),
            None => Err(format!("{name} is missing")),
        }
    }

    fn number(&self, name: &str) -> Result<Option<i64>, String> {
        match self.0.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{name} is not an integer")),
            Some(_) => Err(format!("{name} is not a number")),
            None => Ok(None),
        }
    }

    fn required(&self, name: &str) -> Result<i64, String> {
        self.number(name)?
            .ok_or_else(|| format!("{name} is missing"))
    }

    fn count(&self, name: &str) -> Result<u64, String> {
        u64::try_from(self.required(name)?).map_err(|_| format!("{name} is negative"))
    }

    fn set(&self, name: &str) -> Result<BTreeSet<String>, String> {
        match self.0.get(name) {
            Some(AttributeValue::Ss(v)) => Ok(v.iter().cloned().collect()),
            None => Ok(Default::default()),
            Some(_) => Err(format!("{name} is not a string set")),
        }
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, String> {
        match self.0.get(name) {
            Some(AttributeValue::L(v)) => {
                Ok(v.iter().filter_map(|e| e.as_s().ok().cloned()).collect())
            }
            None => Ok(Vec::new()),
            Some(_) => Err(format!("{name} is not a list")),
        }
    }

    fn outbox(&self, name: &str) -> Result<Vec<Pending>, String> {
        let Some(AttributeValue::L(entries)) = self.0.get(name) else {
            return match self.0.get(name) {
                None => Ok(Vec::new()),
                Some(_) => Err(format!("{name} is not a list")),
            };
        };
        entries
            .iter()
            .map(|e| {
                let e = e.as_m().map_err(|_| format!("{name} holds a non-map"))?;
                let a = Attrs(e);
                let transition = a.text("transition")?;
                let flag = |f: &str| matches!(e.get(f), Some(AttributeValue::Bool(true)));
                Ok(Pending {
                    seq: a.count("seq")?,
                    transition: Transition::parse(&transition)
                        .ok_or_else(|| format!("{name}: transition {transition:?}"))?,
                    episode: a.count("episode")?,
                    at: a.required("at")?,
                    since_last: a.count("sinceLast")?,
                    by_hand: flag("byHand"),
                    rewritten: flag("rewritten"),
                })
            })
            .collect()
    }

    fn minutes(&self, name: &str) -> Result<BTreeMap<i64, u64>, String> {
        match self.0.get(name) {
            Some(AttributeValue::M(v)) => v
                .iter()
                .map(|(m, c)| {
                    let minute = m.parse().map_err(|_| format!("{name} key {m:?}"))?;
                    let count = c
                        .as_n()
                        .ok()
                        .and_then(|c| c.parse().ok())
                        .ok_or_else(|| format!("{name}.{m} is not a count"))?;
                    Ok((minute, count))
                })
                .collect(),
            None => Ok(Default::default()),
            Some(_) => Err(format!("{name} is not a map")),
        }
    }
}

/// An item as this version reads it, or what is wrong with it.
fn parse(item: &Item) -> Result<IncidentItem, String> {
    let a = Attrs(item);
    let state = match a.text("state")?.as_str() {
        "open" => State::Open,
        "resolved" => State::Resolved,
        other => return Err(format!("state {other:?} is neither open nor resolved")),
    };
    let report = match (a.text("reportJson"), a.text("reportMarkdown")) {
        (Ok(json), Ok(markdown)) => Some(ReportRef {
            json,
            markdown,
            html: a.text("reportHtml").ok(),
        }),
        _ => None,
    };
    Ok(IncidentItem {
        key: a.text("incidentKey")?,
        state,
        category: a.text("category")?,
        target_arn: a.text("targetArn").ok(),
        first_seen: a.required("firstSeen")?,
        last_seen: a.required("lastSeen")?,
        last_counted: a.required("lastCounted")?,
        count: a.count("count")?,
        announced_count: a.count("announcedCount")?,
        rules: a.set("rules")?,
        codes: a.set("codes")?,
        sample_errors: a.strings("sampleErrors")?,
        conversations: a.count("conversations").unwrap_or(0),
        per_minute: a.minutes("perMinute")?,
        per_hour: a.minutes("perHour")?,
        peak_per_minute: a.count("peakPerMinute").unwrap_or(0),
        report,
        seq: a.count("seq")?,
        episode: a.count("episode")?,
        announced_seq: a.count("announcedSeq")?,
        outbox: a.outbox("outbox")?,
        last_announced: a.required("lastAnnounced")?,
        resolved_at: a.number("resolvedAt")?,
        resolved_cutoff: a.number("resolvedCutoff")?,
        resolved_by_hand: a.text("resolvedBy").ok().as_deref() == Some("hand"),
        expires_at: a.number("expiresAt")?,
        acknowledged_at: a.number("acknowledgedAt")?,
        silenced_until: a.number("silencedUntil")?,
        rev: a.count("rev")?,
        replayed: a.count("replayed").unwrap_or(0),
        replays: a.set("replays")?,
    })
}

fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(
    action: &str,
    table: &str,
    e: SdkError<E>,
) -> TableError {
    TableError::Failed(format!(
        "{} (table {table})",
        crate::aws_error::describe(&format!("dynamodb:{action}"), &e)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::{IncidentSettings, Observation, table};

    fn observation() -> Observation {
        Observation {
            key: "K".into(),
            category: "RATE_LIMIT_EXCEEDED".into(),
            target_arn: Some("arn:t".into()),
            first_seen: 1_000,
            last_seen: 61_000,
            count: 3,
            rules: ["arn:r".to_owned()].into(),
            codes: ["THROTTLING".to_owned()].into(),
            sample_errors: vec!["slow down".into()],
            conversations: 1,
            per_minute: [(0, 2), (1, 1)].into(),
            report: Some(ReportRef {
                json: "s3://b/r.json".into(),
                markdown: "s3://b/r.md".into(),
                html: Some("s3://b/r.html".into()),
            }),
            replayed: 2,
            replays: ["dlq-recover-r".to_owned()].into(),
        }
    }

    #[test]
    fn an_item_written_whole_reads_back_the_same() {
        let settings = IncidentSettings::default();
        let (opened, _) = table::count_in(None, &observation(), 5, &settings);
        assert_eq!(parse(&to_item(&opened)).unwrap(), opened);
        let mut resolved = table::resolve(&opened, 10_000_000, &settings, true).unwrap();
        resolved.acknowledged_at = Some(7);
        resolved.silenced_until = Some(8);
        assert_eq!(parse(&to_item(&resolved)).unwrap(), resolved);
        assert_eq!(to_item(&resolved)["openState"], s("unannounced"));
        let done = table::mark_announced(&resolved, &[1, 2]);
        assert!(!to_item(&done).contains_key("openState"));
    }

    #[test]
    fn an_item_of_another_shape_is_unreadable_and_a_newer_one_is_named() {
        let (item, _) = table::count_in(None, &observation(), 5, &IncidentSettings::default());
        let mut edited = to_item(&item);
        edited.insert("count".into(), s("many"));
        assert_eq!(parse(&edited).unwrap_err(), "count is not a number");
        assert_eq!(
            salvage(&edited),
            Salvage {
                state: Some(State::Open),
                seq: 1,
                episode: 1,
                rev: Some(0)
            }
        );
        let mut newer_item = to_item(&item);
        newer_item.insert("itemVersion".into(), n(ITEM_VERSION + 1));
        assert_eq!(newer(&newer_item), Some(ITEM_VERSION + 1));
        assert_eq!(newer(&to_item(&item)), None);
        let mut state = to_item(&item);
        state.insert("state".into(), s("acknowledged"));
        assert!(
            parse(&state)
                .unwrap_err()
                .contains("neither open nor resolved")
        );
    }
}
