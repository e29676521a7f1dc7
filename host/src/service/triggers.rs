//! Triggers: outbound webhooks. A trigger names a collection (or a
//! relationship type), the events it wants and a URL; every matching change
//! is delivered there as a Standard Webhooks request signed with the
//! trigger's own secret.
//!
//! Delivery is durable: [`emit`] writes the event into the outbox **in the
//! transaction of the change**, so an acknowledged write always has its
//! event and a failed one never does. The dispatcher (`crate::dispatch`)
//! reads the outbox, delivers in order per trigger, at least once, and
//! settles each event through the functions at the end of this file. A
//! trigger is config (created and deleted in previews, carried by
//! promotion); its disabled state, its queue and its secret are not.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{Entity, Result, ServiceError};
use super::records::Record;
use super::relationships::Relationship;
use super::secrets::{self, Owner, SecretInfo};
use super::workspaces::{self, Workspace};
use super::{Caller, Page, Service, check_ident, decode, encode, now, oplog};
use crate::store::{self, Txn, View};

/// Dead letters kept per trigger; older ones are dropped (with a warning).
pub const MAX_DEAD_LETTERS: usize = 100_000;
/// Triggers one workspace may have.
pub const MAX_TRIGGERS: usize = 100;
/// Events one write removes at most once every trigger is past them.
const COLLECT: usize = 10_000;
/// Why a trigger was disabled by its receiver.
const GONE: &str = "the receiver answered 410 Gone; the trigger is disabled";

/// Whether trigger `id` of `ws` is still the one of `incarnation` (its
/// `created_at`): a trigger deleted and made again, or a workspace deleted
/// and made again, is another trigger, whose cursor an old delivery must
/// not move.
fn same_trigger(v: &impl View, ws: &str, id: &str, incarnation: &str) -> Result<bool> {
    Ok(find_in(v, ws, id)?.is_some_and(|t| t.created_at == incarnation))
}
/// Pending events are counted up to this many (a longer queue shows this
/// number: "at least"), so that a get or list stays cheap.
pub const PENDING_COUNT_CAP: usize = 100_000;
/// Route flag: the trigger ignores writes made by hooks.
const SKIP_HOOK_WRITES: u8 = 8;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Create,
    Update,
    Delete,
}

impl Event {
    fn flag(self) -> u8 {
        match self {
            Event::Create => 1,
            Event::Update => 2,
            Event::Delete => 4,
        }
    }

    fn past(self) -> &'static str {
        match self {
            Event::Create => "created",
            Event::Update => "updated",
            Event::Delete => "deleted",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trigger {
    /// The trigger's name, which is also its id (stable from a preview to
    /// production).
    pub id: String,
    pub workspace_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_type: Option<String>,
    pub url: String,
    pub events: Vec<Event>,
    pub skip_hook_writes: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Trigger {
    /// Same config (ignores the workspace and timestamps).
    pub fn same_config(&self, o: &Trigger) -> bool {
        self.collection == o.collection
            && self.rel_type == o.rel_type
            && self.url == o.url
            && self.events == o.events
            && self.skip_hook_writes == o.skip_hook_writes
            && self.description == o.description
    }

    /// The route key: ("c", collection) or ("r", rel_type).
    fn source(&self) -> (&'static str, &str) {
        match (&self.collection, &self.rel_type) {
            (Some(c), _) => ("c", c),
            (None, Some(r)) => ("r", r),
            (None, None) => ("c", ""),
        }
    }

    fn flags(&self) -> u8 {
        let mut f = self.events.iter().fold(0, |f, e| f | e.flag());
        if self.skip_hook_writes {
            f |= SKIP_HOOK_WRITES;
        }
        f
    }
}

/// Body of a create.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTrigger {
    pub name: String,
    #[serde(default)]
    pub collection: Option<String>,
    #[serde(default)]
    pub rel_type: Option<String>,
    pub url: String,
    pub events: Vec<Event>,
    #[serde(default)]
    pub skip_hook_writes: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A trigger as get and list show it: its config, whether it delivers,
/// its queue, and when its secrets were made (never the secrets).
#[derive(Debug, Clone, Serialize)]
pub struct TriggerInfo {
    #[serde(flatten)]
    pub trigger: Trigger,
    /// "active" or "disabled".
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    /// Events waiting to be delivered.
    pub pending: usize,
    /// Events whose retries ran out (`triggers deliveries --status dead`).
    pub dead: usize,
    pub secrets: Vec<SecretInfo>,
}

/// A new trigger: the only time its secret is seen.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedTrigger {
    pub secret: String,
    #[serde(flatten)]
    pub trigger: Trigger,
}

/// Why a trigger does not deliver.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Disabled {
    at: String,
    reason: String,
}

pub(crate) fn list_in(v: &impl View, ws: &str) -> Result<Vec<Trigger>> {
    store::triggers::list(v, ws)?
        .iter()
        .map(|b| decode(b, "trigger"))
        .collect()
}

pub(crate) fn find_in(v: &impl View, ws: &str, id: &str) -> Result<Option<Trigger>> {
    store::triggers::get(v, ws, id)?
        .map(|b| decode(&b, "trigger"))
        .transpose()
}

pub(crate) fn load_in(v: &impl View, ws: &str, id: &str) -> Result<Trigger> {
    find_in(v, ws, id)?.ok_or_else(|| {
        ServiceError::not_found(
            Entity::Trigger,
            id,
            format!(
                "trigger '{id}' not found in workspace '{ws}'; list them with `mcp-factory triggers list --workspace {ws}`"
            ),
        )
    })
}

/// The read right a trigger needs on what it sends out (checked with
/// [`allows`]: on its collection, or workspace-wide).
fn read_perm(t: &Trigger) -> &'static str {
    match &t.collection {
        Some(_) => "read:records",
        None => "read:relationships",
    }
}

