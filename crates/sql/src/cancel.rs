//! Canceling a running statement: a CancelRequest from the client (psql's
//! Ctrl-C), `pg_cancel_backend(pid)` from another session, or the
//! session's `statement_timeout`.
//!
//! Each session has a [`Cancel`]; the [`Backends`] registry finds it by
//! process id. A request only marks the running statement canceled and
//! wakes what waits for it; the statement notices at safe points: a read
//! between result batches (and while it waits for one), a lock wait, and a
//! write before its commit. A write that has begun to commit is not
//! interrupted: an acknowledged commit must not be reported as canceled, and
//! a canceled one must not be half there. Errors are 57014, as PostgreSQL
//! reports them.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use futures::{FutureExt, Stream};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::{Error, Result};

const NONE: u8 = 0;
const BY_USER: u8 = 1;
const BY_TIMEOUT: u8 = 2;

/// One session's cancel state.
#[derive(Debug, Default)]
pub struct Cancel {
    reason: AtomicU8,
    running: AtomicBool,
    notify: Notify,
}

impl Cancel {
    /// Cancels the running statement, if there is one.
    pub fn request(&self) -> bool {
        self.fire(BY_USER)
    }

    fn fire(&self, reason: u8) -> bool {
        if !self.running.load(Ordering::Acquire) {
            return false;
        }
        let _ = self
            .reason
            .compare_exchange(NONE, reason, Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_waiters();
        true
    }

    /// The error of a canceled statement, or Ok.
    pub(crate) fn check(&self) -> Result<()> {
        match self.reason.load(Ordering::Acquire) {
            NONE => Ok(()),
            BY_TIMEOUT => Err(Error::Canceled {
                message: "canceling statement due to statement timeout".to_owned(),
            }),
            _ => Err(Error::Canceled {
                message: "canceling statement due to user request".to_owned(),
            }),
        }
    }

    /// Resolves once the running statement is canceled.
    pub(crate) async fn canceled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reason.load(Ordering::Acquire) != NONE {
                return;
            }
            notified.await;
        }
    }

    /// A statement starts: earlier requests no longer apply, and the
    /// timeout (if any) runs until the returned guard is dropped.
    pub(crate) fn start(self: &Arc<Self>, timeout: Option<Duration>) -> Running {
        self.reason.store(NONE, Ordering::Release);
        self.running.store(true, Ordering::Release);
        let timer = timeout.map(|timeout| {
            let cancel = Arc::downgrade(self);
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                if let Some(cancel) = cancel.upgrade() {
                    cancel.fire(BY_TIMEOUT);
                }
            })
        });
        Running {
            cancel: self.clone(),
            timer,
        }
    }
}

/// A running statement; dropping it ends the statement (and its timeout).
#[derive(Debug)]
pub(crate) struct Running {
    cancel: Arc<Cancel>,
    timer: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        self.cancel.running.store(false, Ordering::Release);
    }
}

/// A result stream that ends with 57014 once its statement is canceled,
/// also while it waits for its next batch; the statement runs as long as
/// the stream lives.
pub(crate) struct CancelableStream {
    inner: SendableRecordBatchStream,
    running: Running,
    canceled: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    done: bool,
}

impl CancelableStream {
    pub(crate) fn new(inner: SendableRecordBatchStream, running: Running) -> Self {
        let cancel = running.cancel.clone();
        CancelableStream {
            inner,
            canceled: Box::pin(async move { cancel.canceled().await }),
            running,
            done: false,
        }
    }
}

impl Stream for CancelableStream {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.canceled.poll_unpin(cx).is_ready() || self.running.cancel.check().is_err() {
            self.done = true;
            let error = self
                .running
                .cancel
                .check()
                .err()
                .unwrap_or(Error::Canceled {
                    message: "canceling statement due to user request".to_owned(),
                });
            return Poll::Ready(Some(Err(DataFusionError::External(Box::new(error)))));
        }
        self.inner.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for CancelableStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// A session as a cancel request finds it: its secret key and its state.
#[derive(Debug)]
struct Backend {
    secret: Vec<u8>,
    cancel: Weak<Cancel>,
}

/// The sessions by process id, for CancelRequest and `pg_cancel_backend`.
#[derive(Debug, Default)]
pub struct Backends {
    sessions: Mutex<HashMap<i32, Backend>>,
}

impl Backends {
    pub(crate) fn register(&self, pid: i32, secret: Vec<u8>, cancel: &Arc<Cancel>) {
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, b| b.cancel.strong_count() > 0);
        sessions.insert(
            pid,
            Backend {
                secret,
                cancel: Arc::downgrade(cancel),
            },
        );
    }

    /// A CancelRequest: cancels the statement of the session with this
    /// process id and secret key, if it runs one.
    pub fn cancel_request(&self, pid: i32, secret: &[u8]) -> bool {
        let cancel = match self.sessions.lock().get(&pid) {
            Some(backend) if backend.secret.as_slice() == secret => backend.cancel.upgrade(),
            _ => None,
        };
        cancel.is_some_and(|c| c.request())
    }

    /// `pg_cancel_backend(pid)`: whether the session exists.
    pub(crate) fn cancel(&self, pid: i32) -> bool {
        let cancel = self
            .sessions
            .lock()
            .get(&pid)
            .and_then(|b| b.cancel.upgrade());
        match cancel {
            Some(cancel) => {
                cancel.request();
                true
            }
            None => false,
        }
    }
}

/// `statement_timeout`'s value (`0`, `5000` milliseconds, `5s`, `1min`);
/// None for no timeout.
pub(crate) fn parse_timeout(value: &str) -> Result<Option<Duration>> {
    let value = value.trim().trim_matches('\'');
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let invalid = || Error::InvalidParameter {
        message: format!("invalid value for parameter \"statement_timeout\": \"{value}\""),
    };
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let millis = match unit.trim() {
        "" | "ms" => number,
        "us" => number / 1000.0,
        "s" => number * 1000.0,
        "min" => number * 60_000.0,
        "h" => number * 3_600_000.0,
        "d" => number * 86_400_000.0,
        _ => return Err(invalid()),
    };
    Ok((millis >= 1.0).then(|| Duration::from_millis(millis as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_like_postgres() {
        assert_eq!(parse_timeout("0").unwrap(), None);
        assert_eq!(
            parse_timeout("250").unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_timeout("2s").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_timeout("'1min'").unwrap(),
            Some(Duration::from_secs(60))
        );
        assert!(parse_timeout("soon").is_err());
    }

    #[tokio::test]
    async fn only_a_running_statement_is_canceled() {
        let cancel = Arc::new(Cancel::default());
        assert!(!cancel.request(), "nothing runs");
        let running = cancel.start(None);
        assert!(cancel.check().is_ok());
        assert!(cancel.request());
        cancel.canceled().await;
        assert!(matches!(cancel.check(), Err(Error::Canceled { .. })));
        drop(running);
        let _next = cancel.start(None);
        assert!(cancel.check().is_ok(), "a new statement starts clean");
    }
}
