//! [`IncidentTable`] in DynamoDB: each [`Write`] is one conditional `UpdateItem` (a
//! `Rewrite` one `PutItem`); the open incidents are found through the sparse index
//! `open-by-last-seen` (`openState`, `lastSeen`), which holds only open items. The item's
//! attributes are listed in docs/contract.md.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::table::{
    ITEM_VERSION, IncidentItem, IncidentTable, Observation, State, TableError, Write, Written,
};

/// The sparse index of open incidents by last failure.
pub const OPEN_INDEX: &str = "open-by-last-seen";

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

    async fn put_fresh(
        &self,
        key: &str,
        seen: &Observation,
        now: i64,
    ) -> Result<Written, TableError> {
        let item = super::table::fresh(key, seen, now, 1);
        self.count_call();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)))
            .send()
            .await
            .map_err(|e| failed("PutItem", &self.table, e))?;
        Ok(Written::Done(Box::new(item)))
    }

    async fn query_open(&self, before: Option<i64>) -> Result<Vec<IncidentItem>, TableError> {
        let mut condition = "openState = :open".to_owned();
        let mut values = HashMap::from([(":open".to_owned(), s("open"))]);
        if let Some(before) = before {
            condition.push_str(" AND lastSeen < :before");
            values.insert(":before".into(), n(before));
        }
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .key_condition_expression(&condition)
            .set_expression_attribute_values(Some(values))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            self.count_call();
            let page = page.map_err(|e| failed("Query", &self.table, e))?;
            found.extend(page.items().iter().filter_map(readable));
        }
        Ok(found)
    }
}

