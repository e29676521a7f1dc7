//! The group-commit writer: one thread owns write transactions. It takes the
//! first queued job, drains whatever else is queued (up to [`MAX_GROUP`]) into
//! the same transaction, commits once, and only then answers every job. So
//! concurrent writers share one fsync, and nothing is acknowledged before it
//! is durable.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

use super::StoreError;
use super::view::Txn;

/// Most jobs committed together.
const MAX_GROUP: usize = 512;

/// How a write job shares its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Shares a transaction with other jobs. The job must check everything
    /// before its first write: an `Err` must mean it wrote nothing.
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

/// Called once the job's transaction committed (`Ok`) or failed (`Err`).
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

struct Ran {
    completion: Completion,
    /// The job failed.
    failed: bool,
    /// The job failed in a way that may have left partial writes.
    poisoned: bool,
}

type Job = Box<dyn FnOnce(&WriteTransaction) -> Ran + Send>;

struct Queued {
    mode: WriteMode,
    job: Job,
}

#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Queued>,
}

impl Writer {
    pub(super) fn spawn(db: Arc<Database>) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Queued>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&db, &rx))
            .map_err(|e| StoreError::new(format!("cannot start the store writer thread: {e}")))?;
        Ok(Writer { tx })
    }

    pub(super) async fn submit<T, E, F>(&self, mode: WriteMode, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: JobError + Send + 'static,
        F: FnOnce(&Txn) -> Result<T, E> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |txn| {
            let result = f(&Txn(txn));
            let failed = result.is_err();
            let poisoned = matches!(&result, Err(e) if e.is_storage());
            let completion: Completion = Box::new(move |commit| {
                let out = match (result, commit) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(c)) => Err(E::from(c)),
                    (Ok(v), Ok(())) => Ok(v),
                };
                let _ = done_tx.send(out);
            });
            Ran {
                completion,
                failed,
                poisoned,
            }
        });
        self.tx
            .send(Queued { mode, job })
            .map_err(|_| E::from(StoreError::new("the store writer has stopped")))?;
        done_rx
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
/// A panicking job is dropped unanswered (its caller sees an error) and
/// counts as poisoned, since it may have written part of its work.
fn run_job(job: Job, txn: &WriteTransaction) -> Option<Ran> {
    match catch_unwind(AssertUnwindSafe(|| job(txn))) {
        Ok(ran) => Some(ran),
        Err(_) => {
            tracing::error!("a write job panicked; its transaction is aborted");
            None
        }
    }
}

fn fail_all(completions: Vec<Completion>, err: &StoreError) {
    for c in completions {
        // Each job gets the message; the engine error itself is not `Clone`.
        c(Err(StoreError::new(
            err.to_string().trim_start_matches("storage error: "),
        )));
    }
}

fn run(db: &Database, rx: &mpsc::Receiver<Queued>) {
    let mut carry: Option<Queued> = None;
    loop {
        let first = match carry.take() {
            Some(q) => q,
            None => match rx.recv() {
                Ok(q) => q,
                Err(_) => return, // every sender dropped: shut down
            },
        };
        if first.mode == WriteMode::Exclusive {
            run_exclusive(db, first.job);
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
        run_shared(db, group);
    }
}

fn run_exclusive(db: &Database, job: Job) {
    let txn = match begin(db) {
        Ok(t) => t,
        Err(e) => {
            // The job is dropped unrun; its caller gets an error.
            tracing::error!(error = %e, "cannot begin write transaction");
            return;
        }
    };
    let Some(ran) = run_job(job, &txn) else {
        let _ = txn.abort();
        return;
    };
    if ran.failed {
        let _ = txn.abort();
        (ran.completion)(Ok(()));
        return;
    }
    let commit = txn.commit().map_err(StoreError::from);
    (ran.completion)(commit);
}

fn run_shared(db: &Database, group: Vec<Job>) {
    let txn = match begin(db) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot begin write transaction");
            return;
        }
    };
    let mut completions = Vec::with_capacity(group.len());
    let mut failed = Vec::new();
    let mut poisoned = false;
    for job in group {
        let Some(ran) = run_job(job, &txn) else {
            poisoned = true;
            continue;
        };
        poisoned |= ran.poisoned;
        if ran.failed {
            failed.push(ran.completion);
        } else {
            completions.push(ran.completion);
        }
    }
    // Jobs that failed wrote nothing; their own error is their answer.
    for c in failed {
        c(Ok(()));
    }
    if poisoned {
        let _ = txn.abort();
        fail_all(
            completions,
            &StoreError::new("a storage error aborted the transaction; nothing was written"),
        );
        return;
    }
    match txn.commit() {
        Ok(()) => completions.into_iter().for_each(|c| c(Ok(()))),
        Err(e) => fail_all(completions, &StoreError::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Store, StoreError, tokens};
    use super::{JobError, WriteMode};

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
    async fn a_panicking_job_fails_alone_and_the_writer_keeps_going() {
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
}