/// Checks a trigger URL against the server's egress policy; the refusal
/// names the rule.
fn check_url(egress: &crate::egress::Egress, t: &Trigger) -> Result<()> {
    egress
        .check_url(&t.url)
        .map(|_| ())
        .map_err(|r| ServiceError::Validation {
            message: format!("trigger '{}': url refused: {r}", t.id),
            details: json!({"at": "url", "trigger": t.id}),
        })
}

/// Whether `caller` holds `perm` for trigger `t`: on its collection, or,
/// for a relationship trigger (whose events may link any collections),
/// through a grant not limited to some collections.
fn allows(caller: &Caller, w: &Workspace, t: &Trigger, perm: &str) -> Result<()> {
    match &t.collection {
        Some(c) => caller.require(w, Some(c), perm),
        None if caller.can_whole_workspace(w, perm) => Ok(()),
        None => Err(ServiceError::Forbidden(format!(
            "token '{}' needs '{perm}' on all of workspace '{}' (not limited to some collections) for relationship trigger '{}': its events may link any collections",
            caller.token_name, w.id, t.id
        ))),
    }
}

/// Checks a trigger's own fields (not its URL, see [`Service::check_url`]).
fn check_fields(t: &Trigger) -> Result<()> {
    check_ident("trigger name", &t.id, 64)?;
    match (&t.collection, &t.rel_type) {
        (Some(c), None) => check_ident("collection name", c, 64)?,
        (None, Some(r)) => check_ident("rel_type", r, 64)?,
        _ => {
            return Err(ServiceError::invalid(
                "a trigger names exactly one of 'collection' (record events) or 'rel_type' (relationship events)",
            ));
        }
    }
    if t.events.is_empty() {
        return Err(ServiceError::invalid(
            "'events' must list at least one of \"create\", \"update\", \"delete\"",
        ));
    }
    Ok(())
}

/// Writes a trigger's config and, when it delivers in `ws`, its route.
fn put_in(txn: &Txn, ws: &str, t: &Trigger) -> Result<()> {
    store::triggers::put(txn, ws, &t.id, &encode(t)?)?;
    store::outbox::start(txn, ws, &t.id)?;
    store::triggers::unroute(txn, ws, &t.id)?;
    if store::triggers::state(txn, ws, &t.id)?.is_none() {
        let (kind, name) = t.source();
        store::triggers::route(txn, ws, kind, name, &t.id, t.flags())?;
    }
    Ok(())
}

/// Removes a trigger, its route, state and queue; its secret too unless
/// `keep_secret` (a promotion removed it: a rollback brings it back with
/// the same secret).
pub(crate) fn remove_in(txn: &Txn, ws: &str, id: &str, keep_secret: bool) -> Result<()> {
    store::triggers::remove(txn, ws, id)?;
    store::triggers::unroute(txn, ws, id)?;
    store::triggers::remove_state(txn, ws, id)?;
    store::outbox::drop_trigger(txn, ws, id)?;
    store::outbox::collect(txn, ws, COLLECT)?;
    if !keep_secret {
        secrets::remove(txn, ws, Owner::Trigger, id)?;
    }
    Ok(())
}

fn disable_in(txn: &Txn, ws: &str, id: &str, reason: &str) -> Result<()> {
    let d = Disabled {
        at: now(),
        reason: reason.to_string(),
    };
    store::triggers::put_state(txn, ws, id, &encode(&d)?)?;
    store::triggers::unroute(txn, ws, id)?;
    Ok(())
}

