//! Unique keys: for each unique index of a table, the key values of its live
//! rows mapped to the row (id and chunk) holding them.
//!
//! A columnar store keeps no B-tree over its rows, so the store enforces
//! PRIMARY KEY and UNIQUE with this index instead. It lives in memory and is
//! derived data: the rows (WAL and segments) stay the only truth, and the
//! index is built from them the first time a commit or lookup needs it after
//! a start, or after a change that moves rows (ALTER TABLE's rewrite, a
//! dropped chunk). Keys are the rows' key columns in Arrow's row format,
//! which compares as the values do; a key with a NULL column is not indexed,
//! since NULLs are distinct from each other in PostgreSQL's unique indexes.
//!
//! A commit checks its rows' keys and enters them under the table's key lock,
//! then writes its WAL record without it (so commits to one table still share
//! fsyncs), and marks its rows pending until they are applied. A check or
//! lookup that meets a pending row waits for its commit to finish, as
//! PostgreSQL waits for the inserting transaction, and then decides.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use parking_lot::{Condvar, Mutex, MutexGuard};

use tempora_catalog::{ChunkId, IndexDef, ROWID_COLUMN, TableDef, quote_ident};
use tempora_types::text::format_value;

use crate::{Error, Result};

/// Where a key's row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef {
    pub rowid: i64,
    pub chunk: ChunkId,
}

/// One unique index of a table.
struct KeyIndex {
    name: String,
    columns: Vec<String>,
    converter: RowConverter,
    entries: HashMap<Box<[u8]>, RowRef>,
}

impl KeyIndex {
    fn new(table: &TableDef, index: &IndexDef) -> Result<KeyIndex> {
        let fields = index
            .columns
            .iter()
            .map(|name| {
                let column = table
                    .column_index(name)
                    .ok_or_else(|| Error::SchemaMismatch {
                        table: table.name.clone(),
                        reason: format!("key column \"{name}\" is not a column"),
                    })?;
                Ok(SortField::new(table.columns[column].pg_type.arrow_type()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KeyIndex {
            name: index.name.clone(),
            columns: index.columns.clone(),
            converter: RowConverter::new(fields)?,
            entries: HashMap::new(),
        })
    }

    /// The batch's key columns, or None when it lacks one of them.
    fn key_columns(&self, batch: &RecordBatch) -> Option<Vec<ArrayRef>> {
        self.columns
            .iter()
            .map(|c| batch.column_by_name(c).cloned())
            .collect()
    }

    /// The rows' keys in row format, to look up without copying each one
    /// out; [`has_null`] tells which are not keys.
    fn key_rows(&self, columns: &[ArrayRef]) -> Result<Rows> {
        Ok(self.converter.convert_columns(columns)?)
    }

    /// Each row's key, None for a key with a NULL.
    fn keys(&self, columns: &[ArrayRef]) -> Result<Vec<Option<Box<[u8]>>>> {
        let rows = self.converter.convert_columns(columns)?;
        Ok((0..rows.num_rows())
            .map(|row| {
                if columns.iter().any(|c| c.is_null(row)) {
                    None
                } else {
                    Some(rows.row(row).as_ref().into())
                }
            })
            .collect())
    }
}

/// Whether row `row`'s key has a NULL column (and so is no key).
fn has_null(columns: &[ArrayRef], row: usize) -> bool {
    columns.iter().any(|c| c.null_count() > 0 && c.is_null(row))
}

/// The key values of one row as PostgreSQL's DETAIL shows them:
/// `(a, b)=(1, x)`.
fn describe_key(columns: &[String], values: &[ArrayRef], row: usize, table: &TableDef) -> String {
    let mut texts = Vec::with_capacity(values.len());
    for (name, array) in columns.iter().zip(values) {
        let mut text = String::new();
        let pg_type = table.column_index(name).map(|i| table.columns[i].pg_type);
        match pg_type.map(|t| format_value(array.as_ref(), row, t, &mut text)) {
            Some(Ok(true)) => texts.push(text),
            _ => texts.push("null".to_owned()),
        }
    }
    let names: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    format!("({})=({})", names.join(", "), texts.join(", "))
}

/// The key indexes of one table.
pub(crate) struct TableKeys {
    /// The table definition the indexes were built for.
    table: Arc<TableDef>,
    indexes: Vec<KeyIndex>,
    /// Rows entered or removed by commits that have not been applied yet.
    pending: HashSet<i64>,
    /// Commits between their check and their apply.
    pending_commits: usize,
}

/// A table's key indexes behind its key lock, None until built.
#[derive(Default)]
pub(crate) struct KeySlot {
    keys: Mutex<Option<TableKeys>>,
    /// Signalled whenever a commit's pending rows settle.
    settled: Condvar,
}

/// What a commit should do with rows whose key is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Fail with a unique violation (23505).
    #[default]
    Error,
    /// Leave such rows out (`ON CONFLICT DO NOTHING`), for any unique index
    /// or for the one named.
    Skip,
    SkipOn(usize),
}

/// One change to an index, to undo if the commit fails.
struct Undo {
    index: usize,
    key: Box<[u8]>,
    previous: Option<RowRef>,
}

/// A commit's entries in one table's key indexes, until it is applied.
pub(crate) struct Registration {
    slot: Arc<KeySlot>,
    rows: Vec<i64>,
    undo: Vec<Undo>,
    /// An index lost track of deleted rows (they came without key columns)
    /// and must be rebuilt once this commit is applied.
    stale: bool,
}

impl KeySlot {
    /// The table's indexes, built from `rows` (the table's live rows, as
    /// `(chunk, batch)` in storage schema) if missing or made for another
    /// definition. Waits until no commit is pending before building.
    pub(crate) fn lock<'a>(
        &'a self,
        table: &Arc<TableDef>,
        rows: impl Fn() -> Result<Vec<(ChunkId, RecordBatch)>>,
    ) -> Result<MutexGuard<'a, Option<TableKeys>>> {
        let mut guard = self.keys.lock();
        loop {
            let current = guard.as_ref().is_some_and(|k| {
                k.table.columns == table.columns && k.table.indexes == table.indexes
            });
            if current {
                return Ok(guard);
            }
            if guard.as_ref().is_some_and(|k| k.pending_commits > 0) {
                self.settled.wait(&mut guard);
                continue;
            }
            *guard = Some(build(table, rows()?)?);
            return Ok(guard);
        }
    }
}

