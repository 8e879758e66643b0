//! What one session's statements read: the committed store as of the
//! statement's first scan, plus the rows the session's open transaction has
//! written and not yet committed (a transaction reads its own writes, and
//! does not see the rows it deleted).
//!
//! One view per statement means a statement never sees part of another
//! session's commit, even when it reads several tables (READ COMMITTED).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::Int64Type;
use parking_lot::{MappedMutexGuard, Mutex, MutexGuard};

use tempora_catalog::{ROWID_COLUMN, TableDef, TableId};
use tempora_storage::keys::StagedKeys;
use tempora_storage::{DeleteSet, Store, StoreView, TableSnapshot};

/// One write of an open transaction.
#[derive(Debug, Clone)]
pub enum StagedWrite {
    /// New rows, in the table's storage schema (row ids allocated).
    Insert(Arc<TableDef>, RecordBatch),
    /// Rows to delete: a batch with the row id column (and, for a
    /// hypertable, the time column), as `Store::commit` takes them.
    Delete(Arc<TableDef>, RecordBatch),
    /// `ALTER TABLE old RENAME TO new`: the table (as the catalog has it),
    /// the name the block knew it by, and its new name.
    Rename(Arc<TableDef>, String, String),
}

/// What a name means to a transaction block that may have renamed tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The catalog's relation of this name (the name is not renamed).
    AsIs,
    /// The table the catalog knows by this other name.
    Renamed(String),
    /// A name the block renamed away.
    Hidden,
}

impl StagedWrite {
    pub fn table(&self) -> &Arc<TableDef> {
        match self {
            StagedWrite::Insert(table, _)
            | StagedWrite::Delete(table, _)
            | StagedWrite::Rename(table, ..) => table,
        }
    }
}

/// Inserts of fewer rows than this are gathered (see `SessionReads::stage`).
const SMALL_INSERT_ROWS: usize = 64;

/// Gathered inserts are staged as one batch of at most about this many rows.
const GATHERED_ROWS: usize = 4096;

/// The writes of an open transaction.
#[derive(Debug, Default)]
struct Staged {
    writes: Vec<StagedWrite>,
    /// Small inserts into one table not yet in `writes`, in order: they
    /// come after every write there.
    gathering: Option<(Arc<TableDef>, Vec<RecordBatch>, usize)>,
}

impl Staged {
    /// Every write, the gathered inserts made one.
    fn writes_mut(&mut self) -> &mut Vec<StagedWrite> {
        self.finish_gathering();
        &mut self.writes
    }

    /// Adds a small insert to the gathered ones, if it is into the same
    /// table with the same columns; else it starts a new gathering.
    fn gather(&mut self, table: Arc<TableDef>, batch: RecordBatch) {
        let same = self
            .gathering
            .as_ref()
            .is_some_and(|(gathered, batches, _)| {
                Arc::ptr_eq(gathered, &table) && batches[0].schema() == batch.schema()
            });
        if !same {
            self.finish_gathering();
        }
        let (_, batches, rows) = self.gathering.get_or_insert_with(|| (table, Vec::new(), 0));
        *rows += batch.num_rows();
        batches.push(batch);
        if *rows >= GATHERED_ROWS {
            self.finish_gathering();
        }
    }

    /// Stages the gathered inserts as one batch (as they were, should they
    /// not concatenate).
    fn finish_gathering(&mut self) {
        let Some((table, batches, _)) = self.gathering.take() else {
            return;
        };
        match concat_batches(&batches[0].schema(), &batches) {
            Ok(batch) => self.writes.push(StagedWrite::Insert(table, batch)),
            Err(_) => self.writes.extend(
                batches
                    .into_iter()
                    .map(|batch| StagedWrite::Insert(table.clone(), batch)),
            ),
        }
    }
}

/// A unique index of a table, as the block's staged keys are kept by:
/// table, index name and index columns.
type StagedKeyIndex = (TableId, String, Vec<String>);

#[derive(Debug)]
pub struct SessionReads {
    store: Arc<Store>,
    view: Mutex<Option<Arc<StoreView>>>,
    /// The open transaction's writes, in the order they were made; read
    /// through [`Self::uncommitted`].
    uncommitted: Mutex<Staged>,
    /// How many of `uncommitted` are renames: every statement resolves its
    /// names, and a block of 100 000 INSERTs has none to look through.
    renames: AtomicUsize,
    /// The block's staged keys per (table, index name, index columns), with
    /// how many of `uncommitted` they cover; see [`Self::staged_key_rows`].
    staged_keys: Mutex<HashMap<StagedKeyIndex, (usize, StagedKeys)>>,
    /// The block's staged deletes per table, with how many of
    /// `uncommitted` they cover.
    staged_deleted: Mutex<HashMap<TableId, (usize, DeleteSet)>>,
    /// Rows a statement gives a name for its own query (`excluded` of
    /// INSERT ... ON CONFLICT DO UPDATE).
    bound: Mutex<HashMap<String, RecordBatch>>,
}