/// Makes `ws`'s triggers equal to `target` (see `workspaces::apply_config`);
/// `fresh`: `ws` is a new preview, whose triggers start disabled so that
/// preview data never reaches a production receiver. Returns the secrets
/// made for triggers new to `ws`.
pub(crate) fn apply(
    txn: &Txn,
    ws: &Workspace,
    target: &[Trigger],
    fresh: bool,
    egress: Option<&crate::egress::Egress>,
) -> Result<Vec<secrets::NewSecret>> {
    let current = list_in(txn, &ws.id)?;
    for c in &current {
        if !target.iter().any(|t| t.id == c.id) {
            remove_in(txn, &ws.id, &c.id, true)?;
        }
    }
    let stamp = now();
    let mut made = Vec::new();
    for t in target {
        let old = current.iter().find(|c| c.id == t.id);
        if old.is_some_and(|o| o.same_config(t)) {
            continue;
        }
        check_fields(t)?;
        if let Some(e) = egress {
            check_url(e, t)?;
        }
        if let Some(c) = &t.collection
            && store::collections::get(txn, &ws.id, c)?.is_none()
        {
            return Err(ServiceError::invalid(format!(
                "trigger '{}' names collection '{c}', which '{}' would not have",
                t.id, ws.id
            )));
        }
        if old.is_some_and(|o| o.source() != t.source()) {
            // Another collection (or type): the old queue is not this
            // trigger's business any more.
            store::outbox::drop_trigger(txn, &ws.id, &t.id)?;
        }
        let next = Trigger {
            workspace_id: ws.id.clone(),
            created_at: old.map_or_else(|| stamp.clone(), |o| o.created_at.clone()),
            updated_at: stamp.clone(),
            ..t.clone()
        };
        if fresh {
            disable_in(
                txn,
                &ws.id,
                &t.id,
                "copied into a preview; `mcp-factory triggers enable` it to deliver this preview's changes",
            )?;
        }
        put_in(txn, &ws.id, &next)?;
        if let Some(secret) = secrets::ensure(txn, &ws.id, Owner::Trigger, &t.id)?
            && !fresh
        {
            made.push(secrets::NewSecret {
                kind: "trigger".into(),
                id: t.id.clone(),
                secret,
            });
        }
    }
    Ok(made)
}

/// What a change sends out.
pub(crate) enum Change<'a> {
    Record(Event, &'a Record),
    Relationship(Event, &'a Relationship),
}

/// The body of a delivery, serialised straight from the change.
#[derive(Serialize)]
struct Body<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: String,
    timestamp: String,
    workspace_id: &'a str,
    sequence: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<Origin<'a>>,
    data: &'a T,
}

#[derive(Serialize)]
struct Origin<'a> {
    hook: &'a str,
}

/// Queues the events of a change for every trigger routed to it, in the
/// change's own transaction (`seq`: its operations-log sequence). One read
/// of the routes when no trigger listens; the event is written once, with
/// one queue entry per trigger.
pub(crate) fn emit(txn: &Txn, caller: &Caller, ws: &str, seq: u64, change: Change) -> Result<()> {
    let (kind, name, event) = match &change {
        Change::Record(e, r) => ("c", r.collection.as_str(), *e),
        Change::Relationship(e, r) => ("r", r.rel_type.as_str(), *e),
    };
    let routes = store::triggers::routes(txn, ws, kind, name)?;
    let to: Vec<&str> = routes
        .iter()
        .filter(|(_, flags)| {
            flags & event.flag() != 0 && !(caller.hook.is_some() && flags & SKIP_HOOK_WRITES != 0)
        })
        .map(|(t, _)| t.as_str())
        .collect();
    if to.is_empty() {
        return Ok(());
    }
    let mut row = format!("msg_{}\n", uuid::Uuid::now_v7().simple()).into_bytes();
    let origin = caller.hook.as_deref().map(|hook| Origin { hook });
    let (timestamp, what) = (
        now(),
        format!(
            "{}.{}",
            if kind == "c" {
                "record"
            } else {
                "relationship"
            },
            event.past()
        ),
    );
    let written = match &change {
        Change::Record(_, r) => serde_json::to_writer(
            &mut row,
            &Body {
                kind: what,
                timestamp,
                workspace_id: ws,
                sequence: seq,
                origin,
                data: *r,
            },
        ),
        Change::Relationship(_, r) => serde_json::to_writer(
            &mut row,
            &Body {
                kind: what,
                timestamp,
                workspace_id: ws,
                sequence: seq,
                origin,
                data: *r,
            },
        ),
    };
    written.map_err(|e| ServiceError::Internal(format!("encoding: {e}")))?;
    store::outbox::put(txn, ws, seq, &row, &to)?;
    Ok(())
}