impl IncidentTable for DynamoTable {
    async fn write(&self, key: &str, write: &Write) -> Result<Written, TableError> {
        if let Write::Rewrite { seen, now } = write {
            return self.put_fresh(key, seen, *now).await;
        }
        let Some(update) = expression(write) else {
            return Err(TableError::Failed(format!(
                "no update expression for {write:?}"
            )));
        };
        self.count_call();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("incidentKey", s(key))
            .update_expression(update.update)
            .condition_expression(update.condition)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes().cloned().unwrap_or_default();
                parse(&item)
                    .map(|i| Written::Done(Box::new(i)))
                    .map_err(|why| TableError::Unreadable {
                        key: key.to_owned(),
                        why,
                    })
            }
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Written::Conflict),
            // An attribute of the wrong type or a missing map: the item is not one this
            // version wrote.
            Err(e) if e.code() == Some("ValidationException") => Err(TableError::Unreadable {
                key: key.to_owned(),
                why: e.message().unwrap_or("ValidationException").to_owned(),
            }),
            Err(e) => Err(failed("UpdateItem", &self.table, e)),
        }
    }

    async fn quiet(&self, before: i64) -> Result<Vec<IncidentItem>, TableError> {
        self.query_open(Some(before)).await
    }

    async fn list(&self, state: Option<State>) -> Result<Vec<IncidentItem>, TableError> {
        if state == Some(State::Open) {
            return self.query_open(None).await;
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
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// An item of a listing this version can read; one it cannot is named in the log.
fn readable(item: &Item) -> Option<IncidentItem> {
    match parse(item) {
        Ok(i) => Some(i),
        Err(why) => {
            let key = item.get("incidentKey").and_then(|k| k.as_s().ok());
            tracing::warn!(incident = ?key, %why, "incident item skipped: cannot be read");
            None
        }
    }
}

/// One `UpdateItem`'s expressions.
struct Update {
    update: String,
    condition: String,
    names: HashMap<String, String>,
    values: Item,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ss(v: &std::collections::BTreeSet<String>) -> Option<AttributeValue> {
    (!v.is_empty()).then(|| AttributeValue::Ss(v.iter().cloned().collect()))
}

/// Attribute names and values of one `UpdateItem`'s expressions.
struct Names {
    names: HashMap<String, String>,
    values: Item,
}

/// The expressions of `write`; `None` for a `Rewrite` (a `PutItem`). Only the names and
/// values the expressions use are passed (DynamoDB refuses the others).
fn expression(write: &Write) -> Option<Update> {
    // `state`, `count` and `rules` are reserved words in DynamoDB's expressions.
    let mut x = Names {
        names: HashMap::from([
            ("#state".to_owned(), "state".to_owned()),
            ("#count".to_owned(), "count".to_owned()),
            ("#rules".to_owned(), "rules".to_owned()),
        ]),
        values: HashMap::from([(":one".to_owned(), n(1))]),
    };
    let (update, condition) = match write {
        Write::Open { seen, now } => open_expression(&mut x, seen, *now),
        Write::Merge { seen, advance } => merge_expression(&mut x, seen, *advance),
        Write::MergeResolved { seen } => merge_resolved_expression(&mut x, seen),
        Write::ClaimUpdate {
            last_announced,
            now,
            peak,
            drop_minutes,
        } => claim_expression(&mut x, *last_announced, *now, *peak, drop_minutes),
        Write::Resolve {
            quiet_before,
            now,
            expires_at,
        } => resolve_expression(&mut x, *quiet_before, *now, *expires_at),
        Write::Rewrite { .. } => return None,
    };
    let Names {
        mut names,
        mut values,
    } = x;
    let used: std::collections::HashSet<&str> = update
        .split(|c: char| !(c.is_alphanumeric() || c == ':' || c == '#'))
        .chain(condition.split(|c: char| !(c.is_alphanumeric() || c == ':' || c == '#')))
        .collect();
    names.retain(|k, _| used.contains(k.as_str()));
    values.retain(|k, _| used.contains(k.as_str()));
    Some(Update {
        update,
        condition,
        names,
        values,
    })
}

/// A new episode: when there is no item, or it is resolved and the batch is newer.
fn open_expression(x: &mut Names, seen: &Observation, now: i64) -> (String, String) {
    let values = &mut x.values;
    values.insert(":resolved".into(), s("resolved"));
    values.insert(":zero".into(), n(0));
    values.insert(":now".into(), n(now));
    let mut set = fresh_sets(seen, values);
    set.push("lastAnnounced = :now".into());
    set.push("seq = if_not_exists(seq, :zero) + :one".into());
    let mut remove = vec!["resolvedAt", "expiresAt"];
    if seen.target_arn.is_none() {
        remove.push("targetArn");
    }
    if seen.report.is_none() {
        remove.extend(["reportJson", "reportMarkdown"]);
    }
    for (attr, name, v) in [
        ("rules", "#rules", &seen.rules),
        ("codes", "codes", &seen.codes),
    ] {
        match ss(v) {
            Some(v) => {
                values.insert(format!(":{attr}"), v);
                set.push(format!("{name} = :{attr}"));
            }
            None => remove.push(name),
        }
    }
    (
        format!("SET {} REMOVE {}", set.join(", "), remove.join(", ")),
        "attribute_not_exists(incidentKey) OR (#state = :resolved AND lastSeen < :last)".to_owned(),
    )
}

/// Counts a batch into an open incident; with `advance`, only when it is not older.
fn merge_expression(x: &mut Names, seen: &Observation, advance: bool) -> (String, String) {
    let (names, values) = (&mut x.names, &mut x.values);
    values.insert(":open".into(), s("open"));
    let (mut set, add) = merge_parts(seen, names, values);
    set.push("firstSeen = if_not_exists(firstSeen, :first)".into());
    set.push("sampleErrors = if_not_exists(sampleErrors, :errors)".into());
    values.insert(":first".into(), n(seen.first_seen));
    values.insert(":errors".into(), strings(&seen.sample_errors));
    let mut condition = "#state = :open".to_owned();
    if advance {
        values.insert(":last".into(), n(seen.last_seen));
        set.push("lastSeen = :last".into());
        condition.push_str(" AND lastSeen <= :last");
    }
    if let Some((json, md)) = &seen.report {
        values.insert(":reportJson".into(), s(json));
        values.insert(":reportMarkdown".into(), s(md));
        set.push("reportJson = :reportJson, reportMarkdown = :reportMarkdown".into());
    }
    (
        format!("SET {} ADD {}", set.join(", "), add.join(", ")),
        condition,
    )
}

/// Counts a late batch into a resolved incident.
fn merge_resolved_expression(x: &mut Names, seen: &Observation) -> (String, String) {
    let (names, values) = (&mut x.names, &mut x.values);
    values.insert(":resolved".into(), s("resolved"));
    let (set, add) = merge_parts(seen, names, values);
    let set = match set.is_empty() {
        true => String::new(),
        false => format!("SET {} ", set.join(", ")),
    };
    (
        format!("{set}ADD {}", add.join(", ")),
        "#state = :resolved".to_owned(),
    )
}

/// Claims the `updated` announcement, folding the dropped minutes into the peak.
fn claim_expression(
    x: &mut Names,
    last_announced: i64,
    now: i64,
    peak: u64,
    drop_minutes: &[i64],
) -> (String, String) {
    let (names, values) = (&mut x.names, &mut x.values);
    values.insert(":open".into(), s("open"));
    values.insert(":seen".into(), n(last_announced));
    values.insert(":now".into(), n(now));
    values.insert(":peak".into(), n(peak));
    let mut update = "SET lastAnnounced = :now, announcedCount = #count, \
                      peakPerMinute = :peak, seq = seq + :one"
        .to_owned();
    let dropped: Vec<String> = drop_minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            names.insert(format!("#d{i}"), m.to_string());
            format!("perMinute.#d{i}")
        })
        .collect();
    if !dropped.is_empty() {
        update.push_str(&format!(" REMOVE {}", dropped.join(", ")));
    }
    (
        update,
        "#state = :open AND lastAnnounced = :seen".to_owned(),
    )
}

/// Resolves an open incident (quiet since before `quiet_before`, or any, by hand).
fn resolve_expression(
    x: &mut Names,
    quiet_before: Option<i64>,
    now: i64,
    expires_at: i64,
) -> (String, String) {
    let values = &mut x.values;
    values.insert(":open".into(), s("open"));
    values.insert(":resolved".into(), s("resolved"));
    values.insert(":now".into(), n(now));
    values.insert(":expires".into(), n(expires_at));
    let mut condition = "#state = :open".to_owned();
    if let Some(q) = quiet_before {
        values.insert(":quiet".into(), n(q));
        condition.push_str(" AND lastSeen < :quiet");
    }
    (
        "SET #state = :resolved, resolvedAt = :now, expiresAt = :expires, \
         lastAnnounced = :now, seq = seq + :one REMOVE openState"
            .to_owned(),
        condition,
    )
}

/// The `SET` clauses of a new episode (everything an observation holds but the sets).
fn fresh_sets(seen: &Observation, values: &mut Item) -> Vec<String> {
    values.insert(":open".into(), s("open"));
    values.insert(":category".into(), s(&seen.category));
    values.insert(":first".into(), n(seen.first_seen));
    values.insert(":last".into(), n(seen.last_seen));
    values.insert(":n".into(), n(seen.count));
    values.insert(":errors".into(), strings(&seen.sample_errors));
    values.insert(":conversations".into(), n(seen.conversations));
    values.insert(":perMinute".into(), minutes(&seen.per_minute));
    values.insert(":version".into(), n(ITEM_VERSION));
    let mut set: Vec<String> = [
        "#state = :open",
        "openState = :open",
        "category = :category",
        "firstSeen = :first",
        "lastSeen = :last",
        "#count = :n",
        "announcedCount = :n",
        "sampleErrors = :errors",
        "conversations = :conversations",
        "perMinute = :perMinute",
        "peakPerMinute = :zero",
        "itemVersion = :version",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Some(t) = &seen.target_arn {
        values.insert(":target".into(), s(t));
        set.push("targetArn = :target".into());
    }
    if let Some((json, md)) = &seen.report {
        values.insert(":reportJson".into(), s(json));
        values.insert(":reportMarkdown".into(), s(md));
        set.push("reportJson = :reportJson".into());
        set.push("reportMarkdown = :reportMarkdown".into());
    }
    set
}

/// The parts of counting an observation into an item: `SET` clauses for its minutes,
/// `ADD` clauses for its counts and sets.
fn merge_parts(
    seen: &Observation,
    names: &mut HashMap<String, String>,
    values: &mut Item,
) -> (Vec<String>, Vec<String>) {
    values.insert(":n".into(), n(seen.count));
    values.insert(":conversations".into(), n(seen.conversations));
    values.insert(":zero".into(), n(0));
    let mut add = vec![
        "#count :n".to_owned(),
        "conversations :conversations".to_owned(),
    ];
    for (attr, name, v) in [
        ("rules", "#rules", &seen.rules),
        ("codes", "codes", &seen.codes),
    ] {
        if let Some(v) = ss(v) {
            values.insert(format!(":{attr}"), v);
            add.push(format!("{name} :{attr}"));
        }
    }
    let set = seen
        .per_minute
        .iter()
        .enumerate()
        .map(|(i, (minute, count))| {
            names.insert(format!("#m{i}"), minute.to_string());
            values.insert(format!(":m{i}"), n(count));
            format!("perMinute.#m{i} = if_not_exists(perMinute.#m{i}, :zero) + :m{i}")
        })
        .collect();
    (set, add)
}

fn strings(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|e| s(e)).collect())
}

