//! The group-commit writer: one thread owns write transactions. It takes the
//! first queued job, drains whatever else is queued (up to [`MAX_GROUP`]) into
//! the same transaction, commits once, and only then answers every job. So
//! concurrent writers share one fsync, and nothing is acknowledged before it
//! is durable.
//!
//! The queue is bounded ([`QUEUE`]): when it is full, submitters wait for room
//! (backpressure); nothing is dropped. A job that fails after it wrote, or
//! panics, must not take its group with it, and redb has no savepoints inside
//! a transaction that has written: so the writer aborts the transaction,
//! answers that job alone with its own error, and runs the rest of the group
//! again in a fresh transaction. Jobs are therefore re-runnable (`FnMut`) and
//! must keep their effects inside the transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::view::Txn;

/// Most jobs committed together.
const MAX_GROUP: usize = 512;

/// Most jobs waiting for the writer; submitters wait beyond that.
const QUEUE: usize = 512;

/// How a write job shares its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Shares a transaction with other jobs. A job that fails after its
    /// first write (or panics) is cut out: the transaction is aborted and
    /// the other jobs run again without it.
    Shared,
    /// Runs in a transaction of its own, aborted if the job returns `Err`.
    Exclusive,
}

/// What the writer needs to know about a job's error.
pub trait JobError: From<StoreError> {
    /// True when the error came from the storage engine mid-write, so the
    /// transaction may hold partial writes and must be aborted.
    fn is_storage(&self) -> bool;
}

impl JobError for StoreError {
    fn is_storage(&self) -> bool {
        true
    }
}

/// How one run of a job went.
enum Outcome {
    /// It succeeded; its writes stand if the transaction commits.
    Done,
    /// It failed before writing anything: its own error is its answer.
    Refused,
    /// It failed after writing (or with a storage error): the transaction
    /// holds part of its work and must not be committed.
    Poisoned,
}

/// A queued job, type-erased. `run` may be called more than once (each time
/// in a fresh transaction); `finish` answers the caller once.
trait Job: Send {
    fn run(&mut self, txn: &WriteTransaction) -> Outcome;
    /// Answers with the last run's result, or `commit`'s error.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct Task<T, E, F> {
    f: F,
    result: Option<Result<T, E>>,
    done: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Job for Task<T, E, F>
where
    T: Send,
    E: JobError + Send,
    F: FnMut(&Txn) -> Result<T, E> + Send,
{
    fn run(&mut self, txn: &WriteTransaction) -> Outcome {
        let txn = Txn::new(txn);
        let result = (self.f)(&txn);
        let outcome = match &result {
            Ok(_) => Outcome::Done,
            Err(e) if e.is_storage() || txn.wrote() => Outcome::Poisoned,
            Err(_) => Outcome::Refused,
        };
        self.result = Some(result);
        outcome
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let out = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (_, Err(c)) => Err(E::from(c)),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(E::from(StoreError::new("the write job never ran"))),
        };
        let _ = self.done.send(out);
    }
}

struct Queued {
    mode: WriteMode,
    job: Box<dyn Job>,
}

#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Queued>,
}

impl Writer {
    pub(super) fn spawn(db: Arc<Database>, generation: Generation) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Queued>(QUEUE);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&db, &generation, rx))
            .map_err(|e| StoreError::new(format!("cannot start the store writer thread: {e}")))?;
        Ok(Writer { tx })
    }

    pub(super) async fn submit<T, E, F>(&self, mode: WriteMode, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: JobError + Send + 'static,
        F: FnMut(&Txn) -> Result<T, E> + Send + 'static,
    {
        let (done, answer) = oneshot::channel::<Result<T, E>>();
        let job = Box::new(Task {
            f,
            result: None,
            done,
        });
        // Waits for room when the queue is full.
        self.tx
            .send(Queued { mode, job })
            .await
            .map_err(|_| E::from(StoreError::new("the store writer has stopped")))?;
        answer
            .await
            .map_err(|_| E::from(StoreError::new("the store writer dropped a job")))?
    }
}

fn begin(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)
        .map_err(StoreError::new)?;
    // Quick repair saves allocator state with each commit and turns on
    // two-phase commit, which does not rely on checksums of untrusted data.
    txn.set_quick_repair(true);
    Ok(txn)
}

/// Runs one job, containing a panic: the writer thread must outlive any job.
/// `Err` carries the panic's message.
fn run_job(job: &mut Box<dyn Job>, txn: &WriteTransaction) -> Result<Outcome, StoreError> {
    catch_unwind(AssertUnwindSafe(|| job.run(txn))).map_err(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        tracing::error!(panic = %what, "a write job panicked; its writes are rolled back");
        StoreError::Panicked(what)
    })
}

