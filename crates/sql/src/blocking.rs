//! Storage calls that hold their thread: a key lookup, a page read, a
//! commit's WAL write and fsync.
//!
//! On the server's multi-thread runtime the calling task does the work on
//! its own thread, and tokio hands that thread's other tasks to another
//! worker meanwhile (`block_in_place`). A point UPDATE then waits for no
//! other thread to be woken and scheduled, twice, as it would with
//! `spawn_blocking`: on a small virtual machine those wake-ups were most of
//! the statement's time. Elsewhere (a current-thread runtime, as unit tests
//! use) the work goes to tokio's blocking pool.

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::{Error, Result};

/// Runs `work`, which may block, for the calling task; `what` names it in
/// the error if the blocking pool's task fails.
pub(crate) async fn run<T, F>(what: &str, work: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let multi_thread =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi_thread {
        // A panic ends the statement with an error, as a panicking
        // `spawn_blocking` task does, not the connection's task.
        return tokio::task::block_in_place(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        })
        .map_err(|panic| {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            Error::Internal {
                message: format!("{what} failed: {reason}"),
            }
        });
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal {
            message: format!("{what} failed: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::run;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_runs_on_the_calling_thread_of_a_multi_thread_runtime() {
        let caller = std::thread::current().id();
        let ran_on = run("test", || std::thread::current().id()).await.unwrap();
        assert_eq!(ran_on, caller);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_the_work_is_an_error_of_the_statement() {
        let error = run("key lookup", || -> () { panic!("broken page") })
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "key lookup failed: broken page");
        assert_eq!(error.sqlstate().code(), "XX000");
    }

    #[tokio::test]
    async fn work_goes_to_the_blocking_pool_on_a_current_thread_runtime() {
        let caller = std::thread::current().id();
        let ran_on = run("test", || std::thread::current().id()).await.unwrap();
        assert_ne!(ran_on, caller);
    }
}
