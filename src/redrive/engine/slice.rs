//! One slice: the running runs worked until the invocation's deadline less a margin.
//! Only the worker holding a run's lease works it; its cursor and counts are checkpointed
//! every [`CHECKPOINT_EVERY`] events, and each event's journal decides, whatever the
//! checkpoint says, whether it may be sent.

use super::*;

/// A run being worked, with what is not written yet.
struct Working {
    run: Run,
    records: Vec<Candidate>,
    in_a_row: u32,
    last_failure: String,
    since_checkpoint: u64,
    next_send: Instant,
}

impl Redriver {
    /// Works every running run, one after another, until `deadline` less
    /// [`SLICE_MARGIN`].
    pub(crate) async fn work(&self, deadline: Instant) -> Worked {
        let mut worked = Worked::default();
        let active = match self.journal.active().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "redrive: the active runs cannot be listed");
                worked.errors += 1;
                return worked;
            }
        };
        for incident in active {
            if Instant::now() + SLICE_MARGIN >= deadline {
                break;
            }
            if let Err(e) = self.work_one(&incident, deadline, &mut worked).await {
                tracing::warn!(incident = %incident, error = %e, "redrive slice");
                worked.errors += 1;
            }
        }
        worked
    }

    async fn work_one(
        &self,
        incident: &str,
        deadline: Instant,
        worked: &mut Worked,
    ) -> Result<(), RedriveError> {
        let Some(run) = self.journal.run(incident).await? else {
            self.journal.set_active(incident, false).await?;
            return Ok(());
        };
        let run = self.pay(run).await?;
        if run.unannounced.is_some() {
            return Ok(()); // the bus still refuses: nothing sent before it hears of it
        }
        let now = self.now();
        if let Some(why) = self.expired(&run, now) {
            self.set_state(run, RunState::Finished, Some(why), now)
                .await?;
            worked.finished += 1;
            return Ok(());
        }
        if run.state() != RunState::Running || run.lease_until > ms(now) {
            if run.state().ended() {
                self.journal.set_active(incident, false).await?;
            }
            return Ok(());
        }
        let Some(leased) = self.lease(run, deadline, now).await? else {
            return Ok(()); // another worker has it, or another run of its target
        };
        let target = leased.target_arn.clone();
        let done = self.slice(leased, deadline, worked).await;
        if let Err(e) = self.journal.release_target(&target, incident).await {
            tracing::warn!(incident = %incident, error = %e, "redrive: the target's lease is kept until it ends");
        }
        done
    }

    /// Takes `run` for this worker until the deadline and a minute for the sends in
    /// flight: the run's own lease, then its target's (one run at a time sends to a target,
    /// so two incidents of one API destination do not add their paces up). `None` when
    /// another worker holds either.
    async fn lease(
        &self,
        run: Run,
        deadline: Instant,
        now: DateTime<Utc>,
    ) -> Result<Option<Run>, RedriveError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut leased = run.clone();
        leased.lease_until = ms(now) + (left + EVENT_LEASE).as_millis() as i64;
        leased.rev = run.rev + 1;
        if !self.journal.put_run(&leased, Some(run.rev)).await? {
            return Ok(None);
        }
        if self
            .journal
            .lease_target(
                &leased.target_arn,
                &leased.incident,
                ms(now),
                leased.lease_until,
            )
            .await?
        {
            return Ok(Some(leased));
        }
        let mut back = leased;
        back.lease_until = 0;
        self.write(back).await?;
        Ok(None)
    }

    /// Works the leased `run` until the deadline, the end or a pause.
    async fn slice(
        &self,
        leased: Run,
        deadline: Instant,
        worked: &mut Worked,
    ) -> Result<(), RedriveError> {
        let records = self
            .payloads
            .select(&leased)
            .await
            .map_err(RedriveError::Payloads)?;
        let mut w = Working {
            run: leased,
            records,
            in_a_row: 0,
            last_failure: String::new(),
            since_checkpoint: 0,
            next_send: Instant::now(),
        };
        let sent_before = w.run.sent;
        let ended = self.turns(&mut w, deadline).await?;
        worked.sent += w.run.sent - sent_before;
        match ended {
            Some(RunState::Paused) => worked.paused += 1,
            Some(RunState::Finished | RunState::Cancelled) => worked.finished += 1,
            Some(RunState::Running) | None => {}
        }
        Ok(())
    }

    /// Why a paused run (waiting for the gate, stopped by the breaker or by a person) is
    /// given up: its incident's last failure is older than the maximum age, so every event
    /// it has left would be skipped as too old. A running run judges each event itself.
    fn expired(&self, run: &Run, now: DateTime<Utc>) -> Option<String> {
        let age = ms(now) - run.until;
        if run.state() != RunState::Paused || age <= self.policy.max_age.num_milliseconds() {
            return None;
        }
        let hours = self.policy.max_age.num_hours();
        let what = if run.waiting {
            "the target was not healthy again"
        } else {
            "the run was not resumed"
        };
        Some(format!(
            "gave up: {what} within REDRIVE_MAX_AGE_HOURS ({hours} h) of the incident's last \
             failure; every event left is too old to send (was: {})",
            run.why.as_deref().unwrap_or("paused")
        ))
    }

    /// Event after event until the deadline, the end or a pause; the state it ended in.
    async fn turns(
        &self,
        w: &mut Working,
        deadline: Instant,
    ) -> Result<Option<RunState>, RedriveError> {
        loop {
            if Instant::now() + SLICE_MARGIN >= deadline {
                w.run.lease_until = 0;
                return self.checkpoint(w).await.map(|_| None);
            }
            let pass_len = if w.run.pass <= 1 {
                w.records.len() as u64
            } else {
                w.run.retrying.len() as u64
            };
            if w.run.cursor >= pass_len {
                if !w.run.failing.is_empty() && w.run.pass < self.policy.attempts {
                    w.run.pass += 1;
                    w.run.cursor = 0;
                    w.run.retrying = std::mem::take(&mut w.run.failing);
                    continue;
                }
                w.run.lease_until = 0;
                if !self.checkpoint(w).await? {
                    return Ok(Some(w.run.state()));
                }
                self.set_state(w.run.clone(), RunState::Finished, None, self.now())
                    .await?;
                return Ok(Some(RunState::Finished));
            }
            let position = if w.run.pass <= 1 {
                w.run.cursor
            } else {
                w.run.retrying[w.run.cursor as usize]
            };
            let Some(record) = w.records.get(position as usize).cloned() else {
                // The selection shrank (a report gone): nothing to send there.
                w.run.cursor += 1;
                continue;
            };
            let turn = self.turn(w, &record).await?;
            w.run.cursor += 1;
            w.since_checkpoint += 1;
            if let Some(why) = self.count(w, turn, position) {
                w.run.lease_until = 0;
                if !self.checkpoint(w).await? {
                    return Ok(Some(w.run.state()));
                }
                self.set_state(w.run.clone(), RunState::Paused, Some(why), self.now())
                    .await?;
                return Ok(Some(RunState::Paused));
            }
            let progress_due =
                ms(self.now()) - w.run.announced_at >= PROGRESS_EVERY.num_milliseconds();
            if (w.since_checkpoint >= CHECKPOINT_EVERY || progress_due)
                && !self.checkpoint(w).await?
            {
                return Ok(Some(w.run.state()));
            }
        }
    }

    /// Counts `turn` into the run; why to pause, when the canary or the breaker says so.
    fn count(&self, w: &mut Working, turn: Turn, position: u64) -> Option<String> {
        match turn {
            Turn::Sent => {
                w.run.sent += 1;
                w.run.canary_ok = true;
                w.in_a_row = 0;
            }
            Turn::SentEarlier => w.run.sent += 1,
            Turn::TooOld => w.run.skipped_too_old += 1,
            Turn::Nothing => {}
            Turn::FailedEarlier { attempts } => {
                if w.run.pass == 1 {
                    w.run.failed_again += 1;
                }
                if attempts >= self.policy.attempts {
                    w.run.gave_up += 1;
                } else {
                    w.run.failing.push(position);
                }
            }
            Turn::Failed(why) => {
                w.run.failing.push(position);
                if w.run.pass == 1 {
                    w.run.failed_again += 1;
                }
                if w.run.pass >= self.policy.attempts {
                    w.run.gave_up += 1;
                }
                w.in_a_row += 1;
                if !w.run.canary_ok {
                    return Some(format!("the canary failed: {why}"));
                }
                w.last_failure = why;
                if w.in_a_row >= BREAKER {
                    return Some(format!(
                        "the target failed {} times in a row (last: {})",
                        w.in_a_row, w.last_failure
                    ));
                }
            }
        }
        None
    }

    /// Writes the run's cursor and counts; `false` when a person changed its state
    /// meanwhile (the counts are kept on their version, and the slice stops).
    async fn checkpoint(&self, w: &mut Working) -> Result<bool, RedriveError> {
        w.since_checkpoint = 0;
        let now = ms(self.now());
        let progress = now - w.run.announced_at >= PROGRESS_EVERY.num_milliseconds();
        if progress {
            w.run.announced_at = now;
        }
        let expect = w.run.rev;
        w.run.rev += 1;
        if self.journal.put_run(&w.run, Some(expect)).await? {
            if progress {
                // A progress event the bus refuses is not owed: the next comes in its time.
                self.announce(Phase::Progress, &w.run).await;
            }
            return Ok(true);
        }
        let fresh = self.journal.run(&w.run.incident).await?.ok_or_else(|| {
            RedriveError::Refused(format!("the redrive of {} disappeared", w.run.incident))
        })?;
        let mut merged = w.run.clone();
        merged.state = fresh.state;
        merged.why = fresh.why.clone();
        merged.held = fresh.held;
        merged.paused_at = fresh.paused_at;
        merged.ended_at = fresh.ended_at;
        merged.lease_until = 0;
        merged.rev = fresh.rev + 1;
        self.journal.put_run(&merged, Some(fresh.rev)).await?;
        w.run = merged;
        Ok(false)
    }

    /// One event: claimed, read, judged by age, planned, paced, sent, recorded.
    async fn turn(&self, w: &mut Working, c: &Candidate) -> Result<Turn, RedriveError> {
        let key = event_key(&w.run.target_arn, id_of(c));
        let pass = w.run.pass;
        let now = ms(self.now());
        let lease = now + EVENT_LEASE.as_millis() as i64;
        if !self.journal.claim(&key, pass, now, lease).await? {
            return self.recount(&key, pass).await;
        }
        let (recorded, turn) = match self.attempt(w, c).await {
            Ok(()) => (Recorded::Sent, Turn::Sent),
            Err(Turn::TooOld) => (Recorded::TooOld, Turn::TooOld),
            Err(Turn::Failed(why)) => (Recorded::Failed(why.clone()), Turn::Failed(why)),
            Err(other) => return Ok(other),
        };
        self.journal
            .record(&key, pass, recorded, ms(self.now()))
            .await?;
        Ok(turn)
    }

    /// An event claimed by another (or before a crash): what its journal says of `pass`.
    async fn recount(&self, key: &str, pass: u32) -> Result<Turn, RedriveError> {
        let Some(e) = self.journal.entry(key).await? else {
            return Ok(Turn::Nothing);
        };
        // Pass 1 of a run counts every event of its window once, whatever an earlier run
        // of the incident did with it; a later pass counts what its own attempt did.
        Ok(match (e.sent, e.too_old) {
            (true, _) if e.attempts == pass || pass == 1 => Turn::SentEarlier,
            (_, true) if pass == 1 => Turn::TooOld,
            (false, false) if e.attempts == pass || (pass == 1 && e.attempts > 1) => {
                Turn::FailedEarlier {
                    attempts: e.attempts,
                }
            }
            _ => Turn::Nothing,
        })
    }

    /// The attempt itself: `Ok` when delivered.
    async fn attempt(&self, w: &mut Working, c: &Candidate) -> Result<(), Turn> {
        let payload = self
            .payloads
            .read(c)
            .await
            .map_err(|e| Turn::Failed(format!("payload unreadable: {e}")))?;
        let now = self.now();
        if event_time(&payload).is_some_and(|t| now - t > self.policy.max_age) {
            return Err(Turn::TooOld);
        }
        let delivery = self
            .deliver
            .plan(c, payload)
            .await
            .map_err(|e| Turn::Failed(format!("cannot be planned: {e}")))?;
        let delivery = with_id(delivery, id_of(c));
        // The pace: one send per 1/rate seconds, whatever else the slice does.
        let interval = Duration::from_secs_f64(1.0 / w.run.rate.max(0.01));
        let at = w.next_send.max(Instant::now());
        w.next_send = at + interval;
        tokio::time::sleep_until(at).await;
        match self.deliver.send(&delivery).await {
            Attempt::Delivered { .. } => Ok(()),
            Attempt::Retry {
                http_status,
                error,
                after,
            } => {
                // The target asked for a pause (`Retry-After`): the next send waits for it.
                if let Some(after) = after {
                    let until = Instant::now() + after.min(RETRY_AFTER_AT_MOST);
                    w.next_send = w.next_send.max(until);
                }
                Err(self.failure(&w.run.target_arn, http_status, &error).await)
            }
            Attempt::Rejected { http_status, error } => {
                Err(self.failure(&w.run.target_arn, http_status, &error).await)
            }
        }
    }

    /// A failed send, as the run counts it.
    async fn failure(&self, target: &str, http_status: Option<u16>, error: &str) -> Turn {
        // As EventBridge refreshes an OAuth token: the next plan reads the auth again.
        if matches!(http_status, Some(401 | 407)) {
            self.deliver.forget_auth(target).await;
        }
        Turn::Failed(match http_status {
            Some(s) => format!("HTTP {s}: {}", crate::text::truncate(error, 200)),
            None => crate::text::truncate(error, 200),
        })
    }
}
