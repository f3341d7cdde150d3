//! Request coalescing: concurrent misses for one key run one computation. The computation is
//! a spawned task, so a client that goes away does not cancel work that others wait for; it
//! works whether or not the memory tier is on.

use crate::{error::Error, metrics::Roles};
use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};
use tokio::sync::watch;

type Slot<V> = watch::Receiver<Option<Result<V, Error>>>;

#[derive(Debug)]
pub struct Coalescer<V> {
    inflight: Arc<Mutex<HashMap<String, Slot<V>>>>,
    roles: Roles,
}

impl<V> Default for Coalescer<V> {
    fn default() -> Self {
        Coalescer::new(Roles::default())
    }
}

impl<V> Coalescer<V> {
    /// A coalescer counting each caller as the leader that runs a computation or as a
    /// follower that waits for one.
    pub fn new(roles: Roles) -> Self {
        Coalescer {
            inflight: Arc::new(Mutex::new(HashMap::new())),
            roles,
        }
    }
}

impl<V: Clone + Send + Sync + 'static> Coalescer<V> {
    /// Runs `make` once for all concurrent callers with the same `key`; returns its result to
    /// each of them.
    pub async fn run<F, Fut>(&self, key: &str, make: F) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Error>> + Send + 'static,
    {
        let mut rx = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(key) {
                Some(rx) => {
                    self.roles.follower.inc();
                    rx.clone()
                }
                None => {
                    self.roles.leader.inc();
                    let (tx, rx) = watch::channel(None);
                    map.insert(key.to_string(), rx.clone());
                    let (fut, inflight, key) = (make(), self.inflight.clone(), key.to_string());
                    // In the leader's request span: the fill's log lines carry its id.
                    tokio::spawn(tracing::Instrument::in_current_span(async move {
                        let result = fut.await;
                        // Forget the key before publishing, so a caller arriving after the
                        // result starts afresh instead of reading a finished slot.
                        inflight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&key);
                        let _ = tx.send(Some(result));
                    }));
                    rx
                }
            }
        };
        let done = rx.wait_for(Option::is_some).await;
        match done {
            Ok(v) => v
                .clone()
                .unwrap_or_else(|| Err(Error::Internal("empty coalesced result".into()))),
            Err(_) => Err(Error::Internal(
                "coalesced task ended without a result".into(),
            )),
        }
    }

    /// Keys being computed right now.
    pub fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn one_computation_for_many_callers_even_if_some_leave() {
        let c = Arc::new(Coalescer::<u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (c, runs) = (c.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                c.run("k", move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Ok(i)
                })
                .await
            }));
        }
        // Half of the callers go away; the computation goes on for the rest.
        for t in tasks.iter().step_by(2) {
            t.abort();
        }
        let mut results = Vec::new();
        for t in tasks.into_iter().skip(1).step_by(2) {
            results.push(t.await.unwrap().unwrap());
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(c.in_flight(), 0);
        // A later call computes again.
        assert_eq!(c.run("k", || async { Ok(7) }).await.unwrap(), 7);
    }
}
