//! Locks that transaction blocks hold on the tables their DDL changed.
//!
//! DDL inside BEGIN ... COMMIT changes the catalog at once, tentatively (see
//! `transaction`), so a table the block created, altered or dropped must not
//! be read or written by anyone else until the block commits or its changes
//! are undone: rows another session wrote under a definition that an undo
//! then takes back would not fit the table. As PostgreSQL's ACCESS
//! EXCLUSIVE lock does, the block holds the table until it ends and every
//! other session's statement that names the table waits for it; a wait that
//! would close a cycle of sessions waiting for each other fails with 40P01.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use tempora_catalog::TableId;

use crate::error::SqlState;
use crate::{Error, Result};

/// Identifies a session for the locks it holds and waits for.
pub(crate) type SessionId = u64;

#[derive(Default)]
struct LockState {
    holders: HashMap<TableId, SessionId>,
    /// The table each waiting session waits for (a session waits for one
    /// lock at a time).
    waiting: HashMap<SessionId, TableId>,
}

/// The DDL locks of all sessions.
#[derive(Default)]
pub(crate) struct DdlLocks {
    state: Mutex<LockState>,
    released: Notify,
    /// How many locks are held: statements skip the lookup when none is.
    held: AtomicUsize,
}

/// Takes a session out of the wait graph when its wait ends, also when the
/// waiting statement is dropped (its connection closed).
struct Waiting<'a> {
    locks: &'a DdlLocks,
    session: SessionId,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.locks.state.lock().waiting.remove(&self.session);
    }
}

impl DdlLocks {
    /// Waits until no session but `session` holds any of `tables`; with
    /// `take`, then holds them for `session` until [`DdlLocks::release`].
    pub(crate) async fn acquire(
        &self,
        session: SessionId,
        tables: &[TableId],
        take: bool,
    ) -> Result<()> {
        if tables.is_empty() || (!take && self.held.load(Ordering::Acquire) == 0) {
            return Ok(());
        }
        let _waiting = Waiting {
            locks: self,
            session,
        };
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before looking, so a release in between is not missed.
            released.as_mut().enable();
            {
                let mut state = self.state.lock();
                let blocked = tables
                    .iter()
                    .find(|t| state.holders.get(t).is_some_and(|h| *h != session))
                    .copied();
                let Some(table) = blocked else {
                    state.waiting.remove(&session);
                    if take {
                        for table in tables {
                            state.holders.insert(*table, session);
                        }
                        self.held.store(state.holders.len(), Ordering::Release);
                    }
                    return Ok(());
                };
                if Self::closes_cycle(&state, session, table) {
                    state.waiting.remove(&session);
                    return Err(Error::Transaction {
                        code: SqlState::DeadlockDetected,
                        message: "deadlock detected".to_owned(),
                    });
                }
                state.waiting.insert(session, table);
            }
            released.await;
        }
    }

    /// Whether `session` waiting for `table` would wait, through the
    /// holders and what they wait for, for itself.
    fn closes_cycle(state: &LockState, session: SessionId, table: TableId) -> bool {
        let mut holder = state.holders.get(&table).copied();
        // Each step moves to another waiting session; more steps than there
        // are waiters means a cycle that does not include `session`.
        for _ in 0..=state.waiting.len() {
            match holder {
                Some(h) if h == session => return true,
                Some(h) => {
                    holder = state
                        .waiting
                        .get(&h)
                        .and_then(|t| state.holders.get(t).copied())
                }
                None => return false,
            }
        }
        false
    }

    /// Whether any session holds a lock.
    pub(crate) fn any_held(&self) -> bool {
        self.held.load(Ordering::Acquire) > 0
    }

    /// Releases every lock `session` holds and wakes the sessions waiting.
    pub(crate) fn release(&self, session: SessionId) {
        let mut state = self.state.lock();
        let before = state.holders.len();
        state.holders.retain(|_, holder| *holder != session);
        self.held.store(state.holders.len(), Ordering::Release);
        if state.holders.len() != before {
            self.released.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn others_wait_for_a_held_table_and_cycles_fail() {
        let locks = Arc::new(DdlLocks::default());
        locks.acquire(1, &[10], true).await.unwrap();
        // The holder itself passes; so does anyone naming other tables.
        locks.acquire(1, &[10], false).await.unwrap();
        locks.acquire(2, &[11], false).await.unwrap();
        locks.acquire(2, &[11], true).await.unwrap();
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire(2, &[10], false).await })
        };
        // Once session 2 is in the wait graph it waits until the release.
        while !locks.state.lock().waiting.contains_key(&2) {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "session 2 must wait for table 10");
        // Session 1 now waiting for session 2's table would close a cycle.
        let error = locks.acquire(1, &[11], false).await.unwrap_err();
        assert_eq!(error.sqlstate(), SqlState::DeadlockDetected);
        locks.release(1);
        waiter.await.unwrap().unwrap();
        locks.release(2);
        assert_eq!(locks.held.load(Ordering::Acquire), 0);
    }
}
