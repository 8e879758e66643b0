//! The catalog: tables, columns, hypertables, chunks, segments and sequences.
//!
//! The catalog is the durable description of everything that is not row data.
//! It is read as an immutable snapshot ([`CatalogState`], behind an `Arc`) and
//! changed only through [`Catalog::transact`], which applies a closure to a
//! copy of the state, writes the changed entries in one redb transaction
//! (fsynced before it returns) and then publishes the new snapshot.
//!
//! ```text
//!  transact(f) ──> clone state ──> f(&mut CatalogTxn) ──> redb write txn ──fsync──> swap snapshot
//!  snapshot()  ──> Arc<CatalogState> (never changes under the reader)
//! ```
//!
//! Every table's rows live in chunks: a hypertable has one chunk per
//! `chunk_time_interval`, a plain table has exactly one chunk covering all time.
//! Chunks list the immutable segment files that hold their flushed rows; rows
//! not yet flushed are in the WAL and the storage layer's memtables.

mod model;
mod store;

pub use model::*;
pub use store::{Catalog, CatalogTxn};

/// Errors of the catalog layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalog database error: {source}")]
    Database {
        #[from]
        source: redb::Error,
    },
    #[error("catalog entry {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("relation \"{name}\" already exists")]
    TableExists { name: String },
    #[error("relation \"{name}\" does not exist")]
    TableNotFound { name: String },
    #[error("relation \"{name}\" already exists")]
    SequenceExists { name: String },
    /// The catalog changed under a transaction's staged change.
    #[error("could not serialize access due to concurrent update of \"{name}\"")]
    Conflict { name: String },
    #[error("relation \"{name}\" does not exist")]
    SequenceNotFound { name: String },
    /// `which` is "maximum" or "minimum".
    #[error("nextval: reached {which} value of sequence \"{name}\" ({limit})")]
    SequenceExhausted {
        name: String,
        which: &'static str,
        limit: i64,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! from_redb {
    ($($source:ty),*) => {$(
        impl From<$source> for Error {
            fn from(source: $source) -> Self {
                Error::Database { source: source.into() }
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