/// The row ids of a batch's row id column.
pub fn rowids(batch: &RecordBatch) -> Vec<i64> {
    batch
        .column_by_name(ROWID_COLUMN)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .map(|ids| ids.values().to_vec())
        .unwrap_or_default()
}

impl SessionReads {
    pub fn new(store: Arc<Store>) -> Arc<SessionReads> {
        Arc::new(SessionReads {
            store,
            view: Mutex::new(None),
            uncommitted: Mutex::new(Staged::default()),
            renames: AtomicUsize::new(0),
            staged_keys: Mutex::new(HashMap::new()),
            staged_deleted: Mutex::new(HashMap::new()),
            bound: Mutex::new(HashMap::new()),
        })
    }

    /// Names rows for the statement's queries, until [`Self::unbind_rows`].
    pub fn bind_rows(&self, name: &str, rows: RecordBatch) {
        self.bound.lock().insert(name.to_owned(), rows);
    }

    pub fn unbind_rows(&self, name: &str) {
        self.bound.lock().remove(name);
    }

    /// Rows bound to `name`.
    pub fn bound_rows(&self, name: &str) -> Option<RecordBatch> {
        self.bound.lock().get(name).cloned()
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

    /// Rows of `table_id` the open transaction wrote and still has, in
    /// storage schema.
    pub fn uncommitted_rows(&self, table_id: TableId) -> Vec<RecordBatch> {
        let deleted = self.staged_deletes(table_id);
        let rowid_index = |batch: &RecordBatch| batch.num_columns().saturating_sub(1);
        self.uncommitted()
            .iter()
            .filter_map(|write| match write {
                StagedWrite::Insert(table, batch) if table.id == table_id => {
                    DeleteSet::filter_batch(&[&deleted], batch, rowid_index(batch)).ok()
                }
                _ => None,
            })
            .filter(|b| b.num_rows() > 0)
            .collect()
    }

    /// Whether the open transaction wrote (inserted or deleted) rows of
    /// `table_id`.
    pub fn has_staged_rows(&self, table_id: TableId) -> bool {
        self.uncommitted().iter().any(|write| match write {
            StagedWrite::Insert(table, _) | StagedWrite::Delete(table, _) => table.id == table_id,
            StagedWrite::Rename(..) => false,
        })
    }

    /// Row ids of `table_id` the open transaction deleted. Kept as the
    /// block goes, so a block of many statements does not gather them
    /// from all its writes for each one.
    pub fn staged_deletes(&self, table_id: TableId) -> DeleteSet {
        let uncommitted = self.uncommitted();
        let mut cache = self.staged_deleted.lock();
        let (covered, deleted) = cache.entry(table_id).or_default();
        let ids: Vec<i64> = uncommitted[*covered..]
            .iter()
            .filter_map(|write| match write {
                StagedWrite::Delete(table, batch) if table.id == table_id => Some(rowids(batch)),
                _ => None,
            })
            .flatten()
            .collect();
        deleted.add(ids);
        *covered = uncommitted.len();
        deleted.clone()
    }

    /// For each of `rows`, the row id of the live row the open transaction
    /// staged with its key in unique index `index`: the last one staged
    /// with it (see [`StagedKeys`]), unless `deleted` holds it. The keys
    /// are kept as the block goes: each call adds only the rows staged
    /// since the last one.
    pub fn staged_key_rows(
        &self,
        table: &TableDef,
        index: &str,
        rows: &RecordBatch,
        deleted: &DeleteSet,
    ) -> tempora_storage::Result<Vec<Option<i64>>> {
        let uncommitted = self.uncommitted();
        let mut cache = self.staged_keys.lock();
        let columns = table
            .unique_indexes()
            .find(|i| i.name == index)
            .map(|i| i.columns.clone())
            .unwrap_or_default();
        let entry = match cache.entry((table.id, index.to_owned(), columns)) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert((0, StagedKeys::new(table, index)?))
            }
        };
        for write in &uncommitted[entry.0..] {
            if let StagedWrite::Insert(staged, batch) = write
                && staged.id == table.id
            {
                entry.1.add(batch)?;
            }
        }
        entry.0 = uncommitted.len();
        Ok(entry
            .1
            .find(table, rows)?
            .into_iter()
            .map(|staged| staged.filter(|rowid| !deleted.contains(*rowid)))
            .collect())
    }

    /// Forgets what the caches of staged keys and deletes cover, after the
    /// staged writes were cut back or taken.
    fn forget_staged_caches(&self) {
        self.staged_keys.lock().clear();
        self.staged_deleted.lock().clear();
    }

    /// What `name` means given the open block's renames.
    pub fn resolve(&self, name: &str) -> Resolved {
        if self.renames.load(Ordering::Relaxed) == 0 {
            return Resolved::AsIs;
        }
        // Name as the block sees it -> the catalog's name (None: hidden).
        let mut visible: HashMap<String, Option<String>> = HashMap::new();
        for write in self.uncommitted().iter() {
            if let StagedWrite::Rename(_, old, new) = write {
                let old = old.clone();
                let catalog_name = visible.get(&old).cloned().unwrap_or(Some(old.clone()));
                visible.insert(old, None);
                visible.insert(new.clone(), catalog_name);
            }
        }
        match visible.get(name) {
            None => Resolved::AsIs,
            Some(Some(catalog_name)) if catalog_name == name => Resolved::AsIs,
            Some(Some(catalog_name)) => Resolved::Renamed(catalog_name.clone()),
            Some(None) => Resolved::Hidden,
        }
    }

    /// The name the open block last renamed table `table_id` to, if any.
    pub fn staged_renames_of(&self, table_id: TableId) -> Option<String> {
        if self.renames.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.uncommitted().iter().rev().find_map(|w| match w {
            StagedWrite::Rename(table, _, new) if table.id == table_id => Some(new.clone()),
            _ => None,
        })
    }

    /// Adds a write to the open transaction. Inserts of a few rows into
    /// the same table in a row (a pipeline of single-row INSERTs, as
    /// asyncpg's `executemany` sends) are gathered into one batch.
    pub fn stage(&self, write: StagedWrite) {
        let mut staged = self.uncommitted.lock();
        match write {
            StagedWrite::Insert(table, batch) if batch.num_rows() < SMALL_INSERT_ROWS => {
                staged.gather(table, batch);
            }
            write => {
                if let StagedWrite::Rename(..) = write {
                    self.renames.fetch_add(1, Ordering::Relaxed);
                }
                staged.writes_mut().push(write);
            }
        }
    }

    /// The open transaction's writes, gathered inserts included.
    fn uncommitted(&self) -> MappedMutexGuard<'_, Vec<StagedWrite>> {
        MutexGuard::map(self.uncommitted.lock(), Staged::writes_mut)
    }

    /// How many writes the open transaction holds (a savepoint's mark).
    pub fn staged_len(&self) -> usize {
        self.uncommitted().len()
    }

    /// Drops the writes made after a savepoint's mark.
    pub fn truncate_staged(&self, len: usize) {
        let mut uncommitted = self.uncommitted();
        uncommitted.truncate(len);
        self.forget_staged_caches();
        let renames = uncommitted
            .iter()
            .filter(|w| matches!(w, StagedWrite::Rename(..)))
            .count();
        self.renames.store(renames, Ordering::Relaxed);
    }

    /// Takes every write of the open transaction, to commit or discard them.
    pub fn take_staged(&self) -> Vec<StagedWrite> {
        let mut uncommitted = self.uncommitted();
        self.renames.store(0, Ordering::Relaxed);
        self.forget_staged_caches();
        std::mem::take(&mut *uncommitted)
    }
}

