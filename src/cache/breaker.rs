//! The shared tier's circuit breaker (SPEC §7): after `threshold` failures in a row the tier is
//! skipped for `window`, then one probe is let through; its success closes the breaker, its
//! failure opens it for another window. Pure state: the caller passes the clock, so the tests
//! step time instead of sleeping.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Calls are skipped until `until`.
    Open { until: Instant },
    /// One probe is out. Should it never report (its request was cancelled), another probe is
    /// let through after `until`, so the breaker cannot stay half-open for ever.
    Probing { until: Instant },
}

/// Consecutive-failure breaker; one per shared tier.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    window: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, window: Duration) -> Breaker {
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            window,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may go to the bucket now; `false` means skip the tier (a miss).
    pub fn admit(&self, now: Instant) -> bool {
        let mut s = self.state();
        match *s {
            State::Closed { .. } => true,
            State::Open { until } | State::Probing { until } if now >= until => {
                *s = State::Probing {
                    until: now + self.window,
                };
                true
            }
            State::Open { .. } | State::Probing { .. } => false,
        }
    }

    /// Reports how an admitted call ended.
    pub fn record(&self, ok: bool, now: Instant) {
        let mut s = self.state();
        *s = match (*s, ok) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            (_, false) => State::Open {
                until: now + self.window,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    #[test]
    fn five_failures_in_a_row_open_it_for_the_window_then_one_probe_passes() {
        let b = Breaker::new(5, WINDOW);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(b.admit(t0));
            b.record(false, t0);
        }
        assert!(b.admit(t0), "four failures leave it closed");
        b.record(false, t0);
        assert!(!b.admit(t0), "the fifth opens it");
        assert!(!b.admit(t0 + WINDOW - Duration::from_millis(1)));
        let later = t0 + WINDOW;
        assert!(b.admit(later), "one probe after the window");
        assert!(!b.admit(later), "only one");
        b.record(true, later);
        assert!(b.admit(later) && b.admit(later), "a good probe closes it");
    }

    #[test]
    fn a_failed_probe_opens_it_for_another_window() {
        let b = Breaker::new(5, WINDOW);
        let t0 = Instant::now();
        for _ in 0..5 {
            b.record(false, t0);
        }
        let t1 = t0 + WINDOW;
        assert!(b.admit(t1));
        b.record(false, t1);
        assert!(!b.admit(t1 + WINDOW / 2));
        assert!(b.admit(t1 + WINDOW));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::new(5, WINDOW);
        let t0 = Instant::now();
        for _ in 0..4 {
            b.record(false, t0);
        }
        b.record(true, t0);
        for _ in 0..4 {
            b.record(false, t0);
        }
        assert!(b.admit(t0), "eight failures, but never five in a row");
    }

    #[test]
    fn a_probe_that_never_reports_does_not_keep_it_half_open() {
        let b = Breaker::new(1, WINDOW);
        let t0 = Instant::now();
        b.record(false, t0);
        assert!(b.admit(t0 + WINDOW)); // the probe, then cancelled: no record
        assert!(!b.admit(t0 + WINDOW + WINDOW / 2));
        assert!(b.admit(t0 + 2 * WINDOW), "another probe");
    }
}