/// An outbox row: `webhook-id`, newline, body.
fn split_row(row: &[u8]) -> (String, &[u8]) {
    match row.iter().position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&row[..i]).into_owned(),
            &row[i + 1..],
        ),
        None => (String::new(), row),
    }
}

fn event_type(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_slice::<Head>(body)
        .map(|h| h.kind)
        .unwrap_or_default()
}

/// One delivery attempt, as the deliveries listing shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub ms: u64,
}

/// The attempts made at a trigger's first event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HeadState {
    seq: u64,
    attempts: Vec<Attempt>,
    /// Unix milliseconds before which the event is not tried again.
    #[serde(default)]
    next_at: Option<i64>,
}

/// A dead letter: the event and what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeadLetter {
    /// The outbox row (`webhook-id`, newline, body).
    event: String,
    attempts: Vec<Attempt>,
    dead_at: String,
    reason: String,
}

/// A queued or dead event, as `triggers deliveries` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub sequence: u64,
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// "pending" or "dead".
    pub status: &'static str,
    pub attempts: Vec<Attempt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The body as it is delivered (signed afresh on each attempt).
    pub body: Value,
}

/// Events of one trigger the dispatcher should deliver now.
#[derive(Debug)]
pub struct Due {
    /// The trigger's `created_at`: pass it back with what was delivered.
    pub incarnation: String,
    pub url: String,
    /// The secrets that sign right now, newest first.
    pub secrets: Vec<String>,
    /// (sequence, webhook-id, body), oldest first.
    pub events: Vec<(u64, String, Vec<u8>)>,
    /// Attempts already made at the first of `events`.
    pub attempts: usize,
    /// Unix milliseconds before which the first event must not be tried.
    pub not_before: Option<i64>,
    /// The last sequence the read looked at (pass it back as `after`).
    pub scanned_to: u64,
    /// The read stopped early: read again at once.
    pub more: bool,
}

/// What the dispatcher learned from one attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Failed: try again at `next_at` (Unix ms), or, with `None`, give up
    /// (the event moves to the dead letters).
    Retry {
        attempt: Attempt,
        next_at: Option<i64>,
    },
    /// The receiver answered 410 Gone: the trigger is disabled.
    Gone { attempt: Attempt },
}

fn rfc3339_ms(ms: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| format!("{t:.3}"))
}

/// Moves the trigger's head event (`seq`) to the dead letters.
fn bury(
    txn: &Txn,
    ws: &str,
    id: &str,
    seq: u64,
    attempts: Vec<Attempt>,
    reason: &str,
) -> Result<()> {
    let Some(row) = store::outbox::get(txn, ws, id, seq)? else {
        return Ok(());
    };
    let dead = DeadLetter {
        event: String::from_utf8_lossy(&row).into_owned(),
        attempts,
        dead_at: now(),
        reason: reason.to_string(),
    };
    store::outbox::done(txn, ws, id, seq)?;
    store::outbox::put_dead(txn, ws, id, seq, &encode(&dead)?)?;
    Ok(())
}

/// Drops the oldest dead letters beyond [`MAX_DEAD_LETTERS`].
fn trim_dead(txn: &Txn, ws: &str, id: &str) -> Result<()> {
    let n = store::outbox::dead_count(txn, ws, id)?;
    if n <= MAX_DEAD_LETTERS {
        return Ok(());
    }
    for (oldest, _) in store::outbox::dead(txn, ws, id, 0, n - MAX_DEAD_LETTERS)? {
        tracing::warn!(
            workspace = ws,
            trigger = id,
            sequence = oldest,
            "dead letters full: dropping the oldest"
        );
        store::outbox::remove_dead(txn, ws, id, oldest)?;
    }
    Ok(())
}

