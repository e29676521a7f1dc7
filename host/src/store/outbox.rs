//! The transactional outbox of trigger deliveries.
//!
//! A change with triggers writes **one** event row, keyed by the
//! operations-log sequence of the change, in the change's own transaction:
//! the triggers it goes to, then `webhook-id` and body. Each trigger keeps
//! a cursor, the sequence up to which it has delivered (or dead-lettered)
//! its events, and walks the events after it that name it, in sequence
//! order, which is commit order. Events below every trigger's cursor are
//! removed (an idle trigger's cursor follows the stream, so only a trigger
//! with undelivered events holds them back). Dead letters sent again wait in a per-trigger replay
//! queue, delivered before the stream. One row per change (not one per
//! trigger) is what keeps the write path cheap.

use super::view::{Txn, View};
use super::*;

/// Events as (sequence, row).
pub type Events = Vec<(u64, Vec<u8>)>;

/// Most event rows one call scans (the caller continues from where it
/// stopped).
const SCAN: usize = 10_000;

/// Writes the event of change `seq` (`row`: `webhook-id`, newline, body)
/// for `triggers`.
pub fn put(t: &Txn, ws: &str, seq: u64, row: &[u8], triggers: &[&str]) -> Result<(), StoreError> {
    let names = triggers.join(",");
    let mut v = Vec::with_capacity(names.len() + 1 + row.len());
    v.extend_from_slice(names.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(row);
    t.table(EVENTS)?.insert((ws, seq), v.as_slice())?;
    Ok(())
}

/// Splits a stored event into (whether it names `trigger`, the row).
fn names<'a>(v: &'a [u8], trigger: &str) -> (bool, &'a [u8]) {
    let i = v.iter().position(|&b| b == b'\n').unwrap_or(v.len());
    let listed = v[..i]
        .split(|&b| b == b',')
        .any(|n| n == trigger.as_bytes());
    (listed, v.get(i + 1..).unwrap_or_default())
}

/// Where a trigger's stream starts: its cursor.
pub fn cursor(v: &impl View, ws: &str, trigger: &str) -> Result<Option<u64>, StoreError> {
    Ok(v.open(CURSORS)?.get((ws, trigger))?.map(|g| g.value()))
}

/// Starts a trigger's stream at the latest change (a new trigger sees
/// only what comes after it); a trigger that has a cursor keeps it.
pub fn start(t: &Txn, ws: &str, trigger: &str) -> Result<(), StoreError> {
    if cursor(t, ws, trigger)?.is_some() {
        return Ok(());
    }
    let last = t
        .open(OPLOG_SEQ)?
        .get(ws)?
        .map_or(0, |g| g.value().saturating_sub(1));
    t.table(CURSORS)?.insert((ws, trigger), last)?;
    Ok(())
}

/// A trigger's next events: the replayed ones first, else those after
/// `after` (at least its cursor) that name it; up to `limit`. Also returns
/// the last sequence the scan looked at (nothing after `after` up to it
/// names the trigger but what is returned) and whether it stopped early.
pub fn next(
    v: &impl View,
    ws: &str,
    trigger: &str,
    after: u64,
    limit: usize,
) -> Result<(Events, u64, bool), StoreError> {
    let replays = replays(v, ws, trigger, 0, limit)?;
    if !replays.is_empty() {
        return Ok((replays, after, false));
    }
    let after = after.max(cursor(v, ws, trigger)?.unwrap_or(0));
    let end = succ(ws);
    let table = v.open(EVENTS)?;
    let (mut out, mut last, mut scanned) = (Vec::new(), after, 0);
    for row in table.range((ws, after.saturating_add(1))..(end.as_str(), 0))? {
        let (k, val) = row?;
        last = k.value().1;
        scanned += 1;
        let (listed, event) = names(val.value(), trigger);
        if listed {
            out.push((last, event.to_vec()));
            if out.len() >= limit {
                return Ok((out, last, false));
            }
        }
        if scanned >= SCAN {
            return Ok((out, last, true));
        }
    }
    Ok((out, last, false))
}

