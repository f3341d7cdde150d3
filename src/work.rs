//! Bounded work (SPEC §6): admission before the fetch, and CPU work on the blocking pool
//! behind permits for a worker and for the memory the job will hold (`transform.memory_bytes`,
//! charged in MiB from `image::footprint`). A job that could never fit is refused (422); one
//! that must wait for memory or a worker waits within `transform.timeout` (then 503). Overload
//! is answered at once with 503 + `Retry-After`, never by queueing without bound or by running
//! out of memory.
//!
//! The permits move **into** the blocking closure: if a request gives up (client gone,
//! `transform.timeout`), the work still holds its permits until it really ends, so the pool is
//! never oversubscribed by abandoned jobs.

use crate::{config::Config, error::Error};
use std::{
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One MiB: the unit of the memory budget.
const MIB: u64 = 1 << 20;

#[derive(Debug)]
pub struct Work {
    queue: Arc<Semaphore>,
    cpu: Arc<Semaphore>,
    workers: usize,
    memory: Arc<Semaphore>,
    memory_units: u32,
    timeout: Duration,
}

impl Work {
    pub fn new(config: &Config) -> Work {
        let workers = config.workers();
        let memory_units = u32::try_from(config.transform.memory_bytes.0 / MIB)
            .unwrap_or(u32::MAX >> 3)
            .max(1);
        Work {
            queue: Arc::new(Semaphore::new(config.transform.queue)),
            cpu: Arc::new(Semaphore::new(workers)),
            workers,
            memory: Arc::new(Semaphore::new(memory_units as usize)),
            memory_units,
            timeout: config.transform.timeout.0,
        }
    }

    /// A place in the queue, taken before the fetch starts and held until the answer is ready.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, Error> {
        self.queue
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Overloaded {
                retry_after: Duration::from_secs(1),
            })
    }

    /// Runs `f` on the blocking pool once a worker and `bytes` of the memory budget are free,
    /// within `transform.timeout`, and says how long it waited for them (the `queue` stage). A
    /// panic inside `f` is caught: the client reads that the work could not be done, the log
    /// gets the payload, the process goes on.
    pub async fn run<T: Send + 'static>(
        &self,
        bytes: u64,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<(T, Duration), Error> {
        let units = u32::try_from(bytes.div_ceil(MIB))
            .unwrap_or(u32::MAX)
            .max(1);
        if units > self.memory_units {
            return Err(Error::OverMemoryBudget);
        }
        let job = async {
            let waiting = Instant::now();
            let budget = self.memory.clone().acquire_many_owned(units).await;
            let cpu = self.cpu.clone().acquire_owned().await;
            let (budget, cpu) = match (budget, cpu) {
                (Ok(b), Ok(c)) => (b, c),
                _ => return Err(Error::Internal("work semaphores closed".into())),
            };
            let queued = waiting.elapsed();
            let handle = tokio::task::spawn_blocking(move || {
                let _held = (budget, cpu);
                std::panic::catch_unwind(AssertUnwindSafe(f))
                    .unwrap_or_else(|p| Err(Error::from_panic(&*p, "in a transform")))
            });
            let value = handle
                .await
                .unwrap_or_else(|_| Err(Error::Internal("transform task lost".into())))?;
            Ok((value, queued))
        };
        tokio::time::timeout(self.timeout, job)
            .await
            .unwrap_or(Err(Error::TransformTimeout))
    }

    /// Requests admitted and not yet answered (for metrics and tests).
    pub fn queued(&self, config: &Config) -> usize {
        config.transform.queue - self.queue.available_permits()
    }

    /// Jobs holding a worker (running, or abandoned by their request and still running).
    pub fn running(&self) -> usize {
        self.workers - self.cpu.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admission_is_bounded_and_panics_are_contained() {
        let mut c = Config::default();
        c.transform.queue = 2;
        c.transform.workers = 1;
        let work = Work::new(&c);
        let a = work.admit().unwrap();
        let _b = work.admit().unwrap();
        assert!(matches!(work.admit(), Err(Error::Overloaded { .. })));
        assert_eq!(work.queued(&c), 2);
        drop(a);
        assert!(work.admit().is_ok());

        let r: Result<((), Duration), Error> = work.run(10, || panic!("decoder bug")).await;
        match r {
            Err(e @ Error::Panicked { .. }) => {
                assert_eq!(e.detail(), Some("panic in a transform: decoder bug"));
                assert_eq!(e.status().as_u16(), 422);
            }
            other => panic!("expected the caught panic, got {other:?}"),
        }
        assert_eq!(work.run(10, || Ok(7)).await.unwrap().0, 7);
        assert_eq!(work.running(), 0);
    }

    #[tokio::test]
    async fn timeout_answers_but_the_permit_stays_with_the_work() {
        let mut c = Config::default();
        c.transform.workers = 1;
        c.transform.timeout = crate::config::Dur(Duration::from_millis(50));
        let work = Work::new(&c);
        let slow = work.run(1, || {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        });
        assert!(matches!(slow.await, Err(Error::TransformTimeout)));
        assert_eq!(
            work.cpu.available_permits(),
            0,
            "the abandoned job still holds its worker"
        );
    }

    #[tokio::test]
    async fn memory_is_charged_a_job_that_never_fits_is_refused_and_one_that_must_wait_waits() {
        let mut c = Config::default();
        c.transform.workers = 2;
        c.transform.memory_bytes = crate::config::Bytes(10 * MIB);
        c.transform.timeout = crate::config::Dur(Duration::from_millis(200));
        let work = Arc::new(Work::new(&c));
        let never = work.run(10 * MIB + 1, || Ok(())).await;
        assert!(matches!(never, Err(Error::OverMemoryBudget)), "{never:?}");
        assert_eq!(work.run(10 * MIB, || Ok(1)).await.unwrap().0, 1);
        // One job holds 8 MiB until told to finish; a 4 MiB job must wait for it.
        let (done, finish) = std::sync::mpsc::channel::<()>();
        let holder = {
            let work = work.clone();
            tokio::spawn(async move {
                work.run(8 * MIB, move || {
                    let _ = finish.recv();
                    Ok(())
                })
                .await
            })
        };
        while work.memory.available_permits() != 2 {
            tokio::task::yield_now().await;
        }
        let waiting = work.run(4 * MIB, || Ok(())).await;
        assert!(
            matches!(waiting, Err(Error::TransformTimeout)),
            "{waiting:?}"
        );
        // The holder may have timed out by now too; its work keeps the memory until it ends.
        done.send(()).unwrap();
        let _ = holder.await.unwrap();
        while work.memory.available_permits() != 10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(work.run(4 * MIB, || Ok(2)).await.unwrap().0, 2);
    }
}