/// Builds a table's key indexes from its live rows; a duplicate key fails
/// with the violation (the index name and the duplicated key).
pub(crate) fn build(table: &Arc<TableDef>, rows: Vec<(ChunkId, RecordBatch)>) -> Result<TableKeys> {
    let mut indexes = table
        .unique_indexes()
        .map(|i| KeyIndex::new(table, i))
        .collect::<Result<Vec<_>>>()?;
    let live: usize = rows.iter().map(|(_, batch)| batch.num_rows()).sum();
    for index in &mut indexes {
        // Sized once: growing a table of millions of keys rehashes them all.
        index.entries.reserve(live);
    }
    for (chunk, batch) in &rows {
        // A primary key's columns are NOT NULL.
        if let Some(key) = table.primary_key() {
            for column in &key.columns {
                if batch
                    .column_by_name(column)
                    .is_some_and(|c| c.null_count() > 0)
                {
                    return Err(Error::ContainsNulls {
                        table: table.name.clone(),
                        column: column.clone(),
                    });
                }
            }
        }
        let ids = batch
            .column_by_name(ROWID_COLUMN)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| Error::CorruptRecord {
                reason: "rows without row ids".to_owned(),
            })?;
        for index in &mut indexes {
            let Some(columns) = index.key_columns(batch) else {
                continue;
            };
            for (row, key) in index.keys(&columns)?.into_iter().enumerate() {
                let Some(key) = key else { continue };
                let entry = RowRef {
                    rowid: ids.value(row),
                    chunk: *chunk,
                };
                if index.entries.insert(key, entry).is_some() {
                    return Err(Error::UniqueViolation {
                        table: table.name.clone(),
                        index: index.name.clone(),
                        detail: format!(
                            "Key {} is duplicated.",
                            describe_key(&index.columns, &columns, row, table)
                        ),
                        creating: true,
                    });
                }
            }
        }
    }
    Ok(TableKeys {
        table: table.clone(),
        indexes,
        pending: HashSet::new(),
        pending_commits: 0,
    })
}

/// A commit's rows for one keyed table: rows deleted (storage rows with
/// the row id and, to unindex them, the key columns) and inserted (each
/// with the chunk it goes to).
pub(crate) struct KeyedWrite<'a> {
    pub table: &'a Arc<TableDef>,
    pub deletes: &'a [RecordBatch],
    pub inserts: Vec<(ChunkId, &'a RecordBatch)>,
    pub on_conflict: OnConflict,
}

/// Per insert batch of a [`KeyedWrite`], the rows to keep (None: all).
pub(crate) type Kept = Vec<Option<Vec<bool>>>;

