//! The sql layer: parses each statement and routes it.
//!
//! ```text
//! SQL text ──sqlparser (PostgreSQL dialect)──> Statement
//!   ├─ CREATE/DROP TABLE, CREATE EXTENSION ─────────> ddl      ─> catalog (+ storage for drops)
//!   ├─ INSERT ──> insert: literal fast path | DataFusion plan ─> validate ─> Store::insert (WAL)
//!   ├─ COPY FROM STDIN / TO STDOUT ─────────────────> copy     ─> Store::insert | query stream
//!   ├─ SELECT create_hypertable(...) and friends ───> timescale ─> catalog / storage
//!   ├─ SET / SHOW ──────────────────────────────────> settings
//!   └─ SELECT / EXPLAIN ─────────────────────────────> DataFusion (tempora_query) ─> record batch stream
//! ```
//!
//! [`Engine`] is shared by all connections; a [`Session`] is one connection's
//! state (settings, its DataFusion context, notices to deliver).

mod alter;
mod blocking;
pub mod cancel;
mod checks;
pub mod copy;
mod ddl;
mod dml;
pub mod error;
mod fast_insert;
mod indexes;
mod insert;
mod locks;
mod names;
mod params;
mod plan_cache;
mod point;
mod rewrite;
pub mod roles;
mod sequences;
mod session;
mod session_functions;
mod settings;
mod timescale;
mod transaction;
mod upsert;
mod views;

use std::path::Path;
use std::sync::Arc;

use tempora_storage::{Store, StoreOptions};

pub use copy::{CopyFormat, CopyIn};
pub use error::{Error, Result, SqlState};
pub use params::{ParamRef, ParamRow, ParamRows};
pub use session::{Notice, Output, Prepared, Session, parse};
pub use settings::SERVER_VERSION;

/// The user sessions run as until authentication names another.
pub const DEFAULT_USER: &str = "postgres";
pub use transaction::TransactionStatus;

/// The database engine shared by every session.
pub struct Engine {
    store: Arc<Store>,
    sequences: sequences::Sequences,
    /// One lock per table, held by an UPDATE or DELETE outside a transaction
    /// block from its scan to its commit: concurrent writers of a table's
    /// rows wait for each other, as PostgreSQL's row locks make them.
    table_locks: parking_lot::Mutex<std::collections::HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// Tables held by transaction blocks whose DDL changed them.
    pub(crate) ddl_locks: locks::DdlLocks,
    /// `pg_advisory_lock` and friends.
    pub(crate) advisory_locks: Arc<session_functions::AdvisoryLocks>,
    /// Sessions by process id, for cancel requests.
    backends: Arc<cancel::Backends>,
    next_session_id: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the data directory, replaying its WAL.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Arc<Engine>> {
        let store = Store::open(data_dir, options)?;
        Ok(Arc::new(Engine {
            sequences: sequences::Sequences::new(store.clone()),
            store,
            table_locks: parking_lot::Mutex::new(std::collections::HashMap::new()),
            ddl_locks: locks::DdlLocks::default(),
            advisory_locks: Arc::default(),
            backends: Arc::default(),
            next_session_id: std::sync::atomic::AtomicU64::new(1),
        }))
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The role `name`, if it exists.
    pub fn role(&self, name: &str) -> Option<tempora_catalog::RoleDef> {
        self.store.catalog().snapshot().role(name)
    }

    /// Sets a role's password (the superuser's from `TEMPORA_PASSWORD` at
    /// start), storing its SCRAM verifier.
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let mut role = self.role(name).ok_or_else(|| Error::Transaction {
            code: SqlState::UndefinedObject,
            message: format!("role \"{name}\" does not exist"),
        })?;
        role.password_verifier = Some(roles::scram_verifier(password)?);
        self.store.catalog().transact(|txn| {
            txn.put_role(role);
            Ok(())
        })?;
        Ok(())
    }

    /// The sessions by process id (CancelRequest, `pg_cancel_backend`).
    pub fn backends(&self) -> &Arc<cancel::Backends> {
        &self.backends
    }

    /// The lock UPDATE and DELETE of one table take (see `table_locks`).
    pub(crate) fn table_lock(&self, table_id: u64) -> Arc<tokio::sync::Mutex<()>> {
        self.table_locks.lock().entry(table_id).or_default().clone()
    }

    /// A new session (one client connection).
    pub fn session(self: &Arc<Engine>) -> Session {
        let id = self
            .next_session_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Session::new(self.clone(), id)
    }

    /// Flushes memtables to segment files; called on clean shutdown so the next
    /// start has little WAL to replay.
    pub fn checkpoint(&self) -> Result<()> {
        Ok(self.store.checkpoint()?)
    }
}
