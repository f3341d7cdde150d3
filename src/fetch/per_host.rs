//! At most `upstream.per_host_concurrency` fetches in flight per origin host, so imgrelay is
//! polite to origins and one slow origin cannot hold every request. Entries of idle hosts are
//! removed, so the map is bounded by the hosts being fetched right now.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub struct HostLimiter {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Held for the duration of one upstream exchange.
#[derive(Debug)]
pub struct HostPermit {
    permit: Option<OwnedSemaphorePermit>,
    host: String,
    limiter: Arc<HostLimiter>,
}

impl HostLimiter {
    pub fn new(per_host: usize) -> Arc<Self> {
        Arc::new(HostLimiter {
            per_host,
            hosts: Mutex::new(HashMap::new()),
        })
    }

    pub async fn acquire(self: &Arc<Self>, host: &str) -> HostPermit {
        let sem = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        let permit = sem.acquire_owned().await.ok();
        HostPermit {
            permit,
            host: host.to_string(),
            limiter: self.clone(),
        }
    }

    /// Hosts with an entry (in flight or waiting).
    #[cfg(test)]
    pub(crate) fn tracked_hosts(&self) -> usize {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for HostPermit {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut hosts = self.limiter.hosts.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map holds the semaphore: nobody is fetching from or waiting for this host.
        if hosts
            .get(&self.host)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            hosts.remove(&self.host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn caps_each_host_and_forgets_idle_ones() {
        let limiter = HostLimiter::new(3);
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (limiter, now, peak) = (limiter.clone(), now.clone(), peak.clone());
                tokio::spawn(async move {
                    let _p = limiter.acquire("a.example").await;
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        let other = limiter.acquire("b.example").await; // another host is not blocked
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(limiter.tracked_hosts(), 1);
        drop(other);
        assert_eq!(limiter.tracked_hosts(), 0);
    }
}