fn fail_all(jobs: Vec<Box<dyn Job>>, err: &StoreError) {
    for job in jobs {
        // Each job gets the message; the engine error itself is not `Clone`.
        job.finish(Err(StoreError::new(
            err.to_string().trim_start_matches("storage error: "),
        )));
    }
}

/// Bumped after every commit (see [`super::Store::generation`]), and
/// published to whoever watches commits ([`super::Store::commits`]).
#[derive(Clone)]
pub(super) struct Generation {
    pub(super) count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub(super) watch: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Generation {
    fn default() -> Generation {
        Generation {
            count: Default::default(),
            watch: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

fn committed(generation: &Generation) {
    let n = generation
        .count
        .fetch_add(1, std::sync::atomic::Ordering::Release)
        + 1;
    generation.watch.send_replace(n);
}

fn run(db: &Database, generation: &Generation, mut rx: mpsc::Receiver<Queued>) {
    let mut carry: Option<Queued> = None;
    loop {
        let first = match carry.take() {
            Some(q) => q,
            None => match rx.blocking_recv() {
                Some(q) => q,
                None => return, // every sender dropped: shut down
            },
        };
        if first.mode == WriteMode::Exclusive {
            run_exclusive(db, generation, first.job);
            continue;
        }
        let mut group = vec![first.job];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(q) if q.mode == WriteMode::Shared => group.push(q.job),
                Ok(q) => {
                    carry = Some(q);
                    break;
                }
                Err(_) => break,
            }
        }
        run_shared(db, generation, group);
    }
}

fn run_exclusive(db: &Database, generation: &Generation, mut job: Box<dyn Job>) {
    let txn = match begin(db) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot begin write transaction");
            return job.finish(Err(e));
        }
    };
    match run_job(&mut job, &txn) {
        Ok(Outcome::Done) => {
            let commit = txn.commit().map_err(StoreError::from);
            if commit.is_ok() {
                committed(generation);
            }
            job.finish(commit)
        }
        Ok(Outcome::Refused | Outcome::Poisoned) => {
            let _ = txn.abort();
            job.finish(Ok(()));
        }
        Err(panicked) => {
            let _ = txn.abort();
            job.finish(Err(panicked));
        }
    }
}