fn minutes(v: &std::collections::BTreeMap<i64, u64>) -> AttributeValue {
    AttributeValue::M(v.iter().map(|(m, c)| (m.to_string(), n(c))).collect())
}

/// The whole item, for `PutItem`.
fn to_item(i: &IncidentItem) -> Item {
    let mut item: Item = HashMap::from([
        ("incidentKey".to_owned(), s(&i.key)),
        ("state".to_owned(), s(i.state.as_str())),
        ("category".to_owned(), s(&i.category)),
        ("firstSeen".to_owned(), n(i.first_seen)),
        ("lastSeen".to_owned(), n(i.last_seen)),
        ("count".to_owned(), n(i.count)),
        ("announcedCount".to_owned(), n(i.announced_count)),
        ("sampleErrors".to_owned(), strings(&i.sample_errors)),
        ("conversations".to_owned(), n(i.conversations)),
        ("perMinute".to_owned(), minutes(&i.per_minute)),
        ("peakPerMinute".to_owned(), n(i.peak_per_minute)),
        ("seq".to_owned(), n(i.seq)),
        ("lastAnnounced".to_owned(), n(i.last_announced)),
        ("itemVersion".to_owned(), n(ITEM_VERSION)),
    ]);
    if i.state == State::Open {
        item.insert("openState".into(), s("open"));
    }
    if let Some(t) = &i.target_arn {
        item.insert("targetArn".into(), s(t));
    }
    for (attr, v) in [("rules", &i.rules), ("codes", &i.codes)] {
        if let Some(v) = ss(v) {
            item.insert(attr.into(), v);
        }
    }
    if let Some((json, md)) = &i.report {
        item.insert("reportJson".into(), s(json));
        item.insert("reportMarkdown".into(), s(md));
    }
    if let Some(t) = i.resolved_at {
        item.insert("resolvedAt".into(), n(t));
    }
    if let Some(t) = i.expires_at {
        item.insert("expiresAt".into(), n(t));
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

    fn set(&self, name: &str) -> Result<std::collections::BTreeSet<String>, String> {
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

    fn minutes(&self, name: &str) -> Result<std::collections::BTreeMap<i64, u64>, String> {
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
    if let Some(v) = a.number("itemVersion")?
        && v > ITEM_VERSION as i64
    {
        return Err(format!("itemVersion {v}: written by a newer version"));
    }
    let state = match a.text("state")?.as_str() {
        "open" => State::Open,
        "resolved" => State::Resolved,
        other => return Err(format!("state {other:?} is neither open nor resolved")),
    };
    let report = match (a.text("reportJson"), a.text("reportMarkdown")) {
        (Ok(j), Ok(m)) => Some((j, m)),
        _ => None,
    };
    Ok(IncidentItem {
        key: a.text("incidentKey")?,
        state,
        category: a.text("category")?,
        target_arn: a.text("targetArn").ok(),
        first_seen: a.required("firstSeen")?,
        last_seen: a.required("lastSeen")?,
        count: a.count("count")?,
        announced_count: a.count("announcedCount")?,
        rules: a.set("rules")?,
        codes: a.set("codes")?,
        sample_errors: a.strings("sampleErrors")?,
        conversations: a.count("conversations").unwrap_or(0),
        per_minute: a.minutes("perMinute")?,
        peak_per_minute: a.count("peakPerMinute").unwrap_or(0),
        report,
        seq: a.count("seq")?,
        last_announced: a.required("lastAnnounced")?,
        resolved_at: a.number("resolvedAt")?,
        expires_at: a.number("expiresAt")?,
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
            report: Some(("s3://b/r.json".into(), "s3://b/r.md".into())),
        }
    }

    /// The item a new episode of `observation()` makes.
    fn opened() -> IncidentItem {
        super::super::table::fresh("K", &observation(), 5, 1)
    }

    #[test]
    fn an_item_written_whole_reads_back_the_same() {
        let item = opened();
        assert_eq!(parse(&to_item(&item)).unwrap(), item);
    }

    #[test]
    fn an_item_of_another_shape_or_a_newer_version_is_named_unreadable() {
        let item = opened();
        let mut edited = to_item(&item);
        edited.insert("count".into(), s("many"));
        assert_eq!(parse(&edited).unwrap_err(), "count is not a number");
        let mut newer = to_item(&item);
        newer.insert("itemVersion".into(), n(ITEM_VERSION + 1));
        assert!(parse(&newer).unwrap_err().contains("newer version"));
        let mut state = to_item(&item);
        state.insert("state".into(), s("acknowledged"));
        assert!(
            parse(&state)
                .unwrap_err()
                .contains("neither open nor resolved")
        );
    }

    #[test]
    fn every_name_and_value_an_expression_uses_is_given_and_no_other() {
        let seen = observation();
        for write in [
            Write::Open {
                seen: seen.clone(),
                now: 1,
            },
            Write::Merge {
                seen: seen.clone(),
                advance: true,
            },
            Write::Merge {
                seen: seen.clone(),
                advance: false,
            },
            Write::MergeResolved { seen: seen.clone() },
            Write::ClaimUpdate {
                last_announced: 1,
                now: 2,
                peak: 3,
                drop_minutes: vec![0],
            },
            Write::Resolve {
                quiet_before: Some(1),
                now: 2,
                expires_at: 3,
            },
        ] {
            let u = expression(&write).unwrap();
            let text = format!("{} {}", u.update, u.condition);
            let tokens: std::collections::HashSet<&str> = text
                .split(|c: char| !(c.is_alphanumeric() || c == ':' || c == '#'))
                .collect();
            for token in &tokens {
                if token.starts_with(':') {
                    assert!(u.values.contains_key(*token), "{write:?}: {token}");
                }
                if token.starts_with('#') {
                    assert!(u.names.contains_key(*token), "{write:?}: {token}");
                }
            }
            // Attribute names DynamoDB reserves go through `#` names (it refuses them bare).
            for reserved in ["state", "count", "rules"] {
                assert!(!tokens.contains(reserved), "{write:?}: bare {reserved}");
            }
            // DynamoDB refuses names and values an expression does not use.
            for given in u.names.keys().chain(u.values.keys()) {
                assert!(tokens.contains(given.as_str()), "{write:?}: unused {given}");
            }
        }
    }
}
