//! The public producer: `send` from any thread, results as futures, blocking
//! waits or callbacks; `flush`, `close`, and a `Drop` that never loses a
//! record silently.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{Backend, DeliveryResult};
use crate::config::ProducerConfig;
use crate::delivery::DeliveryFuture;
use crate::driver::{Driver, DriverConfig, Engine, IoWaker};
use crate::error::{BuildError, SendError};
use crate::metrics::Metrics;
use crate::record::Record;

/// The producer-level delivery callback of [`Producer::try_send`].
pub type DeliveryCallback = Arc<dyn Fn(DeliveryResult) + Send + Sync>;

/// Builds a [`Producer`]. Every setter of [`ProducerConfig`] is available
/// here too (`Producer::builder().bootstrap("127.0.0.1:9092").linger(..)`).
#[derive(Clone, Default)]
pub struct ProducerBuilder {
    pub(crate) config: ProducerConfig,
    pub(crate) on_delivery: Option<DeliveryCallback>,
}

impl std::fmt::Debug for ProducerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("config", &self.config)
            .field("on_delivery", &self.on_delivery.is_some())
            .finish()
    }
}

impl ProducerBuilder {
    /// Start from a whole configuration (for example one made with
    /// [`ProducerConfig::from_properties`]).
    #[must_use]
    pub fn config(mut self, config: ProducerConfig) -> Self {
        self.config = config;
        self
    }

    /// The callback that receives the result of every record sent with
    /// [`Producer::try_send`]. It runs on the I/O thread: keep it short.
    #[must_use]
    pub fn on_delivery(
        mut self,
        callback: impl Fn(DeliveryResult) + Send + Sync + 'static,
    ) -> Self {
        self.on_delivery = Some(Arc::new(callback));
        self
    }
}

/// A Kafka producer. Share it between threads by reference or in an `Arc`;
/// `send` never performs I/O: it appends to a batch and returns.
///
/// Dropping a producer closes it: it waits for every record to get its
/// final result, at most `delivery.timeout.ms` (after which the core has
/// failed every record anyway); records still pending then fail with
/// [`DeliveryError::Aborted`](crate::DeliveryError::Aborted). Call
/// [`close_timeout`](Producer::close_timeout) to choose the bound.
pub struct Producer {
    backend: Arc<dyn Backend>,
    driver: Mutex<Driver>,
    waker: IoWaker,
    metrics: Arc<crate::driver::DriverMetrics>,
    max_block: Duration,
    drop_bound: Duration,
    on_delivery: Option<DeliveryCallback>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// A builder with the Java client's defaults.
    pub fn builder() -> ProducerBuilder {
        ProducerBuilder::default()
    }

    /// Start the I/O thread on `engine` and serve `backend` (the two halves
    /// of the core).
    // Called by the kring-core glue, which lands with the core; tests use it now.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn start<E: Engine>(
        config: &ProducerConfig,
        backend: Arc<dyn Backend>,
        engine: E,
        on_delivery: Option<DeliveryCallback>,
    ) -> Result<Producer, BuildError> {
        let driver = Driver::start(
            engine,
            DriverConfig {
                connect_timeout: config.get_connect_timeout(),
                ..DriverConfig::default()
            },
        )?;
        tracing::debug!(bootstrap = ?config.bootstrap_servers(), "producer started");
        Ok(Producer {
            backend,
            waker: driver.waker().clone(),
            metrics: Arc::clone(driver.metrics()),
            driver: Mutex::new(driver),
            max_block: config.get_max_block(),
            drop_bound: config.get_delivery_timeout() + Duration::from_secs(1),
            on_delivery,
            closed: AtomicBool::new(false),
        })
    }

    fn block_deadline(&self, now: Instant) -> Instant {
        now.checked_add(self.max_block)
            .unwrap_or_else(|| now + Duration::from_secs(86400 * 365))
    }

    /// Send a record. Returns once it is appended to a batch (blocking up
    /// to `max.block.ms` if `buffer.memory` is full); the future resolves
    /// with its final result.
    pub fn send(&self, record: Record) -> Result<DeliveryFuture, SendError> {
        let now = Instant::now();
        let appended = self
            .backend
            .append(now, &record, self.block_deadline(now))?;
        if appended.wake {
            self.waker.wake();
        }
        Ok(DeliveryFuture::new(appended.delivery))
    }

    /// Send a record; `callback` receives its final result on the I/O
    /// thread (keep it short).
    pub fn send_with_callback(
        &self,
        record: Record,
        callback: impl FnOnce(DeliveryResult) + Send + 'static,
    ) -> Result<(), SendError> {
        let now = Instant::now();
        let wake = self.backend.append_with_callback(
            now,
            &record,
            self.block_deadline(now),
            Box::new(callback),
        )?;
        if wake {
            self.waker.wake();
        }
        Ok(())
    }

    /// Fire and forget: the result goes to the producer's
    /// [`on_delivery`](ProducerBuilder::on_delivery) callback; without one,
    /// failures are logged (`tracing` at error level), never dropped
    /// silently.
    pub fn try_send(&self, record: Record) -> Result<(), SendError> {
        match &self.on_delivery {
            Some(cb) => {
                let cb = Arc::clone(cb);
                self.send_with_callback(record, move |r| cb(r))
            }
            None => {
                let topic = record.topic.clone();
                self.send_with_callback(record, move |r| {
                    if let Err(e) = r {
                        tracing::error!(%topic, error = %e, "record not delivered");
                    }
                })
            }
        }
    }

    /// Send every buffered record now (ignoring `linger.ms`) and wait until
    /// every record sent before this call has its final result.
    pub fn flush(&self) {
        let (done, wake) = self.backend.begin_flush();
        if wake {
            self.waker.wake();
        }
        while !done.wait_timeout(Duration::from_secs(3600)) {}
    }

    /// Like [`flush`](Producer::flush), giving up after `timeout`; `true`
    /// when everything completed.
    pub fn flush_timeout(&self, timeout: Duration) -> bool {
        let (done, wake) = self.backend.begin_flush();
        if wake {
            self.waker.wake();
        }
        done.wait_timeout(timeout)
    }

    /// Close: refuse new records, deliver every buffered one, wait for all
    /// results (bounded by `delivery.timeout.ms`, after which the core has
    /// failed whatever is left) and stop the I/O thread.
    pub fn close(&self) {
        self.close_timeout(self.drop_bound);
    }

    /// Close, waiting at most `timeout` for results; records still pending
    /// then fail with [`DeliveryError::Aborted`](crate::DeliveryError::Aborted).
    /// Returns `true` when every record got its result within `timeout`.
    pub fn close_timeout(&self, timeout: Duration) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return true;
        }
        let start = Instant::now();
        let (done, wake) = self.backend.begin_close();
        if wake {
            self.waker.wake();
        }
        let completed = done.wait_timeout(timeout);
        let mut driver = self.driver.lock().unwrap_or_else(|p| p.into_inner());
        if !completed {
            tracing::warn!(
                ?timeout,
                "close timed out; failing the records still pending"
            );
            driver.stop();
        }
        let left = timeout
            .saturating_sub(start.elapsed())
            .max(Duration::from_secs(1));
        if !driver.join_timeout(left) {
            driver.stop();
            driver.join_timeout(Duration::from_secs(10));
        }
        completed
    }

    /// The producer's counters.
    pub fn metrics(&self) -> Metrics {
        Metrics::from_driver(&self.metrics)
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            self.close_timeout(self.drop_bound);
        }
    }
}
