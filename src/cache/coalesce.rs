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
    /// each of them. However the computation ends (a value, an error, a panic, or its task
    /// dropped at shutdown), the key is released, so the next caller computes afresh.
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
                    let release = Release {
                        inflight: self.inflight.clone(),
                        key: key.to_string(),
                        slot: rx.clone(),
                    };
                    // The computation runs in a task of its own, so a panic in it comes back
                    // here as a `JoinError` carrying the payload instead of unwinding this task;
                    // both run in the leader's request span, so the fill's log lines carry its id.
                    let work = tokio::spawn(tracing::Instrument::in_current_span(make()));
                    tokio::spawn(tracing::Instrument::in_current_span(async move {
                        let result = work.await.unwrap_or_else(|e| Err(failed(e)));
                        // Forget the key before publishing, so a caller arriving after the
                        // result starts afresh instead of reading a finished slot.
                        drop(release);
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
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// Removes its key from the in-flight map when dropped, wherever that happens: after the
/// result, or while unwinding or cancelling the task that owns it. It removes only its own
/// slot, never a newer computation's for the same key.
struct Release<V> {
    inflight: Arc<Mutex<HashMap<String, Slot<V>>>>,
    key: String,
    slot: Slot<V>,
}

impl<V> Drop for Release<V> {
    fn drop(&mut self) {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if map
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.slot))
        {
            map.remove(&self.key);
        }
    }
}

/// The error a computation that did not return becomes; a panic keeps its payload for the log.
fn failed(e: tokio::task::JoinError) -> Error {
    match e.try_into_panic() {
        Ok(payload) => Error::from_panic(&*payload, "while filling the cache"),
        Err(_) => Error::Internal("coalesced computation cancelled".into()),
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

    #[tokio::test]
    async fn a_panicking_fill_releases_its_key() {
        // The key used to stay in the map with a dead slot: every later call was a 500.
        let c = Arc::new(Coalescer::<u32>::default());
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let leader = {
            let c = c.clone();
            tokio::spawn(async move {
                c.run("k", move || async move {
                    let _ = wait.await;
                    panic!("injected fill panic");
                })
                .await
            })
        };
        while c.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let follower = {
            let c = c.clone();
            tokio::spawn(async move { c.run("k", || async { Ok(1) }).await })
        };
        // On this single-threaded runtime the follower now runs until it waits on the slot.
        tokio::task::yield_now().await;
        go.send(()).unwrap();
        for waiter in [leader, follower] {
            match waiter.await.unwrap() {
                Err(Error::Panicked { detail }) => {
                    assert!(detail.contains("injected fill panic"), "{detail}")
                }
                other => panic!("expected the caught panic, got {other:?}"),
            }
        }
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.run("k", || async { Ok(7) }).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn an_erring_fill_releases_its_key() {
        let c = Coalescer::<u32>::default();
        let r = c.run("k", || async { Err(Error::UpstreamTimeout) }).await;
        assert!(matches!(r, Err(Error::UpstreamTimeout)));
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.run("k", || async { Ok(7) }).await.unwrap(), 7);
    }

    #[test]
    fn a_fill_dropped_with_its_runtime_releases_its_key() {
        let c = Coalescer::<u32>::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let started = c.run("k", std::future::pending);
            // Poll once: the computation is spawned and the key taken, then the caller leaves.
            let _ = tokio::time::timeout(std::time::Duration::ZERO, started).await;
            assert_eq!(c.in_flight(), 1);
        });
        drop(rt); // drops the pending computation's tasks, as a shutdown would
        assert_eq!(c.in_flight(), 0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(c.run("k", || async { Ok(7) })).unwrap(), 7);
    }
}