fn replays(
    v: &impl View,
    ws: &str,
    trigger: &str,
    offset: usize,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let end = succ(trigger);
    let table = v.open(REPLAYS)?;
    let mut out = Vec::new();
    for row in table
        .range((ws, trigger, 0)..(ws, end.as_str(), 0))?
        .skip(offset)
        .take(limit)
    {
        let (k, val) = row?;
        out.push((k.value().2, val.value().to_vec()));
    }
    Ok(out)
}

/// Everything a trigger has still to deliver, replays first, from
/// `offset`, at most `limit`; and how many there are (counted up to
/// `count_cap`).
pub fn pending(
    v: &impl View,
    ws: &str,
    trigger: &str,
    offset: usize,
    limit: usize,
    count_cap: usize,
) -> Result<(Events, usize), StoreError> {
    let mut out = replays(v, ws, trigger, offset, limit)?;
    let replayed = replay_count(v, ws, trigger)?;
    let mut skip = offset.saturating_sub(replayed);
    let mut total = replayed;
    let after = cursor(v, ws, trigger)?.unwrap_or(0);
    let end = succ(ws);
    let table = v.open(EVENTS)?;
    for row in table.range((ws, after.saturating_add(1))..(end.as_str(), 0))? {
        let (k, val) = row?;
        let (listed, event) = names(val.value(), trigger);
        if !listed {
            continue;
        }
        total += 1;
        if skip > 0 {
            skip -= 1;
        } else if out.len() < limit {
            out.push((k.value().1, event.to_vec()));
        }
        if total >= count_cap {
            break;
        }
    }
    Ok((out, total))
}

fn replay_count(v: &impl View, ws: &str, trigger: &str) -> Result<usize, StoreError> {
    let end = succ(trigger);
    Ok(v.open(REPLAYS)?
        .range((ws, trigger, 0)..(ws, end.as_str(), 0))?
        .count())
}

/// A trigger's event `seq`, if it still has to deliver it.
pub fn get(
    v: &impl View,
    ws: &str,
    trigger: &str,
    seq: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(r) = v.open(REPLAYS)?.get((ws, trigger, seq))? {
        return Ok(Some(r.value().to_vec()));
    }
    if cursor(v, ws, trigger)?.is_none_or(|c| seq <= c) {
        return Ok(None);
    }
    Ok(v.open(EVENTS)?.get((ws, seq))?.and_then(|g| {
        let (listed, event) = names(g.value(), trigger);
        listed.then(|| event.to_vec())
    }))
}

/// Marks the trigger's event `seq` done (delivered or dead-lettered): a
/// replayed one leaves the replay queue, else the cursor moves to it. Only
/// ever called for the first of what [`next`] returned, in order.
pub fn done(t: &Txn, ws: &str, trigger: &str, seq: u64) -> Result<(), StoreError> {
    if t.table(REPLAYS)?.remove((ws, trigger, seq))?.is_some() {
        return Ok(());
    }
    if cursor(t, ws, trigger)?.is_some_and(|c| c < seq) {
        t.table(CURSORS)?.insert((ws, trigger), seq)?;
    }
    Ok(())
}

/// Marks delivered events done, in one cursor write (`seqs`: a prefix of
/// what [`next`] returned, in order).
pub fn done_all(t: &Txn, ws: &str, trigger: &str, seqs: &[u64]) -> Result<(), StoreError> {
    let mut top = None;
    {
        let mut replays = t.table(REPLAYS)?;
        for s in seqs {
            if replays.remove((ws, trigger, *s))?.is_none() {
                top = Some(top.map_or(*s, |m: u64| m.max(*s)));
            }
        }
    }
    if let Some(seq) = top {
        skip_to(t, ws, trigger, seq)?;
    }
    Ok(())
}

/// Moves an idle trigger's cursor to `seq`: nothing up to it names the
/// trigger (it looked), so the events below can go.
pub fn skip_to(t: &Txn, ws: &str, trigger: &str, seq: u64) -> Result<(), StoreError> {
    if cursor(t, ws, trigger)?.is_some_and(|c| c < seq) {
        t.table(CURSORS)?.insert((ws, trigger), seq)?;
    }
    Ok(())
}

