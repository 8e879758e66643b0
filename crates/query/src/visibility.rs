//! What one session's statements read: the committed store as of the
//! statement's first scan, plus the rows the session's open transaction has
//! written and not yet committed (a transaction reads its own writes).
//!
//! One view per statement means a statement never sees part of another
//! session's commit, even when it reads several tables (READ COMMITTED).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use parking_lot::Mutex;

use tempora_catalog::{TableDef, TableId};
use tempora_storage::{Store, StoreView, TableSnapshot};

#[derive(Debug)]
pub struct SessionReads {
    store: Arc<Store>,
    view: Mutex<Option<Arc<StoreView>>>,
    /// The open transaction's writes, in the order they were made.
    uncommitted: Mutex<Vec<(Arc<TableDef>, RecordBatch)>>,
}

impl SessionReads {
    pub fn new(store: Arc<Store>) -> Arc<SessionReads> {
        Arc::new(SessionReads {
            store,
            view: Mutex::new(None),
            uncommitted: Mutex::new(Vec::new()),
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Forgets the last statement's view: the next scan takes a new one.
    pub fn begin_statement(&self) {
        *self.view.lock() = None;
    }

    /// A table's committed chunks and rows as this statement sees them.
    pub fn table(&self, table_id: TableId) -> Option<TableSnapshot> {
        let view = self
            .view
            .lock()
            .get_or_insert_with(|| Arc::new(self.store.view()))
            .clone();
        view.table(table_id)
    }

    /// Rows of `table_id` the open transaction wrote.
    pub fn uncommitted_rows(&self, table_id: TableId) -> Vec<RecordBatch> {
        self.uncommitted
            .lock()
            .iter()
            .filter(|(table, _)| table.id == table_id)
            .map(|(_, batch)| batch.clone())
            .collect()
    }

    /// Adds rows to the open transaction.
    pub fn stage(&self, table: Arc<TableDef>, batch: RecordBatch) {
        self.uncommitted.lock().push((table, batch));
    }

    /// How many writes the open transaction holds (a savepoint's mark).
    pub fn staged_len(&self) -> usize {
        self.uncommitted.lock().len()
    }

    /// Drops the writes made after a savepoint's mark.
    pub fn truncate_staged(&self, len: usize) {
        self.uncommitted.lock().truncate(len);
    }

    /// Takes every write of the open transaction, to commit or discard them.
    pub fn take_staged(&self) -> Vec<(Arc<TableDef>, RecordBatch)> {
        std::mem::take(&mut *self.uncommitted.lock())
    }
}
