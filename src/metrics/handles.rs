//! The handles a step keeps into the registry, and what a scrape reads from the running state:
//! the coalescer's role counters, the shared tier's series, the state snapshot. Each also has a
//! detached form (registered nowhere) for a step built outside a server.

use prometheus::{Histogram, HistogramOpts, IntCounter};

#[derive(Debug, Clone)]
pub struct SharedSeries {
    pub get: Histogram,
    pub put: Histogram,
    /// Answers not written to the bucket because the write queue was full.
    pub dropped_writes: IntCounter,
    /// Objects read from the bucket that failed verification (MAC, key, checksum): misses.
    pub unverified: IntCounter,
}

impl Default for SharedSeries {
    /// Series registered nowhere (a tier built outside a server).
    fn default() -> Self {
        let opts = |name: &str| HistogramOpts::new(name, name);
        let histogram = |name| Histogram::with_opts(opts(name)).unwrap_or_else(|_| unreachable!());
        let counter = |name: &str| IntCounter::new(name, name).unwrap_or_else(|_| unreachable!());
        SharedSeries {
            get: histogram("get"),
            put: histogram("put"),
            dropped_writes: counter("dropped_writes"),
            unverified: counter("unverified"),
        }
    }
}

/// Counters of a coalescer: who ran a fill, who waited for another's.
#[derive(Debug, Clone)]
pub struct Roles {
    pub leader: IntCounter,
    pub follower: IntCounter,
}

impl Default for Roles {
    /// Counters registered nowhere (a coalescer built outside a server).
    fn default() -> Self {
        let detached = |name: &str| IntCounter::new(name, name).unwrap_or_else(|_| unreachable!());
        Roles {
            leader: detached("leader"),
            follower: detached("follower"),
        }
    }
}

/// Values read from the running state when a scrape asks.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub queue_depth: usize,
    pub transforms_in_progress: usize,
    pub memory_bytes: u64,
    pub memory_entries: u64,
    pub disk_bytes: u64,
    pub disk_entries: u64,
    /// The shared tier's error totals by `op` (empty while the tier is off).
    pub shared_errors: Vec<(&'static str, u64)>,
}