/// Removes up to `limit` events of `ws` that every trigger that delivers
/// is past (all of them when it has none), keeping those a disabled
/// trigger still has queued. Returns how many.
pub fn collect(t: &Txn, ws: &str, limit: usize) -> Result<usize, StoreError> {
    let end = succ(ws);
    let disabled: Vec<String> = {
        let st = t.open(TRIGGER_STATE)?;
        let mut out = Vec::new();
        for row in st.range((ws, "")..(end.as_str(), ""))? {
            out.push(row?.0.value().1.to_string());
        }
        out
    };
    let (mut min, mut held): (Option<u64>, Vec<(String, u64)>) = (None, Vec::new());
    for row in t.open(CURSORS)?.range((ws, "")..(end.as_str(), ""))? {
        let (k, v) = row?;
        let (name, c) = (k.value().1.to_string(), v.value());
        if disabled.contains(&name) {
            held.push((name, c));
        } else {
            min = Some(min.map_or(c, |m| m.min(c)));
        }
    }
    let upto = min.unwrap_or(u64::MAX);
    let mut gone = Vec::new();
    {
        let events = t.open(EVENTS)?;
        for row in events.range((ws, 0)..=(ws, upto))? {
            let (k, v) = row?;
            let seq = k.value().1;
            let bytes = v.value();
            let keep = held
                .iter()
                .any(|(name, c)| *c < seq && names(bytes, name).0);
            if !keep {
                gone.push(seq);
                if gone.len() >= limit {
                    break;
                }
            }
        }
    }
    if !gone.is_empty() {
        let mut events = t.table(EVENTS)?;
        for seq in &gone {
            events.remove((ws, *seq))?;
        }
    }
    Ok(gone.len())
}

pub fn dead(
    v: &impl View,
    ws: &str,
    trigger: &str,
    offset: usize,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let end = succ(trigger);
    let table = v.open(DEAD_LETTERS)?;
    let mut out = Vec::new();
    for row in table
        .range((ws, trigger, 0)..(ws, end.as_str(), 0))?
        .skip(offset)
        .take(limit)
    {
        let (k, val) = row?;
        out.push((k.value().2, val.value().to_vec()));
    }
    Ok(out)
}

pub fn dead_count(v: &impl View, ws: &str, trigger: &str) -> Result<usize, StoreError> {
    let end = succ(trigger);
    Ok(v.open(DEAD_LETTERS)?
        .range((ws, trigger, 0)..(ws, end.as_str(), 0))?
        .count())
}

/// Puts a dead letter's event back in front of the trigger's stream.
pub fn requeue(t: &Txn, ws: &str, trigger: &str, seq: u64, row: &[u8]) -> Result<(), StoreError> {
    t.table(REPLAYS)?.insert((ws, trigger, seq), row)?;
    Ok(())
}

pub fn get_dead(
    v: &impl View,
    ws: &str,
    trigger: &str,
    seq: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(DEAD_LETTERS)?
        .get((ws, trigger, seq))?
        .map(|g| g.value().to_vec()))
}

pub fn put_dead(t: &Txn, ws: &str, trigger: &str, seq: u64, row: &[u8]) -> Result<(), StoreError> {
    t.table(DEAD_LETTERS)?.insert((ws, trigger, seq), row)?;
    Ok(())
}

pub fn remove_dead(t: &Txn, ws: &str, trigger: &str, seq: u64) -> Result<bool, StoreError> {
    Ok(t.table(DEAD_LETTERS)?.remove((ws, trigger, seq))?.is_some())
}

/// The attempts made at the trigger's head event.
pub fn delivery(v: &impl View, ws: &str, trigger: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(DELIVERY)?
        .get((ws, trigger))?
        .map(|g| g.value().to_vec()))
}

pub fn put_delivery(t: &Txn, ws: &str, trigger: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(DELIVERY)?.insert((ws, trigger), json)?;
    Ok(())
}

pub fn remove_delivery(t: &Txn, ws: &str, trigger: &str) -> Result<(), StoreError> {
    t.table(DELIVERY)?.remove((ws, trigger))?;
    Ok(())
}

