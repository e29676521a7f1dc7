//! The trigger dispatcher: delivers the outbox (see `service::triggers`).
//!
//! One worker per trigger that delivers: it reads the trigger's oldest
//! events from a snapshot, sends them one at a time (so a receiver sees a
//! trigger's events in commit order), and removes each delivered batch in
//! one small write. A failure is recorded with its attempt and the time of
//! the next (the Svix schedule, with ±10 % jitter, never before a
//! `Retry-After`); after the last it moves to the dead letters; a 410
//! disables the trigger. Everything it knows is in the store, so a restart
//! (even after SIGKILL) resumes where the last committed write left off:
//! at least once, with the same `webhook-id`.
//!
//! It runs on the background runtime (lower CPU priority), reads snapshots
//! and writes through the writer's queue like any client: a slow or dead
//! receiver never holds up a write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::Semaphore;

use crate::service::Service;
use crate::service::triggers::{Attempt, Outcome};
use crate::webhooks;

/// Svix's retry schedule: the first attempt at once, then after 5 s,
/// 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.
pub const SVIX_SCHEDULE: [u64; 8] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000];
/// Time limit of one delivery.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Deliveries in flight at once, server-wide and per workspace.
const MAX_IN_FLIGHT: usize = 64;
const MAX_IN_FLIGHT_PER_WORKSPACE: usize = 8;
/// Events read (and removed once delivered) at a time.
const BATCH: usize = 256;
/// An idle trigger's stored cursor follows the stream every this many changes.
const SKIP_EVERY: u64 = 1000;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Parses a schedule: `0s,100ms,5m,2h` (the first entry is the delay of the
/// first attempt, usually 0).
pub fn parse_schedule(s: &str) -> Result<Vec<Duration>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (num, unit) = part
            .find(|c: char| !c.is_ascii_digit())
            .map_or((part, "s"), |i| part.split_at(i));
        let n: u64 = num
            .parse()
            .map_err(|_| format!("'{part}' is not a duration such as 100ms, 5s, 5m or 2h"))?;
        out.push(match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return Err(format!("'{part}': unknown unit '{unit}' (ms, s, m or h)")),
        });
    }
    if out.is_empty() {
        return Err("a schedule needs at least one entry".into());
    }
    Ok(out)
}

fn svix() -> Vec<Duration> {
    SVIX_SCHEDULE
        .iter()
        .map(|s| Duration::from_secs(*s))
        .collect()
}

/// How one attempt ended.
enum Sent {
    Delivered,
    Gone(Attempt),
    Failed(Attempt, Option<Duration>),
}

pub struct Dispatcher {
    service: Service,
    schedule: Vec<Duration>,
    timeout: Duration,
    global: Arc<Semaphore>,
    per_workspace: Mutex<HashMap<String, Arc<Semaphore>>>,
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A `Retry-After` value: delta-seconds or an HTTP date.
pub fn retry_after(v: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = v.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = jiff::fmt::rfc2822::DateTimeParser::new()
            .parse_timestamp(v)
            .ok()?;
        let ms = at.as_millisecond() - now.as_millisecond();
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// `d` ± 10 %.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.9..=1.1))
}

impl Dispatcher {
    /// `schedule`: None for Svix's.
    pub fn new(
        service: Service,
        schedule: Option<Vec<Duration>>,
        timeout: Option<Duration>,
    ) -> Dispatcher {
        Dispatcher {
            service,
            schedule: schedule.unwrap_or_else(svix),
            timeout: timeout.unwrap_or(TIMEOUT),
            global: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            per_workspace: Mutex::default(),
        }
    }

    /// Starts the dispatcher on the background runtime.
    pub fn start(self) {
        let this = Arc::new(self);
        tokio::spawn(crate::background::spawn(this.run()));
    }