/// Checks a commit's inserted keys against the table's live keys and each
/// other, and enters them. Rows another commit has pending make it wait for
/// that commit. Returns which rows to keep (with [`OnConflict::Skip`]) and
/// the registration to settle once the commit is applied or has failed.
pub(crate) fn register(
    slot: &Arc<KeySlot>,
    mut guard: MutexGuard<'_, Option<TableKeys>>,
    write: &KeyedWrite<'_>,
) -> Result<(Kept, Registration)> {
    let deleted_ids: Vec<i64> = write
        .deletes
        .iter()
        .filter_map(|b| b.column_by_name(ROWID_COLUMN))
        .filter_map(|c| c.as_primitive_opt::<Int64Type>())
        .flat_map(|ids| ids.values().iter().copied())
        .collect();
    // Asked of inserted rows' keys only: a DELETE alone needs no set.
    let deleted: HashSet<i64> = match write.inserts.is_empty() {
        true => HashSet::new(),
        false => deleted_ids.iter().copied().collect(),
    };
    loop {
        let Some(keys) = guard.as_mut() else {
            return Err(Error::CorruptRecord {
                reason: "key index missing".to_owned(),
            });
        };
        let waits = |entry: Option<&RowRef>| {
            entry.is_some_and(|e| keys.pending.contains(&e.rowid) && !deleted.contains(&e.rowid))
        };
        // Keys of every index per insert batch, computed once.
        let mut batch_keys = Vec::with_capacity(write.inserts.len());
        let mut must_wait = false;
        for (_, batch) in &write.inserts {
            let mut per_index = Vec::with_capacity(keys.indexes.len());
            for index in &keys.indexes {
                let columns = index
                    .key_columns(batch)
                    .ok_or_else(|| Error::SchemaMismatch {
                        table: write.table.name.clone(),
                        reason: format!("rows lack the key columns of \"{}\"", index.name),
                    })?;
                let row_keys = index.keys(&columns)?;
                must_wait |= row_keys
                    .iter()
                    .flatten()
                    .any(|k| waits(index.entries.get(k)));
                per_index.push((columns, row_keys));
            }
            batch_keys.push(per_index);
        }
        if must_wait {
            slot.settled.wait(&mut guard);
            continue;
        }
        let mut undo = Vec::new();
        let mut stale = false;
        // Deleted rows leave the indexes first: an UPDATE keeping its key
        // deletes the old row and inserts the new one in one commit.
        for (position, index) in keys.indexes.iter_mut().enumerate() {
            for batch in write.deletes {
                let (Some(columns), Some(ids)) = (
                    index.key_columns(batch),
                    batch
                        .column_by_name(ROWID_COLUMN)
                        .and_then(|c| c.as_primitive_opt::<Int64Type>()),
                ) else {
                    stale = true;
                    continue;
                };
                // Looked up in place: a day's DELETE removes hundreds of
                // thousands of keys, and copying each out to look it up
                // cost as much as the lookups.
                let rows = index.key_rows(&columns)?;
                for row in 0..rows.num_rows() {
                    if has_null(&columns, row) {
                        continue;
                    }
                    let key = rows.row(row);
                    if index
                        .entries
                        .get(key.as_ref())
                        .is_some_and(|entry| entry.rowid == ids.value(row))
                        && let Some((key, entry)) = index.entries.remove_entry(key.as_ref())
                    {
                        undo.push(Undo {
                            index: position,
                            key,
                            previous: Some(entry),
                        });
                    }
                }
            }
        }
        let live = |entry: &RowRef| !deleted.contains(&entry.rowid);
        let mut kept: Kept = Vec::with_capacity(write.inserts.len());
        let mut failure = None;
        'batches: for ((chunk, batch), per_index) in write.inserts.iter().zip(&batch_keys) {
            let ids = batch
                .column_by_name(ROWID_COLUMN)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| Error::CorruptRecord {
                    reason: "rows without row ids".to_owned(),
                })?;
            let mut keep = vec![true; batch.num_rows()];
            for row in 0..batch.num_rows() {
                // A row conflicting on any index enters none of them. The
                // arbiter of ON CONFLICT is looked at first: a row it skips
                // is skipped, whatever other keys it repeats.
                let conflicts = |position: usize| {
                    per_index[position].1[row].as_ref().is_some_and(|key| {
                        keys.indexes[position].entries.get(key).is_some_and(live)
                    })
                };
                let taken = match write.on_conflict {
                    OnConflict::SkipOn(arbiter) if conflicts(arbiter) => Some(arbiter),
                    _ => (0..keys.indexes.len()).find(|p| conflicts(*p)),
                };
                if let Some(position) = taken {
                    let skip = match write.on_conflict {
                        OnConflict::Error => false,
                        OnConflict::Skip => true,
                        OnConflict::SkipOn(arbiter) => arbiter == position,
                    };
                    if skip {
                        keep[row] = false;
                        continue;
                    }
                    let index = &keys.indexes[position];
                    let (columns, _) = &per_index[position];
                    failure = Some(Error::UniqueViolation {
                        table: write.table.name.clone(),
                        index: index.name.clone(),
                        detail: format!(
                            "Key {} already exists.",
                            describe_key(&index.columns, columns, row, write.table)
                        ),
                        creating: false,
                    });
                    break 'batches;
                }
                for (position, (index, (_, row_keys))) in
                    keys.indexes.iter_mut().zip(per_index).enumerate()
                {
                    if let Some(key) = &row_keys[row] {
                        let previous = index.entries.insert(
                            key.clone(),
                            RowRef {
                                rowid: ids.value(row),
                                chunk: *chunk,
                            },
                        );
                        undo.push(Undo {
                            index: position,
                            key: key.clone(),
                            previous,
                        });
                    }
                }
            }
            kept.push(keep.iter().any(|k| !k).then_some(keep));
        }
        if let Some(error) = failure {
            undo_changes(keys, undo);
            return Err(error);
        }
        let mut rows = deleted_ids;
        for ((_, batch), keep) in write.inserts.iter().zip(&kept) {
            if let Some(ids) = batch
                .column_by_name(ROWID_COLUMN)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
            {
                rows.extend(
                    ids.values()
                        .iter()
                        .enumerate()
                        .filter(|(row, _)| keep.as_ref().is_none_or(|k| k[*row]))
                        .map(|(_, id)| *id),
                );
            }
        }
        keys.pending.extend(rows.iter().copied());
        keys.pending_commits += 1;
        return Ok((
            kept,
            Registration {
                slot: slot.clone(),
                rows,
                undo,
                stale,
            },
        ));
    }
}