/// A transaction's writes as one commit per table: inserts less the rows
/// the transaction itself deleted again, and deletes of committed rows only.
pub fn net_writes(staged: Vec<StagedWrite>) -> tempora_storage::Result<Vec<NetWrite>> {
    let deleted: Vec<i64> = staged
        .iter()
        .filter_map(|w| match w {
            StagedWrite::Delete(_, batch) => Some(rowids(batch)),
            StagedWrite::Insert(..) | StagedWrite::Rename(..) => None,
        })
        .flatten()
        .collect();
    let deleted = DeleteSet::from_sorted(deleted);
    // Without deletes every insert stands (and filtering by empty sets
    // returns the batch as it is): a block of 100 000 INSERTs gathers no
    // set of their ids.
    // (`DeleteSet` sorts and deduplicates the ids itself.)
    let inserted_set = if deleted.is_empty() {
        DeleteSet::default()
    } else {
        DeleteSet::from_sorted(
            staged
                .iter()
                .filter_map(|w| match w {
                    StagedWrite::Insert(_, batch) => Some(rowids(batch)),
                    StagedWrite::Delete(..) | StagedWrite::Rename(..) => None,
                })
                .flatten()
                .collect(),
        )
    };
    let mut tables: Vec<NetWrite> = Vec::new();
    for write in staged {
        if let StagedWrite::Rename(..) = write {
            continue;
        }
        let index = match tables.iter().position(|(t, _, _)| t.id == write.table().id) {
            Some(index) => index,
            None => {
                tables.push((write.table().clone(), Vec::new(), Vec::new()));
                tables.len() - 1
            }
        };
        let (batch, sets, target) = match &write {
            StagedWrite::Insert(_, batch) => (batch, &deleted, 1),
            StagedWrite::Delete(_, batch) => (batch, &inserted_set, 2),
            StagedWrite::Rename(..) => continue,
        };
        let kept = if sets.is_empty() {
            batch.clone()
        } else {
            let rowid_index = batch.schema().index_of(ROWID_COLUMN)?;
            DeleteSet::filter_batch(&[sets], batch, rowid_index)?
        };
        if kept.num_rows() == 0 {
            continue;
        }
        if target == 1 {
            tables[index].1.push(kept);
        } else {
            tables[index].2.push(kept);
        }
    }
    for (_, inserts, _) in &mut tables {
        *inserts = coalesce(std::mem::take(inserts))?;
    }
    Ok(tables)
}