    /// Finds triggers that deliver and keeps one worker on each; drops old
    /// idempotency keys of hooks every 10 minutes.
    async fn run(self: Arc<Self>) {
        let mut commits = self.service.store().commits();
        let mut workers: HashMap<(String, String), tokio::task::JoinHandle<()>> = HashMap::new();
        let mut last_gc: Option<Instant> = None;
        loop {
            workers.retain(|_, h| !h.is_finished());
            match self.service.active_triggers().await {
                Ok(active) => {
                    for key in active {
                        if let std::collections::hash_map::Entry::Vacant(slot) = workers.entry(key)
                        {
                            let (ws, id) = slot.key().clone();
                            slot.insert(tokio::spawn(self.clone().worker(ws, id)));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "dispatcher: cannot list triggers"),
            }
            if last_gc.is_none_or(|t| t.elapsed() > Duration::from_secs(600)) {
                last_gc = Some(Instant::now());
                match self.service.expire_hook_keys().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(keys = n, "dropped expired hook idempotency keys"),
                    Err(e) => tracing::warn!(error = %e, "cannot drop expired hook keys"),
                }
            }
            tokio::select! {
                r = commits.changed() => if r.is_err() { return },
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
            // Triggers are config: a new one is picked up within this.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn workspace_slots(&self, ws: &str) -> Arc<Semaphore> {
        let mut m = self.per_workspace.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(ws.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_WORKSPACE)))
            .clone()
    }

    /// Delivers one trigger's queue until the trigger is gone or disabled.
    async fn worker(self: Arc<Self>, ws: String, id: String) {
        let mut commits = self.service.store().commits();
        // What this worker has already looked at (a cursor kept in memory
        // between reads; the stored one moves when deliveries are recorded).
        let mut after = 0;
        // Where the stored cursor was last moved to while idle.
        let mut skipped = 0;
        // Which trigger of this name (its `created_at`): one deleted and
        // made again (or its workspace) starts over.
        let mut incarnation = String::new();
        loop {
            // Marked seen before the read: a commit after it wakes the wait below.
            commits.borrow_and_update();
            let due = match self.service.due(&ws, &id, BATCH, after).await {
                Ok(Some(d)) => d,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(workspace = %ws, trigger = %id, error = %e, "dispatcher: cannot read the queue");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if due.incarnation != incarnation {
                let again = !incarnation.is_empty();
                incarnation = due.incarnation.clone();
                if again {
                    (after, skipped) = (0, 0);
                    continue;
                }
            }
            let inc = incarnation.as_str();
            if due.events.is_empty() {
                after = after.max(due.scanned_to);
                if due.more {
                    continue;
                }
                // Idle: let the stored cursor follow, now and then (one small
                // write), so this trigger holds back no one's events.
                if after >= skipped + SKIP_EVERY {
                    if let Err(e) = self.service.skip_to(&ws, &id, inc, after).await {
                        tracing::warn!(workspace = %ws, trigger = %id, error = %e, "cannot move an idle trigger's cursor");
                    }
                    skipped = after;
                }
                tokio::select! {
                    r = commits.changed() => if r.is_err() { return },
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
                // Coalesce: under load commits come every few hundred µs.
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            if let Some(at) = due.not_before {
                let wait = at - now_ms();
                if wait > 0 {
                    // Re-read now and then: the trigger may be deleted, or
                    // its dead letters replayed in front.
                    let wait = Duration::from_millis(wait as u64).min(Duration::from_secs(30));
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            let secrets: Vec<&str> = due.secrets.iter().map(String::as_str).collect();
            let mut delivered = Vec::new();
            for (i, (seq, wid, body)) in due.events.iter().enumerate() {
                let before = if i == 0 { due.attempts } else { 0 };
                match self.deliver(&ws, &due.url, &secrets, wid, body).await {
                    Sent::Delivered => delivered.push(*seq),
                    Sent::Gone(attempt) => {
                        self.settle(&ws, &id, inc, std::mem::take(&mut delivered))
                            .await;
                        if let Err(e) = self
                            .service
                            .failed(&ws, &id, inc, *seq, Outcome::Gone { attempt })
                            .await
                        {
                            tracing::warn!(workspace = %ws, trigger = %id, error = %e, "cannot disable a trigger");
                            return;
                        }
                        // The rest of its queue to the dead letters, in small writes.
                        loop {
                            match self.service.bury_disabled(&ws, &id, inc).await {
                                Ok(0) => return,
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::warn!(workspace = %ws, trigger = %id, error = %e, "cannot dead-letter a disabled trigger's queue");
                                    return;
                                }
                            }
                        }
                    }
                    Sent::Failed(attempt, wait) => {
                        self.settle(&ws, &id, inc, std::mem::take(&mut delivered))
                            .await;
                        let n = before + 1;
                        let next_at = self.schedule.get(n).map(|d| {
                            let mut d = jitter(*d);
                            if let Some(w) = wait {
                                d = d.max(w);
                            }
                            now_ms() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
                        });
                        tracing::info!(workspace = %ws, trigger = %id, sequence = seq, attempt = n,
                            error = attempt.error.as_deref().unwrap_or(""), status = attempt.status,
                            "delivery failed");
                        if let Err(e) = self
                            .service
                            .failed(&ws, &id, inc, *seq, Outcome::Retry { attempt, next_at })
                            .await
                        {
                            tracing::warn!(workspace = %ws, trigger = %id, error = %e, "cannot record a failed delivery");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        break;
                    }
                }
            }
            if delivered.len() == due.events.len() {
                after = after.max(due.scanned_to);
            }
            self.settle(&ws, &id, inc, delivered).await;
        }
    }

    /// Records delivered events; a failure only means they are sent again.
    async fn settle(&self, ws: &str, id: &str, incarnation: &str, seqs: Vec<u64>) {
        if seqs.is_empty() {
            return;
        }
        if let Err(e) = self.service.delivered(ws, id, incarnation, seqs).await {
            tracing::warn!(workspace = %ws, trigger = %id, error = %e, "cannot record deliveries; they will be sent again");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn deliver(&self, ws: &str, url: &str, secrets: &[&str], wid: &str, body: &[u8]) -> Sent {
        // The workspace's slot first: a workspace waiting for its own
        // slots never holds server-wide ones.
        let slots = self.workspace_slots(ws);
        let stopping = || {
            Sent::Failed(
                attempt(None, Some("the dispatcher is stopping".into()), 0),
                None,
            )
        };
        let Ok(_w) = slots.acquire().await else {
            return stopping();
        };
        let Ok(_g) = self.global.acquire().await else {
            return stopping();
        };
        let started = Instant::now();
        let ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if secrets.is_empty() {
            let e = "the trigger has no live secret; `mcp-factory triggers rotate-secret` it"
                .to_string();
            return Sent::Failed(attempt(None, Some(e), 0), None);
        }
        let ts = jiff::Timestamp::now().as_second();
        let signature = match webhooks::sign(secrets, wid, ts, body) {
            Ok(s) => s,
            Err(e) => {
                return Sent::Failed(attempt(None, Some(format!("cannot sign: {e}")), 0), None);
            }
        };
        let headers = [
            ("content-type", "application/json".to_string()),
            (webhooks::ID, wid.to_string()),
            (webhooks::TIMESTAMP, ts.to_string()),
            (webhooks::SIGNATURE, signature),
            (
                "user-agent",
                format!("mcp-factory/{}", env!("CARGO_PKG_VERSION")),
            ),
        ];
        let egress = &self.service.config().egress;
        match egress
            .send(url, &headers, body.to_vec(), self.timeout)
            .await
        {
            Err(refusal) => Sent::Failed(
                attempt(None, Some(format!("refused: {refusal}")), ms()),
                None,
            ),
            Ok(Err(e)) => {
                let why = if e.is_timeout() {
                    format!("no answer within {} s", self.timeout.as_secs_f64())
                } else {
                    error_chain(&e)
                };
                Sent::Failed(attempt(None, Some(why), ms()), None)
            }
            Ok(Ok(resp)) => {
                let status = resp.status();
                let code = status.as_u16();
                if status.is_success() {
                    return Sent::Delivered;
                }
                if code == 410 {
                    return Sent::Gone(attempt(Some(code), Some("410 Gone".into()), ms()));
                }
                let wait = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, jiff::Timestamp::now()));
                let why = if status.is_redirection() {
                    let to = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("?");
                    format!(
                        "redirect ({code}) to {to} not followed: deliveries go only to the trigger's URL"
                    )
                } else {
                    format!("the receiver answered {status}")
                };
                Sent::Failed(attempt(Some(code), Some(why), ms()), wait)
            }
        }
    }
}

fn attempt(status: Option<u16>, error: Option<String>, ms: u64) -> Attempt {
    Attempt {
        at: {
            let t = jiff::Timestamp::now();
            format!("{t:.3}")
        },
        status,
        error,
        ms,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_with_units_and_refuse_nonsense() {
        assert_eq!(
            parse_schedule("0s, 100ms,5m,2h").expect("parses"),
            vec![
                Duration::ZERO,
                Duration::from_millis(100),
                Duration::from_secs(300),
                Duration::from_secs(7200)
            ]
        );
        assert!(
            parse_schedule("5x")
                .expect_err("refused")
                .contains("unknown unit")
        );
        assert!(parse_schedule("soon").is_err());
        assert_eq!(svix().len(), 8);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().expect("a time");
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Tue, 01 Dec 2026 00:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after("Mon, 30 Nov 2026 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("9999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("later", now), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
    }
}
