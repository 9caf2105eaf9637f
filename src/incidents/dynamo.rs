//! [`IncidentTable`] in DynamoDB: an item is read with `GetItem` (consistent) and written
//! whole with one conditional `PutItem` whose condition is fixed in size (the item's `rev`
//! and `itemVersion`), however wide the batch or long the incident. The state index
//! `open-by-last-seen` (`openState`, `lastSeen`) holds the open incidents (`openState`
//! `open`) and the resolved ones whose outbox is not empty (`unannounced`). The item's
//! attributes are listed in docs/contract.md.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::BoxFuture;

use super::Transition;
use super::table::{
    AttrType, Expect, ITEM_VERSION, IncidentItem, IncidentTable, ItemError, Pending, ReportRef,
    Salvage, State, Stored, TableCall, TableError,
};
use crate::aws_error::AwsError;

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

    /// The SDK's error of `action` on this table, its code kept.
    fn failed<E>(&self, action: &str, e: aws_sdk_dynamodb::error::SdkError<E>) -> TableError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        TableCall::new(
            &self.table,
            AwsError::from_sdk(&format!("dynamodb:{action}"), e),
        )
        .into()
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
                .map_err(|e| self.failed("GetItem", e))?;
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
            let e = match result {
                Ok(_) => return Ok(true),
                Err(e) => AwsError::from_sdk("dynamodb:PutItem", e),
            };
            match e.code() {
                Some("ConditionalCheckFailedException") => Ok(false),
                // Never a reason to rewrite anything: the request is wrong, and is named.
                Some("ValidationException") => Err(TableError::Invalid {
                    key: item.key.clone(),
                    why: e.message().unwrap_or("ValidationException").to_owned(),
                }),
                _ => Err(TableCall::new(&self.table, e).into()),
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
                let page = page.map_err(|e| self.failed("Query", e))?;
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
                let page = page.map_err(|e| self.failed("Scan", e))?;
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
        Some(version) => ItemError::Newer { version },
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
    let count = |name: &'static str| a.count(name).ok();
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
    if !i.http_statuses.is_empty() {
        let statuses = i.http_statuses.iter().map(u16::to_string).collect();
        item.insert("httpStatuses".into(), AttributeValue::Ns(statuses));
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
    fn text(&self, attr: &'static str) -> Result<String, ItemError> {
        match self.0.get(attr) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            Some(_) => Err(wrong(attr, AttrType::String)),
            None => Err(ItemError::Missing { attr }),
        }
    }

    fn number(&self, attr: &'static str) -> Result<Option<i64>, ItemError> {
        match self.0.get(attr) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| wrong(attr, AttrType::Integer)),
            Some(_) => Err(wrong(attr, AttrType::Number)),
            None => Ok(None),
        }
    }

    fn required(&self, attr: &'static str) -> Result<i64, ItemError> {
        self.number(attr)?.ok_or(ItemError::Missing { attr })
    }

    fn count(&self, attr: &'static str) -> Result<u64, ItemError> {
        u64::try_from(self.required(attr)?).map_err(|_| ItemError::Negative { attr })
    }

    fn set(&self, attr: &'static str) -> Result<BTreeSet<String>, ItemError> {
        match self.0.get(attr) {
            Some(AttributeValue::Ss(v)) => Ok(v.iter().cloned().collect()),
            None => Ok(Default::default()),
            Some(_) => Err(wrong(attr, AttrType::StringSet)),
        }
    }

    /// A number set of HTTP statuses (an entry that is not one is passed over, as
    /// [`Attrs::strings`] passes over a non-string); `None` when the item has none.
    fn statuses(&self, attr: &'static str) -> Result<Option<BTreeSet<u16>>, ItemError> {
        match self.0.get(attr) {
            Some(AttributeValue::Ns(v)) => {
                Ok(Some(v.iter().filter_map(|n| n.parse().ok()).collect()))
            }
            None => Ok(None),
            Some(_) => Err(wrong(attr, AttrType::NumberSet)),
        }
    }

    fn strings(&self, attr: &'static str) -> Result<Vec<String>, ItemError> {
        match self.0.get(attr) {
            Some(AttributeValue::L(v)) => {
                Ok(v.iter().filter_map(|e| e.as_s().ok().cloned()).collect())
            }
            None => Ok(Vec::new()),
            Some(_) => Err(wrong(attr, AttrType::List)),
        }
    }

    fn outbox(&self, attr: &'static str) -> Result<Vec<Pending>, ItemError> {
        let entries = match self.0.get(attr) {
            Some(AttributeValue::L(entries)) => entries,
            None => return Ok(Vec::new()),
            Some(_) => return Err(wrong(attr, AttrType::List)),
        };
        entries
            .iter()
            .map(|e| {
                let e = e.as_m().map_err(|_| ItemError::NotAMapEntry { attr })?;
                let a = Attrs(e);
                let transition = a.text("transition")?;
                let flag = |f: &str| matches!(e.get(f), Some(AttributeValue::Bool(true)));
                Ok(Pending {
                    seq: a.count("seq")?,
                    transition: Transition::parse(&transition).ok_or(
                        ItemError::UnknownTransition {
                            attr,
                            value: transition,
                        },
                    )?,
                    episode: a.count("episode")?,
                    at: a.required("at")?,
                    since_last: a.count("sinceLast")?,
                    by_hand: flag("byHand"),
                    rewritten: flag("rewritten"),
                })
            })
            .collect()
    }

    fn minutes(&self, attr: &'static str) -> Result<BTreeMap<i64, u64>, ItemError> {
        match self.0.get(attr) {
            Some(AttributeValue::M(v)) => v
                .iter()
                .map(|(m, c)| {
                    let minute = m.parse().map_err(|_| ItemError::BadKey {
                        attr,
                        key: m.clone(),
                    })?;
                    let count = c.as_n().ok().and_then(|c| c.parse().ok()).ok_or_else(|| {
                        ItemError::BadCount {
                            attr,
                            key: m.clone(),
                        }
                    })?;
                    Ok((minute, count))
                })
                .collect(),
            None => Ok(Default::default()),
            Some(_) => Err(wrong(attr, AttrType::Map)),
        }
    }
}

