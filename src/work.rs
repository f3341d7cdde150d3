//! Bounded work (SPEC §6): admission before the fetch, and CPU work on the blocking pool
//! behind permits that account for the decoded size. Overload is answered at once with 503 +
//! `Retry-After`, never by queueing without bound or by running out of memory.
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

/// One megapixel: the unit of the pixel budget.
const MP: u64 = 1_000_000;

#[derive(Debug)]
pub struct Work {
    queue: Arc<Semaphore>,
    cpu: Arc<Semaphore>,
    workers: usize,
    pixels: Arc<Semaphore>,
    pixel_units: u32,
    timeout: Duration,
}

impl Work {
    pub fn new(config: &Config) -> Work {
        let workers = config.workers();
        // Enough pixel budget for every worker to hold one source at the limit at once.
        let per_worker = config.limits.max_source_pixels.div_ceil(MP).max(1);
        let pixel_units = u32::try_from(per_worker * workers as u64).unwrap_or(u32::MAX >> 3);
        Work {
            queue: Arc::new(Semaphore::new(config.transform.queue)),
            cpu: Arc::new(Semaphore::new(workers)),
            workers,
            pixels: Arc::new(Semaphore::new(pixel_units as usize)),
            pixel_units,
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

    /// Runs `f` on the blocking pool once a worker and `pixels` of budget are free, within
    /// `transform.timeout`, and says how long it waited for them (the `queue` stage). A panic
    /// inside `f` is an undecodable image, never a crash.
    pub async fn run<T: Send + 'static>(
        &self,
        pixels: u64,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<(T, Duration), Error> {
        let units = u32::try_from(pixels.div_ceil(MP))
            .unwrap_or(u32::MAX)
            .clamp(1, self.pixel_units);
        let job = async {
            let waiting = Instant::now();
            let budget = self.pixels.clone().acquire_many_owned(units).await;
            let cpu = self.cpu.clone().acquire_owned().await;
            let (budget, cpu) = match (budget, cpu) {
                (Ok(b), Ok(c)) => (b, c),
                _ => return Err(Error::Internal("work semaphores closed".into())),
            };
            let queued = waiting.elapsed();
            let handle = tokio::task::spawn_blocking(move || {
                let _held = (budget, cpu);
                std::panic::catch_unwind(AssertUnwindSafe(f))
                    .unwrap_or(Err(Error::Undecodable("the image could not be decoded")))
            });
            let value = handle
                .await
                .unwrap_or(Err(Error::Undecodable("the image could not be decoded")))?;
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
        assert!(matches!(r, Err(Error::Undecodable(_))));
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
}