impl Service {
    pub async fn create_trigger(
        &self,
        caller: &Caller,
        ws: &str,
        req: CreateTrigger,
    ) -> Result<CreatedTrigger> {
        let mut events = req.events.clone();
        events.sort();
        events.dedup();
        let stamp = now();
        let t = Trigger {
            id: req.name.clone(),
            workspace_id: ws.to_string(),
            collection: req.collection.clone(),
            rel_type: req.rel_type.clone(),
            url: req.url.trim().to_string(),
            events,
            skip_hook_writes: req.skip_hook_writes.unwrap_or(true),
            description: req.description.clone(),
            created_at: stamp.clone(),
            updated_at: stamp,
        };
        check_fields(&t)?;
        check_url(&self.config.egress, &t)?;
        let ws = ws.to_string();
        self.write_shared(caller, move |txn, ctx| {
            let w = workspaces::load_for(
                txn,
                &ctx.caller,
                &ws,
                t.collection.as_deref(),
                "write:triggers",
            )?;
            workspaces::require_preview(&w, "triggers")?;
            allows(&ctx.caller, &w, &t, "write:triggers")?;
            allows(&ctx.caller, &w, &t, read_perm(&t))?;
            if let Some(c) = &t.collection {
                super::collections::load_in(txn, &ws, c)?;
            }
            if find_in(txn, &ws, &t.id)?.is_some() {
                return Err(ServiceError::conflict(format!(
                    "trigger '{}' already exists in '{ws}'; delete it first, or choose another name",
                    t.id
                )));
            }
            if store::triggers::list(txn, &ws)?.len() >= MAX_TRIGGERS {
                return Err(ServiceError::conflict(format!(
                    "workspace '{ws}' has {MAX_TRIGGERS} triggers, the most one may have; delete one first"
                )));
            }
            put_in(txn, &ws, &t)?;
            let secret = secrets::mint(txn, &ws, Owner::Trigger, &t.id)?;
            oplog::append(
                txn,
                &ws,
                &ctx.caller,
                "create_trigger",
                json!({"trigger": t.id, "collection": t.collection, "rel_type": t.rel_type}),
            )?;
            Ok(CreatedTrigger {
                secret,
                trigger: t.clone(),
            })
        })
        .await
    }

    fn info_in(&self, v: &impl View, ws: &str, t: Trigger) -> Result<TriggerInfo> {
        let state: Option<Disabled> = store::triggers::state(v, ws, &t.id)?
            .map(|b| decode(&b, "trigger state"))
            .transpose()?;
        Ok(TriggerInfo {
            status: if state.is_some() {
                "disabled"
            } else {
                "active"
            },
            disabled_reason: state.as_ref().map(|s| s.reason.clone()),
            disabled_at: state.map(|s| s.at),
            pending: store::outbox::pending(v, ws, &t.id, 0, 0, PENDING_COUNT_CAP)?.1,
            dead: store::outbox::dead_count(v, ws, &t.id)?,
            secrets: secrets::info(v, ws, Owner::Trigger, &t.id)?,
            trigger: t,
        })
    }

    fn readable(caller: &Caller, w: &Workspace, t: &Trigger) -> bool {
        allows(caller, w, t, "read:triggers").is_ok()
    }

    pub async fn get_trigger(&self, caller: &Caller, ws: &str, id: &str) -> Result<TriggerInfo> {
        let (this, caller, ws, id) = (self.clone(), caller.clone(), ws.to_string(), id.to_string());
        self.blocking(move || {
            let txn = this.store.read()?;
            let (_, t) = Self::trigger_for(&txn, &caller, &ws, &id, "read:triggers")?;
            this.info_in(&txn, &ws, t)
        })
        .await
    }

    pub async fn list_triggers(&self, caller: &Caller, ws: &str) -> Result<Vec<TriggerInfo>> {
        let (this, caller, ws) = (self.clone(), caller.clone(), ws.to_string());
        self.blocking(move || {
            let txn = this.store.read()?;
            let w = workspaces::load_for(&txn, &caller, &ws, None, "read:triggers")?;
            list_in(&txn, &ws)?
                .into_iter()
                .filter(|t| Self::readable(&caller, &w, t))
                .map(|t| this.info_in(&txn, &ws, t))
                .collect()
        })
        .await
    }

    pub async fn delete_trigger(&self, caller: &Caller, ws: &str, id: &str) -> Result<Trigger> {
        let (ws, id) = (ws.to_string(), id.to_string());
        // Exclusive: a long queue is removed with it.
        self.write_exclusive(caller, move |txn, ctx| {
            let w = workspaces::load_for(txn, &ctx.caller, &ws, None, "write:triggers")?;
            let t = load_in(txn, &ws, &id)?;
            allows(&ctx.caller, &w, &t, "write:triggers")?;
            workspaces::require_preview(&w, "triggers")?;
            remove_in(txn, &ws, &id, false)?;
            oplog::append(
                txn,
                &ws,
                &ctx.caller,
                "delete_trigger",
                json!({"trigger": id}),
            )?;
            Ok(t)
        })
        .await
    }

    /// Loads a trigger for an operation (rotate, enable, replay,
    /// deliveries), which production allows: they are not config.
    fn trigger_for(
        v: &impl View,
        caller: &Caller,
        ws: &str,
        id: &str,
        perm: &str,
    ) -> Result<(Workspace, Trigger)> {
        let w = workspaces::load_for(v, caller, ws, None, perm)?;
        let t = load_in(v, ws, id)?;
        allows(caller, &w, &t, perm)?;
        Ok((w, t))
    }

