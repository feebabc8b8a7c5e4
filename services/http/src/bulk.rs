//! Threads for the CPU-heavy part of large requests, at a lower CPU priority than everything else.
//!
//! Parsing a push of up to 48 MiB of JSON and base64 takes tens of milliseconds of one core. On the runtime's
//! workers it would hold every request queued behind it; on tokio's blocking pool it would still compete for the
//! CPU on equal terms with the workers, so that one user sending large pushes back to back slows every other user's
//! small requests by as much as the machine has cores to give. Here it runs on a few threads of its own (one per
//! core), each with a CPU priority below the rest of the process (`nice` 10 on Linux, where priority is per thread):
//! when the CPU is free they take all of it, and when a small request needs it, the kernel's scheduler gives it that
//! request's worker first. Bulk work yields to interactive work; nothing here is ever starved, only slowed.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::oneshot;

/// How much lower the bulk threads' CPU priority is than the process's: `nice` 10 more, about a tenth of a core's
/// share against a thread of the process that wants it.
#[cfg(target_os = "linux")]
const NICER: i32 = 10;

/// The largest `nice` value: the lowest priority.
#[cfg(target_os = "linux")]
const NICEST: i32 = 19;

type Job = Box<dyn FnOnce() + Send>;

/// The process's bulk threads, started on first use.
fn jobs() -> &'static Mutex<Sender<Job>> {
    static JOBS: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    JOBS.get_or_init(|| {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("synckit-bulk-{i}"))
                .spawn(move || work(&receiver))
                .expect("a thread for bulk work");
        }
        Mutex::new(sender)
    })
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let next = receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            Ok(job) => job(),
            Err(_) => return, // the sender is gone: the process is exiting
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    let me = Some(rustix::thread::gettid());
    // A new thread starts with its creator's priority; `setpriority` takes an absolute value.
    let lowered = rustix::process::getpriority_process(me).map(|now| (now + NICER).min(NICEST));
    if let Err(e) = lowered.and_then(|nice| rustix::process::setpriority_process(me, nice)) {
        tracing::warn!(error = %e, "bulk work runs at the default CPU priority: lowering it failed");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {
    // Elsewhere a process's priority is not per thread: bulk work keeps the default one.
}

/// A bulk job that panicked: the panic's payload.
#[derive(Debug)]
pub struct Panicked(pub Box<dyn Any + Send>);

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message =
            self.0.downcast_ref::<&str>().copied().or_else(|| self.0.downcast_ref::<String>().map(String::as_str));
        write!(f, "bulk work panicked: {}", message.unwrap_or("(no message)"))
    }
}

impl std::error::Error for Panicked {}

/// Runs `job` on a bulk thread and waits for its result without holding a worker. Jobs run in the order they come, as
/// many at once as there are cores.
pub async fn run<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T, Panicked> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        // A request cancelled while its job waited (its client gone, its deadline passed) has given back its memory
        // reservation and its turn: its job must not run unaccounted, ahead of others' work.
        if tx.is_closed() {
            return;
        }
        // The waiter may go while the job runs: the result is then dropped here.
        let _ = tx.send(catch_unwind(AssertUnwindSafe(job)).map_err(Panicked));
    });
    jobs()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(job)
        .expect("the bulk threads run as long as the process");
    rx.await.expect("a bulk job always answers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_reports_panics() {
        assert_eq!(run(|| 6 * 7).await.unwrap(), 42);
        let err = run(|| -> u32 { panic!("bad input") }).await.unwrap_err();
        assert_eq!(err.to_string(), "bulk work panicked: bad input");
        // Every thread still works after one caught a panic.
        for i in 0..8 {
            assert_eq!(run(move || i * 2).await.unwrap(), i * 2);
        }
    }

    /// A request cancelled while its parse waited for a thread (its client gone, its deadline passed) has given back
    /// its memory reservation: its parse must not run afterwards, unaccounted, ahead of other users' work.
    #[tokio::test]
    async fn a_job_whose_request_is_gone_does_not_run() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::time::Duration;

        // Every bulk thread held until told.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (release, released) = channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let busy = Arc::new(AtomicUsize::new(0));
        let holders: Vec<_> = (0..threads)
            .map(|_| {
                let (released, busy) = (released.clone(), busy.clone());
                tokio::spawn(run(move || {
                    busy.fetch_add(1, Ordering::SeqCst);
                    let _ = released.lock().unwrap().recv();
                }))
            })
            .collect();
        while busy.load(Ordering::SeqCst) < threads {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // Queued behind them, then given up on.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let waited = tokio::time::timeout(Duration::from_millis(20), run(move || flag.store(true, Ordering::SeqCst)));
        assert!(waited.await.is_err(), "the job waits while every thread is busy");

        for _ in 0..threads {
            release.send(()).unwrap();
        }
        for holder in holders {
            holder.await.unwrap().unwrap();
        }
        // A job queued after the abandoned one has run: the abandoned one has had its turn.
        run(|| ()).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job ran");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn bulk_threads_run_below_the_default_priority() {
        let (mine, bulk) = (
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap(),
            run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()).await.unwrap(),
        );
        assert_eq!(bulk, (mine + NICER).min(NICEST), "a bulk thread's nice value");
    }
}