fn wrong(attr: &'static str, expected: AttrType) -> ItemError {
    ItemError::WrongType { attr, expected }
}

/// An item as this version reads it, or what is wrong with it.
fn parse(item: &Item) -> Result<IncidentItem, ItemError> {
    let a = Attrs(item);
    let state = match a.text("state")? {
        s if s == "open" => State::Open,
        s if s == "resolved" => State::Resolved,
        value => return Err(ItemError::UnknownState { value }),
    };
    let report = match (a.text("reportJson"), a.text("reportMarkdown")) {
        (Ok(json), Ok(markdown)) => Some(ReportRef {
            json,
            markdown,
            html: a.text("reportHtml").ok(),
        }),
        _ => None,
    };
    let sample_errors = a.strings("sampleErrors")?;
    // An item written before the statuses were kept: those its sampled messages state, read
    // by the classifier's own parser (the statuses were read from the same messages).
    let http_statuses = a.statuses("httpStatuses")?.unwrap_or_else(|| {
        (sample_errors.iter())
            .filter_map(|e| crate::classify::find_http_status(e).map(|s| s.code))
            .collect()
    });
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
        sample_errors,
        http_statuses,
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
            http_statuses: [429, 503].into(),
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
        assert_eq!(
            to_item(&opened)["httpStatuses"],
            AttributeValue::Ns(vec!["429".into(), "503".into()])
        );
        // Written by a version that kept no statuses: those its sampled messages state.
        let mut older = to_item(&opened);
        older.remove("httpStatuses");
        older.insert(
            "sampleErrors".into(),
            strings(&["Unable to invoke ApiDestination endpoint: The endpoint responded with a 429 Too Many Requests.".to_owned(), "waited 4290 ms".to_owned()]),
        );
        assert_eq!(parse(&older).unwrap().http_statuses, BTreeSet::from([429]));
        older.insert(
            "sampleErrors".into(),
            strings(&["connection reset".to_owned()]),
        );
        assert_eq!(parse(&older).unwrap().http_statuses, BTreeSet::new());
        // A number that is not a status is passed over, not the item.
        let mut odd = to_item(&opened);
        odd.insert(
            "httpStatuses".into(),
            AttributeValue::Ns(vec!["429".into(), "4.5".into()]),
        );
        assert_eq!(parse(&odd).unwrap().http_statuses, BTreeSet::from([429]));
        let mut resolved = table::resolve(&opened, 10_000_000, &settings, true).unwrap();
        resolved.acknowledged_at = Some(7);
        resolved.silenced_until = Some(8);
        assert_eq!(parse(&to_item(&resolved)).unwrap(), resolved);
        assert_eq!(to_item(&resolved)["openState"], s("unannounced"));
        let done = table::mark_announced(&resolved, &[1, 2]);
        assert!(!to_item(&done).contains_key("openState"));
    }

    /// The statuses are bounded, but a 429 is kept past the bound: it tells the endpoint's
    /// own rate limit.
    #[test]
    fn a_429_is_kept_past_the_bound_of_statuses() {
        let mut seen = observation();
        seen.http_statuses = (400..424).chain([429]).collect();
        let (item, _) = table::count_in(None, &seen, 5, &IncidentSettings::default());
        assert_eq!(item.http_statuses.len(), 21, "{:?}", item.http_statuses);
        assert!(item.http_statuses.contains(&429));
        assert!(!item.http_statuses.contains(&423));
    }

    #[test]
    fn an_item_of_another_shape_is_unreadable_and_a_newer_one_is_named() {
        let (item, _) = table::count_in(None, &observation(), 5, &IncidentSettings::default());
        let mut edited = to_item(&item);
        edited.insert("count".into(), s("many"));
        let why = parse(&edited).unwrap_err();
        assert_eq!(
            why,
            ItemError::WrongType {
                attr: "count",
                expected: AttrType::Number
            }
        );
        assert_eq!(why.to_string(), "count is not a number");
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
        assert_eq!(
            parse(&state).unwrap_err(),
            ItemError::UnknownState {
                value: "acknowledged".into()
            }
        );
    }

    /// Each way an item can be unreadable reads as the line the log, `Stored::Unreadable`
    /// and `incidents` show.
    #[test]
    fn what_is_wrong_with_an_item_reads_as_before() {
        let (item, _) = table::count_in(None, &observation(), 5, &IncidentSettings::default());
        let entry = |pairs: &[(&str, AttributeValue)]| {
            let mut e: Item = match &to_item(&item)["outbox"] {
                AttributeValue::L(l) => l[0].as_m().unwrap().clone(),
                other => panic!("{other:?}"),
            };
            for (k, v) in pairs {
                e.insert((*k).to_owned(), v.clone());
            }
            AttributeValue::L(vec![AttributeValue::M(e)])
        };
        let no_seq = {
            let AttributeValue::L(l) = entry(&[]) else {
                unreachable!()
            };
            let mut e = l[0].as_m().unwrap().clone();
            e.remove("seq");
            AttributeValue::L(vec![AttributeValue::M(e)])
        };
        let map =
            |k: &str, v: AttributeValue| AttributeValue::M(HashMap::from([(k.to_owned(), v)]));
        let cases: Vec<(&str, Option<AttributeValue>, &str)> = vec![
            ("count", Some(s("many")), "count is not a number"),
            ("count", Some(n("1.5")), "count is not an integer"),
            ("count", Some(n(-1)), "count is negative"),
            ("lastSeen", None, "lastSeen is missing"),
            ("category", None, "category is missing"),
            ("category", Some(n(1)), "category is not a string"),
            ("rules", Some(s("r")), "rules is not a string set"),
            ("sampleErrors", Some(s("e")), "sampleErrors is not a list"),
            ("outbox", Some(s("o")), "outbox is not a list"),
            (
                "outbox",
                Some(AttributeValue::L(vec![s("o")])),
                "outbox holds a non-map",
            ),
            (
                "outbox",
                Some(entry(&[("transition", s("paused"))])),
                "outbox: transition \"paused\"",
            ),
            ("outbox", Some(no_seq), "seq is missing"),
            ("perMinute", Some(s("p")), "perMinute is not a map"),
            ("perMinute", Some(map("x", n(1))), "perMinute key \"x\""),
            (
                "perHour",
                Some(map("5", s("x"))),
                "perHour.5 is not a count",
            ),
        ];
        for (attr, value, said) in cases {
            let mut edited = to_item(&item);
            match value {
                Some(v) => edited.insert(attr.to_owned(), v),
                None => edited.remove(attr),
            };
            assert_eq!(parse(&edited).unwrap_err().to_string(), said, "{attr}");
        }
        assert_eq!(
            ItemError::Newer { version: 3 }.to_string(),
            "itemVersion 3: written by a newer version"
        );
    }
}
