//! What the runtime keeps per endpoint, in one map: its concurrency gate,
//! its tool set, its config JSON and its log. One map means one eviction:
//! when an endpoint (or its workspace) is deleted, [`Registry::forget`]
//! drops everything at once.
//!
//! An [`Entry`] is for one incarnation of a workspace/slug (its
//! `created_at`): a call holds the entry it started with until it ends, so
//! what it builds or logs after its endpoint is deleted goes away with it
//! instead of reaching an endpoint made later under the same name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::lock;
use super::logs::Log;
use super::tools::ToolSet;
use crate::service::endpoints::Endpoint;

/// (workspace, slug).
pub(super) type EndpointKey = (String, String);

/// One endpoint's state in the runtime.
pub(crate) struct Entry {
    /// Which incarnation of the name this entry is for.
    created_at: String,
    pub(super) gate: Gate,
    /// The tool set, for the revision and schemas it was built for.
    pub(super) tool_set: Mutex<Option<Arc<ToolSet>>>,
    /// The config as JSON, for the revision it was made for.
    pub(super) config: Mutex<Option<(u64, Arc<str>)>>,
    pub(super) log: Log,
}

impl Entry {
    /// An entry in no map: for a candidate revision being checked and for
    /// the upload probe, whose output must not land in a real endpoint's
    /// log (a user may well have an endpoint named `upload`) and whose
    /// calls must not take a real endpoint's slots.
    pub(super) fn detached(max_concurrency: u32) -> Arc<Entry> {
        Arc::new(Entry::new(String::new(), max_concurrency))
    }

    fn new(created_at: String, max_concurrency: u32) -> Entry {
        Entry {
            created_at,
            gate: Gate::new(max_concurrency),
            tool_set: Mutex::default(),
            config: Mutex::default(),
            log: Log::default(),
        }
    }
}

/// Every stored endpoint the runtime has served since it was last changed
/// away.
#[derive(Default)]
pub(super) struct Registry {
    entries: Mutex<HashMap<EndpointKey, Arc<Entry>>>,
}

impl Registry {
    /// The entry of `endpoint` (made anew if its name now belongs to
    /// another incarnation), with its gate sized for this revision's cap.
    pub(super) fn entry(&self, endpoint: &Endpoint, max_concurrency: u32) -> Arc<Entry> {
        let key = (endpoint.workspace_id.clone(), endpoint.slug.clone());
        let entry = {
            let mut map = lock(&self.entries);
            match map.get(&key) {
                Some(e) if e.created_at == endpoint.created_at => e.clone(),
                _ => {
                    let e = Arc::new(Entry::new(endpoint.created_at.clone(), max_concurrency));
                    map.insert(key, e.clone());
                    e
                }
            }
        };
        entry.gate.resize(max_concurrency);
        entry
    }

    /// The entry of a stored endpoint, if the runtime has one.
    pub(super) fn get(&self, ws: &str, slug: &str) -> Option<Arc<Entry>> {
        lock(&self.entries)
            .get(&(ws.to_string(), slug.to_string()))
            .cloned()
    }

    /// Drops an endpoint's entry; calls in flight keep theirs to the end.
    pub(super) fn forget(&self, ws: &str, slug: &str) {
        lock(&self.entries).remove(&(ws.to_string(), slug.to_string()));
    }

    /// Keeps only the entries `alive` says still exist (workspace, slug,
    /// created_at): for when endpoint changes were missed.
    pub(super) fn retain(&self, mut alive: impl FnMut(&str, &str, &str) -> bool) {
        lock(&self.entries).retain(|(ws, slug), e| alive(ws, slug, &e.created_at));
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

/// An endpoint's concurrency cap: one semaphore for the endpoint's life,
/// resized when a revision changes `max_concurrency`. Replacing it instead
/// would let the calls holding permits of the old one run beside a full
/// set of new ones, so alternating revisions had no cap at all.
pub(super) struct Gate {
    semaphore: Arc<Semaphore>,
    size: Mutex<Size>,
}

#[derive(Debug)]
struct Size {
    max: u32,
    /// Permits still to be taken away after a shrink: held by running calls,
    /// they are forgotten as those calls end instead of being returned.
    debt: u32,
}

impl Gate {
    fn new(max: u32) -> Gate {
        Gate {
            semaphore: Arc::new(Semaphore::new(max as usize)),
            size: Mutex::new(Size { max, debt: 0 }),
        }
    }

    /// Sets the cap to `max`: growing adds permits (after paying off any
    /// debt), shrinking takes the free ones away now and the held ones as
    /// they come back.
    fn resize(&self, max: u32) {
        let mut size = lock(&self.size);
        if size.max == max {
            return;
        }
        if max > size.max {
            let grow = max - size.max;
            let paid = grow.min(size.debt);
            size.debt -= paid;
            self.semaphore.add_permits((grow - paid) as usize);
        } else {
            let shrink = size.max - max;
            let taken = self.semaphore.forget_permits(shrink as usize) as u32;
            size.debt += shrink - taken;
        }
        size.max = max;
    }

    /// The cap now.
    pub(super) fn max(&self) -> u32 {
        lock(&self.size).max
    }

    pub(super) fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().try_acquire_owned().ok()
    }

    pub(super) async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().acquire_owned().await.ok()
    }

    /// Returns a permit, or forgets it while the gate owes permits.
    fn release(&self, permit: OwnedSemaphorePermit) {
        let mut size = lock(&self.size);
        if size.debt > 0 {
            size.debt -= 1;
            permit.forget();
        } else {
            drop(permit);
        }
    }
}

/// A running call's place in its endpoint's gate.
pub(super) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    entry: Arc<Entry>,
}

impl Slot {
    pub(super) fn new(entry: Arc<Entry>, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            permit: Some(permit),
            entry,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.entry.gate.release(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;

    fn held(g: &Gate, n: usize) -> Vec<tokio::sync::OwnedSemaphorePermit> {
        (0..n).map_while(|_| g.try_acquire()).collect()
    }

    #[test]
    fn a_shrunk_gate_takes_back_held_permits_as_they_return() {
        let g = Gate::new(3);
        let mut running = held(&g, 3);
        g.resize(1);
        assert!(g.try_acquire().is_none());
        // Two of the three come back: both are taken away.
        g.release(running.pop().expect("held"));
        g.release(running.pop().expect("held"));
        assert!(
            g.try_acquire().is_none(),
            "one call still runs; the cap is 1"
        );
        g.release(running.pop().expect("held"));
        let one = held(&g, 5);
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn alternating_sizes_never_exceed_the_larger() {
        let g = Gate::new(1);
        let mut running = held(&g, 10);
        for max in [2, 1, 2, 1, 2] {
            g.resize(max);
            running.extend(held(&g, 10));
        }
        assert_eq!(running.len(), 2, "cap 2 at most, whatever the order");
        g.resize(1);
        for p in running.drain(..) {
            g.release(p);
        }
        let one = held(&g, 10);
        assert_eq!(one.len(), 1);
        g.resize(4);
        assert_eq!(held(&g, 10).len(), 3, "with the one still held, 4 in all");
    }
}