    /// A new secret for the trigger; the old ones keep signing for
    /// `grace_secs` (default a day, at most a week).
    pub async fn rotate_trigger_secret(
        &self,
        caller: &Caller,
        ws: &str,
        id: &str,
        grace_secs: Option<u64>,
    ) -> Result<Value> {
        let grace = secrets::grace(grace_secs)?;
        let (ws, id) = (ws.to_string(), id.to_string());
        self.write_shared(caller, move |txn, ctx| {
            Self::trigger_for(txn, &ctx.caller, &ws, &id, "write:triggers")?;
            let secret = secrets::rotate(txn, &ws, Owner::Trigger, &id, grace)?;
            oplog::append(txn, &ws, &ctx.caller, "rotate_trigger_secret", json!({"trigger": id, "grace_seconds": grace}))?;
            Ok(json!({"trigger": id, "secret": secret, "previous_secrets_valid_for_seconds": grace}))
        })
        .await
    }

    /// Lets a disabled trigger deliver again (its queue was dead-lettered
    /// when it was disabled: `replay` sends it).
    pub async fn enable_trigger(&self, caller: &Caller, ws: &str, id: &str) -> Result<TriggerInfo> {
        let (w, i) = (ws.to_string(), id.to_string());
        self.write_shared(caller, move |txn, ctx| {
            let (_, t) = Self::trigger_for(txn, &ctx.caller, &w, &i, "write:triggers")?;
            if store::triggers::state(txn, &w, &i)?.is_some() {
                // A fresh start (an active trigger keeps its backoff).
                store::triggers::remove_state(txn, &w, &i)?;
                store::outbox::remove_delivery(txn, &w, &i)?;
            }
            put_in(txn, &w, &t)?;
            oplog::append(
                txn,
                &w,
                &ctx.caller,
                "enable_trigger",
                json!({"trigger": i}),
            )?;
            Ok(())
        })
        .await?;
        self.get_trigger(caller, ws, id).await
    }

    /// The trigger's queue (`dead`: false) or dead letters (`dead`: true).
    pub async fn trigger_deliveries(
        &self,
        caller: &Caller,
        ws: &str,
        id: &str,
        dead: bool,
        limit: Option<usize>,
        offset: Option<usize>,
    ) -> Result<Page<Delivery>> {
        let (limit, offset) = super::page(limit, offset)?;
        let (this, caller, ws, id) = (self.clone(), caller.clone(), ws.to_string(), id.to_string());
        self.blocking(move || {
            let txn = this.store.read()?;
            let (w, t) = Self::trigger_for(&txn, &caller, &ws, &id, "read:triggers")?;
            allows(&caller, &w, &t, read_perm(&t))?;
            let mut data = Vec::new();
            let total;
            if dead {
                total = store::outbox::dead_count(&txn, &ws, &id)?;
                for (seq, b) in store::outbox::dead(&txn, &ws, &id, offset, limit)? {
                    let d: DeadLetter = decode(&b, "dead letter")?;
                    let (webhook_id, body) = split_row(d.event.as_bytes());
                    data.push(Delivery {
                        sequence: seq,
                        webhook_id,
                        kind: event_type(body),
                        status: "dead",
                        attempts: d.attempts,
                        next_at: None,
                        dead_at: Some(d.dead_at),
                        reason: Some(d.reason),
                        body: serde_json::from_slice(body).unwrap_or(Value::Null),
                    });
                }
            } else {
                let (rows, n) =
                    store::outbox::pending(&txn, &ws, &id, offset, limit, PENDING_COUNT_CAP)?;
                total = n;
                let head: Option<HeadState> = store::outbox::delivery(&txn, &ws, &id)?
                    .map(|b| decode(&b, "delivery state"))
                    .transpose()?;
                for (seq, row) in rows {
                    let (webhook_id, body) = split_row(&row);
                    let h = head.as_ref().filter(|h| h.seq == seq);
                    data.push(Delivery {
                        sequence: seq,
                        webhook_id,
                        kind: event_type(body),
                        status: "pending",
                        attempts: h.map(|h| h.attempts.clone()).unwrap_or_default(),
                        next_at: h.and_then(|h| h.next_at).and_then(rfc3339_ms),
                        dead_at: None,
                        reason: None,
                        body: serde_json::from_slice(body).unwrap_or(Value::Null),
                    });
                }
            }
            Ok(Page {
                data,
                meta: super::PageMeta {
                    total,
                    limit,
                    offset,
                },
            })
        })
        .await
    }