fn undo_changes(keys: &mut TableKeys, undo: Vec<Undo>) {
    for change in undo.into_iter().rev() {
        let entries = &mut keys.indexes[change.index].entries;
        match change.previous {
            Some(previous) => entries.insert(change.key, previous),
            None => entries.remove(&change.key),
        };
    }
}

impl Registration {
    /// Ends the commit's pending state: its entries stay if it was applied,
    /// are undone if it failed.
    pub(crate) fn settle(self, applied: bool) {
        let mut guard = self.slot.keys.lock();
        if let Some(keys) = guard.as_mut() {
            for row in &self.rows {
                keys.pending.remove(row);
            }
            keys.pending_commits = keys.pending_commits.saturating_sub(1);
            if !applied {
                undo_changes(keys, self.undo);
            }
            if self.stale && keys.pending_commits == 0 {
                *guard = None;
            } else if self.stale {
                // Rebuilt by the next user once no commit is pending.
                keys.table = Arc::new(TableDef {
                    indexes: Vec::new(),
                    ..(*keys.table).clone()
                });
            }
        }
        self.slot.settled.notify_all();
    }
}

/// Looks up rows' keys in one unique index: for each row, the live row that
/// holds its key, if any. Waits for commits pending on those keys.
pub(crate) fn lookup(
    slot: &KeySlot,
    mut guard: MutexGuard<'_, Option<TableKeys>>,
    index_name: &str,
    rows: &RecordBatch,
) -> Result<Vec<Option<RowRef>>> {
    loop {
        let Some(keys) = guard.as_ref() else {
            return Ok(vec![None; rows.num_rows()]);
        };
        let Some(index) = keys.indexes.iter().find(|i| i.name == index_name) else {
            return Err(Error::SchemaMismatch {
                table: keys.table.name.clone(),
                reason: format!("no unique index \"{index_name}\""),
            });
        };
        let columns = index
            .key_columns(rows)
            .ok_or_else(|| Error::SchemaMismatch {
                table: keys.table.name.clone(),
                reason: format!("rows lack the key columns of \"{index_name}\""),
            })?;
        let found: Vec<Option<RowRef>> = index
            .keys(&columns)?
            .iter()
            .map(|k| k.as_ref().and_then(|k| index.entries.get(k).copied()))
            .collect();
        if found
            .iter()
            .flatten()
            .any(|entry| keys.pending.contains(&entry.rowid))
        {
            slot.settled.wait(&mut guard);
            continue;
        }
        return Ok(found);
    }
}

impl KeySlot {
    /// Puts in freshly built indexes (or none); the caller holds the
    /// store's write gate exclusively, so no commit is pending.
    pub(crate) fn install(&self, keys: Option<TableKeys>) {
        *self.keys.lock() = keys;
    }
}

