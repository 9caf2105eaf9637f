//! [`RedriveJournal`] in the incident table (DynamoDB). Every expression is a few dozen
//! characters (DynamoDB refuses any over 4 KB). Calls per redriven event in the normal
//! case: two `UpdateItem`s (claim, record); the run's checkpoint (one `PutItem`) is shared
//! by [`super::engine::CHECKPOINT_EVERY`] events.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::BoxFuture;

use crate::aws_error::{AwsError, within};

use super::journal::{
    EventProgress, JournalError, Recorded, RedriveJournal, Run, target_lease_key,
};

/// The active set's key.
const ACTIVE: &str = "redrive#active";
/// How long an event's journal outlives its last write (DynamoDB TTL, `expiresAt`).
const KEEP_FOR: chrono::Duration = chrono::Duration::days(30);
/// The most one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The journal in the incident table `table`.
#[derive(Debug)]
pub(crate) struct DynamoJournal {
    client: aws_sdk_dynamodb::Client,
    table: String,
    calls: AtomicU64,
}

impl DynamoJournal {
    /// The journal in `table` through `client`.
    pub(crate) fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoJournal {
        DynamoJournal {
            client,
            table: table.into(),
            calls: AtomicU64::new(0),
        }
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// The item at `key`, read consistently (one counted `GetItem`).
    async fn get(&self, key: &str) -> Result<Option<Item>, JournalError> {
        self.count();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("incidentKey", s(key))
            .consistent_read(true)
            .send();
        let out = within("GetItem", CALL_TIMEOUT, out).await?;
        Ok(out.item)
    }
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn expires(now: i64) -> AttributeValue {
    n(now / 1000 + KEEP_FOR.num_seconds())
}

/// A conditional write's answer: `true` written, `false` refused because its condition
/// did not hold.
fn written<T>(answer: Result<T, AwsError>) -> Result<bool, JournalError> {
    match answer {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl RedriveJournal for DynamoJournal {
    fn run<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Option<Run>, JournalError>> {
        Box::pin(async move {
            let key = Run::key(incident);
            let Some(item) = self.get(&key).await? else {
                return Ok(None);
            };
            let text = item.get("run").and_then(|v| v.as_s().ok());
            let mut run: Run =
                text.and_then(|t| serde_json::from_str(t).ok())
                    .ok_or_else(|| JournalError::Unreadable {
                        key: key.clone(),
                        why: "no readable `run` attribute".to_owned(),
                    })?;
            run.rev = number(&item, "rev") as u64;
            Ok(Some(run))
        })
    }

    fn put_run<'a>(
        &'a self,
        run: &'a Run,
        expect: Option<u64>,
    ) -> BoxFuture<'a, Result<bool, JournalError>> {
        Box::pin(async move {
            self.count();
            let text = serde_json::to_string(run).map_err(JournalError::Serialize)?;
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("incidentKey", s(Run::key(&run.incident)))
                .item("run", s(text))
                .item("state", s(run.state().as_str()))
                .item("rev", n(run.rev))
                .item("expiresAt", expires(run.started_at.max(run.lease_until)));
            put = match expect {
                None => put.condition_expression("attribute_not_exists(incidentKey)"),
                Some(rev) => put
                    .condition_expression("#rev = :rev")
                    .expression_attribute_names("#rev", "rev")
                    .expression_attribute_values(":rev", n(rev)),
            };
            written(within("PutItem", CALL_TIMEOUT, put.send()).await)
        })
    }

    fn active(&self) -> BoxFuture<'_, Result<BTreeSet<String>, JournalError>> {
        Box::pin(async move {
            Ok(self
                .get(ACTIVE)
                .await?
                .as_ref()
                .and_then(|i| i.get("runs"))
                .and_then(|v| v.as_ss().ok())
                .map(|ss| ss.iter().cloned().collect())
                .unwrap_or_default())
        })
    }

    fn set_active<'a>(
        &'a self,
        incident: &'a str,
        active: bool,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.count();
            let verb = if active { "ADD" } else { "DELETE" };
            within(
                "UpdateItem",
                CALL_TIMEOUT,
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("incidentKey", s(ACTIVE))
                    .update_expression(format!("{verb} runs :k"))
                    .expression_attribute_values(
                        ":k",
                        AttributeValue::Ss(vec![incident.to_owned()]),
                    )
                    .send(),
            )
            .await?;
            Ok(())
        })
    }

    fn claim<'a>(
        &'a self,
        key: &'a str,
        attempt: u32,
        now: i64,
        lease_until: i64,
    ) -> BoxFuture<'a, Result<bool, JournalError>> {
        Box::pin(async move {
            self.count();
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("incidentKey", s(key))
                .update_expression("SET attempts = :n, leaseUntil = :lease, expiresAt = :exp")
                .expression_attribute_values(":n", n(attempt))
                .expression_attribute_values(":lease", n(lease_until))
                .expression_attribute_values(":exp", expires(now));
            update = if attempt <= 1 {
                update.condition_expression("attribute_not_exists(attempts)")
            } else {
                update
                    .condition_expression(
                        "attempts = :prev AND attribute_not_exists(sentAt) AND attribute_not_exists(tooOld) AND leaseUntil < :now",
                    )
                    .expression_attribute_values(":prev", n(attempt - 1))
                    .expression_attribute_values(":now", n(now))
            };
            written(within("UpdateItem", CALL_TIMEOUT, update.send()).await)
        })
    }

    fn entry<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<EventProgress>, JournalError>> {
        Box::pin(async move {
            Ok(self.get(key).await?.as_ref().map(|i| EventProgress {
                attempts: number(i, "attempts") as u32,
                sent: i.contains_key("sentAt"),
                too_old: i.contains_key("tooOld"),
                lease_until: number(i, "leaseUntil"),
            }))
        })
    }

    fn record<'a>(
        &'a self,
        key: &'a str,
        attempt: u32,
        result: Recorded,
        now: i64,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.count();
            let (expression, value) = match result {
                Recorded::Sent => ("SET sentAt = :v, leaseUntil = :zero", n(now)),
                Recorded::TooOld => ("SET tooOld = :v, leaseUntil = :zero", n(now)),
                Recorded::Failed(why) => (
                    "SET lastError = :v, leaseUntil = :zero",
                    s(crate::text::truncate(&why, 300)),
                ),
            };
            let done = within(
                "UpdateItem",
                CALL_TIMEOUT,
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("incidentKey", s(key))
                    .update_expression(expression)
                    .condition_expression("attempts = :n")
                    .expression_attribute_values(":n", n(attempt))
                    .expression_attribute_values(":v", value)
                    .expression_attribute_values(":zero", n(0))
                    .send(),
            )
            .await;
            // Refused: a later attempt was claimed meanwhile, this one's result is history.
            written(done).map(|_| ())
        })
    }

    fn lease_target<'a>(
        &'a self,
        target_arn: &'a str,
        holder: &'a str,
        now: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<bool, JournalError>> {
        Box::pin(async move {
            self.count();
            let done = within(
                "UpdateItem",
                CALL_TIMEOUT,
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("incidentKey", s(target_lease_key(target_arn)))
                    .update_expression("SET holder = :h, leaseUntil = :u, expiresAt = :exp")
                    .condition_expression(
                        "attribute_not_exists(leaseUntil) OR leaseUntil < :now OR holder = :h",
                    )
                    .expression_attribute_values(":h", s(holder))
                    .expression_attribute_values(":u", n(until))
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":exp", expires(now))
                    .send(),
            )
            .await;
            written(done)
        })
    }

    fn release_target<'a>(
        &'a self,
        target_arn: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.count();
            let done = within(
                "UpdateItem",
                CALL_TIMEOUT,
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("incidentKey", s(target_lease_key(target_arn)))
                    .update_expression("SET leaseUntil = :zero")
                    .condition_expression("holder = :h")
                    .expression_attribute_values(":h", s(holder))
                    .expression_attribute_values(":zero", n(0))
                    .send(),
            )
            .await;
            // Refused: the lease is not this holder's (any more).
            written(done).map(|_| ())
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}