    /// Sends dead letters again: one (`seq`) or all, back into the queue
    /// under their own sequence, so they go first and in order, with the
    /// same `webhook-id`. Returns how many.
    pub async fn replay_trigger(
        &self,
        caller: &Caller,
        ws: &str,
        id: &str,
        seq: Option<u64>,
    ) -> Result<Value> {
        let (ws, id) = (ws.to_string(), id.to_string());
        self.write_exclusive(caller, move |txn, ctx| {
            let (_, t) = Self::trigger_for(txn, &ctx.caller, &ws, &id, "write:triggers")?;
            if store::triggers::state(txn, &ws, &t.id)?.is_some() {
                return Err(ServiceError::conflict(format!(
                    "trigger '{id}' is disabled; `mcp-factory triggers enable {id} --workspace {ws}` first"
                )));
            }
            let seqs: Vec<u64> = match seq {
                Some(s) => {
                    if store::outbox::get_dead(txn, &ws, &id, s)?.is_none() {
                        return Err(ServiceError::invalid(format!(
                            "trigger '{id}' has no dead letter with sequence {s}; see `mcp-factory triggers deliveries {id} --status dead`"
                        )));
                    }
                    vec![s]
                }
                None => store::outbox::dead(txn, &ws, &id, 0, MAX_DEAD_LETTERS)?
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect(),
            };
            for s in &seqs {
                if let Some(b) = store::outbox::get_dead(txn, &ws, &id, *s)? {
                    let d: DeadLetter = decode(&b, "dead letter")?;
                    store::outbox::remove_dead(txn, &ws, &id, *s)?;
                    store::outbox::requeue(txn, &ws, &id, *s, d.event.as_bytes())?;
                }
            }
            oplog::append(txn, &ws, &ctx.caller, "replay_trigger", json!({"trigger": id, "events": seqs.len()}))?;
            Ok(json!({"trigger": id, "replayed": seqs.len()}))
        })
        .await
    }

    // ---- The dispatcher's side (no caller: the server itself) ----

    /// Every trigger that delivers: (workspace, id).
    pub async fn active_triggers(&self) -> Result<Vec<(String, String)>> {
        let this = self.clone();
        self.blocking(move || {
            let txn = this.store.read()?;
            let mut out = Vec::new();
            for b in store::triggers::all(&txn)? {
                let t: Trigger = decode(&b, "trigger")?;
                if store::triggers::state(&txn, &t.workspace_id, &t.id)?.is_none() {
                    out.push((t.workspace_id, t.id));
                }
            }
            Ok(out)
        })
        .await
    }

    /// The trigger's next events (after `after`, which the caller has
    /// already looked at, or the trigger's cursor if later); `None` when the
    /// trigger is gone or disabled.
    pub async fn due(&self, ws: &str, id: &str, limit: usize, after: u64) -> Result<Option<Due>> {
        let (this, ws, id) = (self.clone(), ws.to_string(), id.to_string());
        self.blocking(move || {
            let txn = this.store.read()?;
            let Some(t) = find_in(&txn, &ws, &id)? else {
                return Ok(None);
            };
            if store::triggers::state(&txn, &ws, &id)?.is_some() {
                return Ok(None);
            }
            let (rows, scanned_to, more) = store::outbox::next(&txn, &ws, &id, after, limit)?;
            let events: Vec<(u64, String, Vec<u8>)> = rows
                .into_iter()
                .map(|(s, row)| {
                    let (wid, body) = split_row(&row);
                    (s, wid, body.to_vec())
                })
                .collect();
            let head: Option<HeadState> = store::outbox::delivery(&txn, &ws, &id)?
                .map(|b| decode(&b, "delivery state"))
                .transpose()?;
            let head = head.filter(|h| events.first().is_some_and(|e| e.0 == h.seq));
            Ok(Some(Due {
                incarnation: t.created_at,
                url: t.url,
                secrets: secrets::live(&txn, &ws, Owner::Trigger, &id, secrets::unix_now())?,
                attempts: head.as_ref().map_or(0, |h| h.attempts.len()),
                not_before: head.and_then(|h| h.next_at),
                events,
                scanned_to,
                more,
            }))
        })
        .await
    }