/// Forgets a table's key indexes (its rows moved): the next user rebuilds
/// them. Callers hold the store's write gate exclusively, so no commit is
/// pending.
pub(crate) fn forget(slot: &KeySlot) {
    *slot.keys.lock() = None;
}

/// The rows of a batch that `keep` marks, or the batch if None.
pub(crate) fn kept_rows(batch: &RecordBatch, keep: Option<&Vec<bool>>) -> Result<RecordBatch> {
    match keep {
        None => Ok(batch.clone()),
        Some(keep) => {
            let mask = datafusion::arrow::array::BooleanArray::from(keep.clone());
            Ok(datafusion::arrow::compute::filter_record_batch(
                batch, &mask,
            )?)
        }
    }
}

/// The keys of one unique index over the rows a transaction block staged,
/// kept as the block goes: each statement adds the keys of the rows it
/// staged, so checking a statement's rows costs what they cost, not what
/// the whole block does.
///
/// Later rows win: a key maps to the last staged row with it. A block
/// stages a key again only after deleting the row that had it (UPDATE,
/// DELETE then INSERT), so the last row is the only one that may be live;
/// callers check it against the block's deletes.
pub struct StagedKeys {
    index: KeyIndex,
}

impl std::fmt::Debug for StagedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedKeys")
            .field("index", &self.index.name)
            .field("keys", &self.index.entries.len())
            .finish()
    }
}

impl StagedKeys {
    pub fn new(table: &TableDef, index: &str) -> Result<StagedKeys> {
        Ok(StagedKeys {
            index: unique_index(table, index)?,
        })
    }

    /// Adds the keys of staged rows (with their row id column).
    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let (Some(columns), Some(ids)) = (
            self.index.key_columns(batch),
            batch
                .column_by_name(ROWID_COLUMN)
                .and_then(|c| c.as_primitive_opt::<Int64Type>()),
        ) else {
            return Ok(());
        };
        for (row, key) in self.index.keys(&columns)?.into_iter().enumerate() {
            if let Some(key) = key {
                self.index.entries.insert(
                    key,
                    RowRef {
                        rowid: ids.value(row),
                        chunk: 0,
                    },
                );
            }
        }
        Ok(())
    }

    /// For each of `rows`, the row id of the last staged row with its key.
    pub fn find(&self, table: &TableDef, rows: &RecordBatch) -> Result<Vec<Option<i64>>> {
        let columns = self
            .index
            .key_columns(rows)
            .ok_or_else(|| missing_keys(table, &self.index.name))?;
        Ok(self
            .index
            .keys(&columns)?
            .iter()
            .map(|k| {
                k.as_ref()
                    .and_then(|k| self.index.entries.get(k))
                    .map(|e| e.rowid)
            })
            .collect())
    }
}

/// For each row, the position of an earlier row of `rows` with the same key
/// in the table's unique index `index`.
pub fn earlier_duplicates(
    table: &TableDef,
    index: &str,
    rows: &RecordBatch,
) -> Result<Vec<Option<usize>>> {
    let key_index = unique_index(table, index)?;
    let columns = key_index
        .key_columns(rows)
        .ok_or_else(|| missing_keys(table, index))?;
    let mut first: HashMap<Box<[u8]>, usize> = HashMap::new();
    Ok(key_index
        .keys(&columns)?
        .into_iter()
        .enumerate()
        .map(|(row, key)| {
            let key = key?;
            match first.get(&key) {
                Some(earlier) => Some(*earlier),
                None => {
                    first.insert(key, row);
                    None
                }
            }
        })
        .collect())
}

/// The text PostgreSQL's DETAIL gives a row's key in unique index `index`.
pub fn key_detail(table: &TableDef, index: &str, rows: &RecordBatch, row: usize) -> Result<String> {
    let key_index = unique_index(table, index)?;
    let columns = key_index
        .key_columns(rows)
        .ok_or_else(|| missing_keys(table, index))?;
    Ok(describe_key(&key_index.columns, &columns, row, table))
}

fn unique_index(table: &TableDef, index: &str) -> Result<KeyIndex> {
    let def = table
        .unique_indexes()
        .find(|i| i.name == index)
        .ok_or_else(|| Error::SchemaMismatch {
            table: table.name.clone(),
            reason: format!("no unique index \"{index}\""),
        })?;
    KeyIndex::new(table, def)
}

fn missing_keys(table: &TableDef, index: &str) -> Error {
    Error::SchemaMismatch {
        table: table.name.clone(),
        reason: format!("rows lack the key columns of \"{index}\""),
    }
}