/// Removes a trigger's cursor, replays, dead letters and attempts (it was
/// deleted); the events only it held back go with the next [`collect`].
pub fn drop_trigger(t: &Txn, ws: &str, trigger: &str) -> Result<(), StoreError> {
    let end = succ(trigger);
    t.table(CURSORS)?.remove((ws, trigger))?;
    t.table(REPLAYS)?
        .retain_in((ws, trigger, 0)..(ws, end.as_str(), 0), |_, _| false)?;
    t.table(DEAD_LETTERS)?
        .retain_in((ws, trigger, 0)..(ws, end.as_str(), 0), |_, _| false)?;
    t.table(DELIVERY)?.remove((ws, trigger))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteMode;

    fn count(s: &Store, ws: &str) -> usize {
        let txn = s.read().expect("read");
        let end = succ(ws);
        txn.0
            .open_table(EVENTS)
            .expect("events")
            .range((ws, 0)..(end.as_str(), 0))
            .expect("range")
            .count()
    }

    /// One row per change for all its triggers; each trigger walks the
    /// events that name it in order; an event goes once every trigger is
    /// past it; replays come first; an idle trigger holds back nothing.
    #[tokio::test]
    async fn events_are_shared_walked_per_trigger_and_collected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("store");
        s.write(WriteMode::Exclusive, |t| -> Result<(), StoreError> {
            t.table(OPLOG_SEQ)?.insert("w", 5)?; // changes 1-4 happened before
            for trg in ["a", "b", "idle"] {
                start(t, "w", trg)?;
            }
            assert_eq!(
                cursor(t, "w", "a")?,
                Some(4),
                "a new trigger starts at the latest change"
            );
            put(t, "w", 5, b"msg_5\n{}", &["a", "b"])?;
            put(t, "w", 6, b"msg_6\n{}", &["b"])?;
            put(t, "w", 7, b"msg_7\n{}", &["a"])?;
            Ok(())
        })
        .await
        .expect("write");
        let seqs = |ev: Vec<(u64, Vec<u8>)>| ev.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        let txn = s.read().expect("read");
        let (a, last, more) = next(&txn, "w", "a", 0, 10).expect("next");
        assert_eq!((seqs(a), last, more), (vec![5, 7], 7, false));
        let (b, _, _) = next(&txn, "w", "b", 0, 1).expect("next");
        assert_eq!(
            b[0],
            (5, b"msg_5\n{}".to_vec()),
            "the row without the trigger list"
        );
        assert_eq!(pending(&txn, "w", "b", 0, 10, 100).expect("pending").1, 2);
        drop(txn);
        s.write(WriteMode::Exclusive, |t| -> Result<(), StoreError> {
            done(t, "w", "a", 5)?;
            done(t, "w", "a", 7)?;
            // b and idle still hold event 5 back (idle's cursor is at 4).
            assert_eq!(collect(t, "w", 100)?, 0);
            skip_to(t, "w", "idle", 7)?;
            done(t, "w", "b", 5)?;
            assert_eq!(collect(t, "w", 100)?, 1, "event 5: everyone is past it");
            requeue(t, "w", "b", 2, b"msg_2\n{}")?;
            Ok(())
        })
        .await
        .expect("write");
        assert_eq!(count(&s, "w"), 2);
        let txn = s.read().expect("read");
        let (b, _, _) = next(&txn, "w", "b", 0, 10).expect("next");
        assert_eq!(seqs(b), vec![2], "a replay goes before the stream");
        assert_eq!(get(&txn, "w", "a", 7).expect("get"), None, "done");
        assert!(get(&txn, "w", "b", 6).expect("get").is_some());
        drop(txn);
        s.write(WriteMode::Exclusive, |t| -> Result<(), StoreError> {
            done(t, "w", "b", 2)?;
            drop_trigger(t, "w", "b")?;
            collect(t, "w", 100)?;
            Ok(())
        })
        .await
        .expect("write");
        assert_eq!(count(&s, "w"), 0, "a deleted trigger's events go too");
    }
}