    /// Marks delivered events done (in order), and drops events every
    /// trigger is past.
    pub async fn delivered(
        &self,
        ws: &str,
        id: &str,
        incarnation: &str,
        seqs: Vec<u64>,
    ) -> Result<()> {
        let (ws, id, inc) = (ws.to_string(), id.to_string(), incarnation.to_string());
        self.write_shared(&Caller::system(), move |txn, _| {
            if !same_trigger(txn, &ws, &id, &inc)? {
                return Ok(());
            }
            let head: Option<HeadState> = store::outbox::delivery(txn, &ws, &id)?
                .map(|b| decode(&b, "delivery state"))
                .transpose()?;
            store::outbox::done_all(txn, &ws, &id, &seqs)?;
            if head.is_some_and(|h| seqs.contains(&h.seq)) {
                store::outbox::remove_delivery(txn, &ws, &id)?;
            }
            store::outbox::collect(txn, &ws, COLLECT)?;
            Ok(())
        })
        .await
    }

    /// Moves an idle trigger's cursor up to `seq` (the dispatcher looked:
    /// nothing up to it is for the trigger), so that it holds back no
    /// other trigger's events.
    pub async fn skip_to(&self, ws: &str, id: &str, incarnation: &str, seq: u64) -> Result<()> {
        let (ws, id, inc) = (ws.to_string(), id.to_string(), incarnation.to_string());
        self.write_shared(&Caller::system(), move |txn, _| {
            if !same_trigger(txn, &ws, &id, &inc)? {
                return Ok(());
            }
            store::outbox::skip_to(txn, &ws, &id, seq)?;
            store::outbox::collect(txn, &ws, COLLECT)?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt at the trigger's event `seq`.
    pub async fn failed(
        &self,
        ws: &str,
        id: &str,
        incarnation: &str,
        seq: u64,
        outcome: Outcome,
    ) -> Result<()> {
        let (ws, id, inc) = (ws.to_string(), id.to_string(), incarnation.to_string());
        self.write_shared(&Caller::system(), move |txn, _| {
            if !same_trigger(txn, &ws, &id, &inc)?
                || store::outbox::get(txn, &ws, &id, seq)?.is_none()
            {
                return Ok(()); // deleted, replayed or delivered meanwhile
            }
            let mut head: HeadState = store::outbox::delivery(txn, &ws, &id)?
                .map(|b| decode(&b, "delivery state"))
                .transpose()?
                .filter(|h: &HeadState| h.seq == seq)
                .unwrap_or(HeadState {
                    seq,
                    ..Default::default()
                });
            match outcome.clone() {
                Outcome::Retry {
                    attempt,
                    next_at: Some(at),
                } => {
                    head.attempts.push(attempt);
                    head.next_at = Some(at);
                    store::outbox::put_delivery(txn, &ws, &id, &encode(&head)?)?;
                }
                Outcome::Retry {
                    attempt,
                    next_at: None,
                } => {
                    head.attempts.push(attempt);
                    store::outbox::remove_delivery(txn, &ws, &id)?;
                    let n = head.attempts.len();
                    bury(txn, &ws, &id, seq, head.attempts, &format!("{n} attempts failed"))?;
                    trim_dead(txn, &ws, &id)?;
                }
                Outcome::Gone { attempt } => {
                    // The rest of the queue moves to the dead letters in
                    // small writes ([`Service::bury_disabled`]).
                    head.attempts.push(attempt);
                    store::outbox::remove_delivery(txn, &ws, &id)?;
                    disable_in(txn, &ws, &id, GONE)?;
                    bury(txn, &ws, &id, seq, head.attempts, GONE)?;
                    tracing::warn!(workspace = %ws, trigger = %id, "receiver answered 410 Gone: trigger disabled");
                }
            }
            Ok(())
        })
        .await
    }

    /// Moves up to 1,000 more events of a disabled trigger's queue to its
    /// dead letters (after a 410), in one small write; returns how many
    /// (0: done). Enabling the trigger first delivers what is left instead.
    pub async fn bury_disabled(&self, ws: &str, id: &str, incarnation: &str) -> Result<usize> {
        let (ws, id, inc) = (ws.to_string(), id.to_string(), incarnation.to_string());
        self.write_shared(&Caller::system(), move |txn, _| {
            if !same_trigger(txn, &ws, &id, &inc)?
                || store::triggers::state(txn, &ws, &id)?.is_none()
            {
                return Ok(0);
            }
            let mut n = 0;
            let mut after = 0;
            while n < 1000 {
                let (rest, last, more) = store::outbox::next(txn, &ws, &id, after, 1000 - n)?;
                if rest.is_empty() && !more {
                    break;
                }
                after = after.max(last);
                for (s, _) in rest {
                    bury(txn, &ws, &id, s, Vec::new(), GONE)?;
                    n += 1;
                }
            }
            trim_dead(txn, &ws, &id)?;
            store::outbox::collect(txn, &ws, COLLECT)?;
            Ok(n)
        })
        .await
    }
}
