//! Progress reports for one transfer: in order, never backwards, and safe from a report that panics.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::types::{BlobOptions, Progress, ProgressFn};

/// Reports progress for one transfer: `done == 0` first, then only further than ever before (a restarted attempt
/// stays quiet until it gets further), from whichever thread moves the bytes.
#[derive(Clone)]
pub(super) struct Tracker {
    report: Option<Arc<ProgressFn>>,
    total: u64,
    furthest: Arc<Mutex<u64>>,
}

impl Tracker {
    pub(super) fn new(options: &BlobOptions, total: u64) -> Self {
        if let Some(report) = &options.progress {
            report(Progress { done: 0, total });
        }
        Self { report: options.progress.clone(), total, furthest: Arc::new(Mutex::new(0)) }
    }

    /// An attempt got to `done`.
    pub(super) fn reached(&self, done: u64) {
        let Some(report) = &self.report else { return };
        // Held while reporting, so reports from two threads cannot arrive out of order. A report that panicked
        // poisons it; the count it guards is still right, so the transfer goes on.
        let mut furthest = self.furthest.lock().unwrap_or_else(PoisonError::into_inner);
        if done > *furthest {
            *furthest = done;
            report(Progress { done, total: self.total });
        }
    }

    pub(super) fn finished(&self) {
        self.reached(self.total);
    }
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker").field("total", &self.total).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_never_goes_backwards_and_ends_at_the_total() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let options = BlobOptions::default().on_progress(move |p| log.lock().unwrap().push(p.done));
        let tracker = Tracker::new(&options, 100);
        tracker.reached(40);
        tracker.reached(10); // a restarted attempt
        tracker.reached(40);
        tracker.reached(70);
        tracker.reached(100);
        tracker.finished();
        assert_eq!(*seen.lock().unwrap(), [0, 40, 70, 100]);

        // An empty blob starts at its end; a blob with nothing to send jumps there.
        let log = seen.clone();
        let options = BlobOptions::default().on_progress(move |p| log.lock().unwrap().push(p.total - p.done));
        seen.lock().unwrap().clear();
        Tracker::new(&options, 0).finished();
        Tracker::new(&options, 5).finished();
        assert_eq!(*seen.lock().unwrap(), [0, 5, 0]);
    }

    #[test]
    fn a_report_that_panics_does_not_break_later_ones() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let options = BlobOptions::default().on_progress(move |p| {
            assert_ne!(p.done, 40, "the app's bug");
            log.lock().unwrap().push(p.done);
        });
        let tracker = Tracker::new(&options, 100);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tracker.reached(40)));
        assert!(panicked.is_err());
        tracker.reached(70);
        tracker.finished();
        assert_eq!(*seen.lock().unwrap(), [0, 70, 100]);
    }
}