/// The rows a batch of a commit should reach before it stands alone.
const COALESCED_ROWS: usize = 4096;

/// Joins runs of small batches with one schema into batches of about
/// `COALESCED_ROWS`: a pipeline of 100 000 single-row INSERTs commits as
/// 25 batches, not as 100 000 (each of which the WAL would frame and
/// encode on its own). Batches that size already (a pipeline's parts, a
/// multi-row INSERT) are not copied again. A block that altered its table
/// between INSERTs keeps a run per schema.
fn coalesce(batches: Vec<RecordBatch>) -> tempora_storage::Result<Vec<RecordBatch>> {
    if batches.len() < 2 {
        return Ok(batches);
    }
    let mut out = Vec::new();
    let mut run: Vec<RecordBatch> = Vec::new();
    let mut run_rows = 0;
    let finish = |run: &mut Vec<RecordBatch>, out: &mut Vec<RecordBatch>| {
        match run.len() {
            0 => {}
            1 => out.extend(run.pop()),
            _ => out.push(concat_batches(&run[0].schema(), run.iter())?),
        }
        run.clear();
        Ok::<_, datafusion::arrow::error::ArrowError>(())
    };
    for batch in batches {
        let alone = batch.num_rows() >= COALESCED_ROWS;
        if !run.is_empty() && (alone || !same_schema(&run[0], &batch)) {
            finish(&mut run, &mut out)?;
            run_rows = 0;
        }
        run_rows += batch.num_rows();
        run.push(batch);
        if run_rows >= COALESCED_ROWS {
            finish(&mut run, &mut out)?;
            run_rows = 0;
        }
    }
    finish(&mut run, &mut out)?;
    Ok(out)
}

fn same_schema(a: &RecordBatch, b: &RecordBatch) -> bool {
    let (a, b) = (a.schema(), b.schema());
    Arc::ptr_eq(&a, &b) || a == b
}

/// One table's part of a transaction's commit: (table, inserts, deletes).
pub type NetWrite = (Arc<TableDef>, Vec<RecordBatch>, Vec<RecordBatch>);

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};

    fn batch(schema: &Arc<Schema>, values: std::ops::Range<i64>) -> RecordBatch {
        RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(values))],
        )
        .unwrap()
    }

    #[test]
    fn small_batches_join_and_large_ones_stand_alone() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let other = Arc::new(Schema::new(vec![Field::new("m", DataType::Int64, false)]));
        let mut batches: Vec<RecordBatch> = (0..5000).map(|n| batch(&schema, n..n + 1)).collect();
        batches.push(batch(&schema, 5000..10_000));
        batches.push(batch(&schema, 10_000..10_010));
        batches.push(batch(&other, 0..3));
        batches.push(batch(&schema, 10_010..10_020));
        let joined = coalesce(batches).unwrap();
        let sizes: Vec<usize> = joined.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, vec![4096, 904, 5000, 10, 3, 10]);
        // Rows keep their order.
        let values: Vec<i64> = joined
            .iter()
            .filter(|b| b.schema() == schema)
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(values, (0..10_020).collect::<Vec<_>>());
        assert!(joined.iter().all(|b| b.column(0).null_count() == 0));
    }
}