/// Runs a group in one transaction. A job that poisons it is answered alone
/// and the transaction aborted; every other job (those that ran before it
/// too, since their reads may have seen its writes) runs again in a fresh
/// one. Each round drops one job, so this ends.
fn run_shared(db: &Database, generation: &Generation, mut jobs: Vec<Box<dyn Job>>) {
    while !jobs.is_empty() {
        let txn = match begin(db) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin write transaction");
                return fail_all(jobs, &e);
            }
        };
        let mut ran = Vec::with_capacity(jobs.len());
        let mut pending = jobs.into_iter();
        let mut culprit = None;
        for mut job in pending.by_ref() {
            match run_job(&mut job, &txn) {
                Ok(Outcome::Done | Outcome::Refused) => ran.push(job),
                Ok(Outcome::Poisoned) => {
                    culprit = Some((job, Ok(())));
                    break;
                }
                Err(panicked) => {
                    culprit = Some((job, Err(panicked)));
                    break;
                }
            }
        }
        let Some((job, answer)) = culprit else {
            // Refused jobs wrote nothing: their own error is their answer,
            // given with the others once the group's fate is known.
            let commit = txn.commit().map_err(StoreError::from);
            return match commit {
                Ok(()) => {
                    committed(generation);
                    ran.into_iter().for_each(|j| j.finish(Ok(())))
                }
                Err(e) => fail_all(ran, &e),
            };
        };
        let _ = txn.abort();
        job.finish(answer);
        jobs = ran.into_iter().chain(pending).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Store, StoreError, tokens};
    use super::{JobError, QUEUE, WriteMode};

    #[derive(Debug)]
    enum TestError {
        Refused,
        Store,
    }

    impl From<StoreError> for TestError {
        fn from(_: StoreError) -> Self {
            TestError::Store
        }
    }

    impl JobError for TestError {
        fn is_storage(&self) -> bool {
            matches!(self, TestError::Store)
        }
    }

    fn put(
        store: &Store,
        key: String,
        refuse: bool,
    ) -> impl Future<Output = Result<(), TestError>> + use<> {
        let store = store.clone();
        async move {
            store
                .write(WriteMode::Shared, move |txn| {
                    if refuse {
                        return Err(TestError::Refused);
                    }
                    tokens::put(txn, &key, b"v")?;
                    Ok(())
                })
                .await
        }
    }

    fn count(store: &Store) -> usize {
        tokens::all(&store.read().expect("read"))
            .expect("scan")
            .len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_and_a_refused_job_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let mut tasks = Vec::new();
        for i in 0..200 {
            tasks.push(tokio::spawn(put(&store, format!("k{i}"), i % 10 == 3)));
        }
        let mut refused = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(()) => {}
                Err(TestError::Refused) => refused += 1,
                Err(TestError::Store) => panic!("no storage error expected"),
            }
        }
        assert_eq!(refused, 20);
        assert_eq!(
            count(&store),
            180,
            "every acknowledged write, no refused one"
        );
    }

    #[tokio::test]
    async fn a_panicking_exclusive_job_fails_alone_and_the_writer_keeps_going() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let r: Result<(), TestError> = store
            .write(WriteMode::Exclusive, |txn| {
                tokens::put(txn, "half", b"v")?;
                panic!("job bug");
            })
            .await;
        assert!(r.is_err());
        put(&store, "after".into(), false)
            .await
            .expect("writer still alive");
        assert_eq!(count(&store), 1, "the panicking job's write was aborted");
    }

    /// Holds the writer thread for a while, so that the jobs submitted
    /// meanwhile queue up and run as one group after it.
    async fn hold_writer(store: &Store, ms: u64) -> tokio::task::JoinHandle<()> {
        let s = store.clone();
        let h = tokio::spawn(async move {
            s.write(WriteMode::Shared, move |_| -> Result<(), TestError> {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(())
            })
            .await
            .expect("holder");
        });
        // Let the writer pick the holder up before anything else queues.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        h
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_beyond_the_queue_waits_and_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let holder = hold_writer(&store, 500).await;
        let n = 3 * QUEUE;
        let tasks: Vec<_> = (0..n)
            .map(|i| tokio::spawn(put(&store, format!("k{i:05}"), false)))
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(
            store.writer.tx.capacity(),
            0,
            "the queue is full: the other submitters wait for room"
        );
        holder.await.expect("holder");
        for t in tasks {
            t.await.expect("task").expect("every job is acknowledged");
        }
        assert_eq!(count(&store), n, "every acknowledged write is there");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_fails_after_writing_leaves_no_trace_and_its_group_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let holder = hold_writer(&store, 300).await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            tasks.push(tokio::spawn(put(&store, format!("k{i}"), i % 10 == 3)));
            if i == 20 {
                let s = store.clone();
                tasks.push(tokio::spawn(async move {
                    s.write(WriteMode::Shared, |txn| {
                        tokens::put(txn, "half", b"v")?;
                        // Not a storage error: before, the writer trusted
                        // that such a job had written nothing.
                        Err(TestError::Refused)
                    })
                    .await
                }));
            }
        }
        holder.await.expect("holder");
        let mut refused = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(()) => {}
                Err(TestError::Refused) => refused += 1,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(refused, 4 + 1, "the refused jobs and the half-written one");
        let snap = store.read().expect("read");
        assert!(tokens::get(&snap, "half").expect("get").is_none());
        assert_eq!(count(&store), 36, "every other job committed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_in_a_group_is_reported_as_a_panic_and_fails_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let holder = hold_writer(&store, 300).await;
        let mut tasks = Vec::new();
        for i in 0..30 {
            tasks.push(tokio::spawn(put(&store, format!("k{i}"), false)));
        }
        let s = store.clone();
        let bad = tokio::spawn(async move {
            s.write(WriteMode::Shared, |txn| -> Result<(), StoreError> {
                tokens::put(txn, "half", b"v")?;
                panic!("job bug");
            })
            .await
        });
        for i in 30..60 {
            tasks.push(tokio::spawn(put(&store, format!("k{i}"), false)));
        }
        holder.await.expect("holder");
        for t in tasks {
            t.await.expect("task").expect("the panic fails nobody else");
        }
        let err = bad
            .await
            .expect("task")
            .expect_err("the panicking job fails");
        assert!(
            matches!(&err, StoreError::Panicked(m) if m == "job bug"),
            "reported as a panic, with its message: {err}"
        );
        let snap = store.read().expect("read");
        assert!(tokens::get(&snap, "half").expect("get").is_none());
        assert_eq!(count(&store), 60);
    }
}
