//! The storage engine: WAL, memtables, immutable segment files, checkpoints.
//!
//! | module      | owns                                                          |
//! |-------------|---------------------------------------------------------------|
//! | `wal`       | the log files, record framing, group commit, torn-tail reads  |
//! | `record`    | what a WAL record says (rows per chunk, as Arrow IPC; deletes)|
//! | `segment`   | Parquet segment files: sort, encode, checksum, verify         |
//! | `deletes`   | deleted row ids: in-memory sets, delete files                 |
//! | this file   | [`Store`]: routing rows to chunks, memtables, checkpoints     |
//!
//! Write path (one statement, or one whole COPY):
//! ```text
//! insert(table, batches) ─ route rows to chunks (create missing chunks: catalog txn, fsync)
//!   ─ encode one commit record ─ WAL append (group fsync) ─ apply to memtables ─ ack
//! ```
//! Read path: [`Store::snapshot`] takes the catalog snapshot, the memtable
//! batches and the chunks' delete sets under one lock, so a reader sees every
//! row exactly once: either in a segment the catalog lists or in a memtable,
//! never both, never neither, and not at all once it is deleted.
//!
//! Rows carry a hidden row id (the last column, [`ROWID_COLUMN`]), allocated
//! when they are written and never reused. DELETE names rows by id: the ids
//! go to the WAL with the commit, then into the chunk's delete set; a
//! commit whose deletes name a row another commit deleted first fails with
//! [`Error::Conflict`] and writes nothing. UPDATE is a delete and an insert
//! in one commit.
//!
//! Checkpoint: freeze all memtables and rotate the WAL (under the write gate,
//! so every appended record is applied), write each frozen chunk as a segment,
//! then in one catalog transaction add the segments and move the replay start
//! to the new WAL file, drop the frozen batches, and delete the old WAL files.
//! Deleted rows are left out of the segments written; chunks whose segments
//! are mostly deleted rows are rewritten without them; the ids still needed
//! are written to the chunk's delete file.
//! Checkpoints run on the store's own thread (`tempora-checkpoint`) once the
//! memtables pass the flush threshold; writers go on filling new memtables
//! meanwhile, and wait only when the memtables reach twice the threshold,
//! so a disk slower than the writers bounds memory instead of exhausting it.
//!
//! Lock order: `checkpoint_lock` -> `write_gate` -> `memtables` -> catalog.
//! When you change the WAL record layout, also change `docs/formats/wal.md`;
//! when you change segment files, `docs/formats/segment.md`.

mod deletes;
pub mod keys;
mod page_values;
mod pages;
mod record;
pub mod segment;
mod wal;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Int16Type, Int32Type, Int64Type, SchemaRef, UInt64Type,
};
use datafusion::arrow::error::ArrowError;
use parking_lot::{Condvar, Mutex, RwLock};

use tempora_catalog::{
    Catalog, CatalogState, CatalogTxn, ChunkDef, ChunkId, DeleteFileDef, ROWID_COLUMN, SegmentDef,
    TableDef, TableId,
};
use tempora_types::datetime::MICROS_PER_DAY;
use tempora_types::text::timestamp_micros;

pub use deletes::DeleteSet;
pub use keys::{OnConflict, RowRef};
use record::Commit;
pub use record::{ChunkDelete, ChunkWrite};

/// Catalog `meta` key: the first WAL file a restart must replay.
const META_WAL_REPLAY_FROM: &str = "wal_replay_from";
/// Catalog `meta` key: no row id below this was handed out before the last
/// checkpoint (ids handed out since are found again in the WAL).
const META_NEXT_ROWID: &str = "next_rowid";
/// The next catalog mark to hand out (see `record`).
const META_NEXT_MARK: &str = "next_commit_mark";

/// The catalog meta key recording that the commit with `mark` committed.
fn mark_key(mark: u64) -> String {
    format!("commit_mark.{mark}")
}
/// A chunk's segments are rewritten without their deleted rows once this
/// fraction (1/n) of their rows is deleted.
const COMPACT_WHEN_DELETED_OF: u64 = 4;
/// Memtable batches smaller than this are merged once enough of them pile up,
/// so many single-row INSERTs do not leave thousands of tiny batches to scan.
const SMALL_BATCH_ROWS: usize = 8192;
const SMALL_BATCHES_MAX: usize = 32;
/// Chunk ids of plain tables: this bit plus the table id, apart from the
/// numbered chunks of hypertables.
const PLAIN_TABLE_CHUNK_BASE: u64 = 1 << 62;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("corrupt WAL record: {reason}")]
    CorruptRecord { reason: String },
    #[error("the write-ahead log failed and accepts no more writes: {reason}")]
    WalFailed { reason: String },
    #[error("data directory {path} is in use by another tempora process")]
    Locked { path: PathBuf },
    #[error(transparent)]
    Arrow {
        #[from]
        source: ArrowError,
    },
    #[error(transparent)]
    Parquet {
        #[from]
        source: parquet::errors::ParquetError,
    },
    #[error(transparent)]
    Catalog {
        #[from]
        source: tempora_catalog::Error,
    },
    #[error("null value in column \"{column}\" violates not-null constraint")]
    NullTime { column: String },
    #[error("rows for table \"{table}\" do not match its columns: {reason}")]
    SchemaMismatch { table: String, reason: String },
    #[error("relation \"{name}\" does not exist")]
    TableDropped { name: String },
    #[error("column \"{column}\" of relation \"{table}\" contains null values")]
    ContainsNulls { table: String, column: String },
    /// A row this commit deletes or updates was deleted or updated by
    /// another commit since this one read it.
    #[error("could not serialize access due to concurrent update")]
    Conflict { table: String },
    /// A tentative change (DDL inside a transaction block) would drop or
    /// rewrite stored rows, which an undo could not bring back.
    #[error(
        "table \"{table}\" holds rows, which tempora cannot drop or rewrite inside a transaction block: run this statement outside BEGIN ... COMMIT"
    )]
    TentativeDataChange { table: String },
    /// Rows would give a unique index a key twice.
    #[error("{}\nDETAIL: {detail}", if *creating {
        format!("could not create unique index \"{index}\"")
    } else {
        format!("duplicate key value violates unique constraint \"{index}\"")
    })]
    UniqueViolation {
        table: String,
        index: String,
        detail: String,
        /// While building a new unique index over existing rows.
        creating: bool,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes a directory's entries (new or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// Tunables of the storage engine.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Memtable size at which a background checkpoint starts; writers wait
    /// for it when the memtables reach twice this size.
    pub flush_threshold_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            flush_threshold_bytes: 256 << 20,
        }
    }
}

/// A chunk's rows and deletes not yet (fully) in its segments and delete file.
#[derive(Default)]
struct ChunkMemtable {
    /// Being written to a segment by the running checkpoint.
    frozen: Vec<RecordBatch>,
    active: Vec<RecordBatch>,
    /// Ids of the chunk's deleted rows that are still stored somewhere
    /// (segments or memtable batches).
    deleted: DeleteSet,
    /// Bumped by every delete; the checkpoint compares it with the version
    /// it last wrote to the chunk's delete file.
    delete_version: u64,
    persisted_version: u64,
    /// Deleted ids whose rows a checkpoint has since removed: a commit that
    /// read such a row before it was deleted must still conflict.
    removed: DeleteSet,
    /// Ids deleted since the last freeze (what the memtable bytes count).
    unflushed_deletes: usize,
}

impl ChunkMemtable {
    fn is_empty(&self) -> bool {
        self.frozen.is_empty() && self.active.is_empty() && self.deleted.is_empty()
    }
}

/// The rows of one chunk visible to one reader.
#[derive(Debug, Clone)]
pub struct ChunkSnapshot {
    pub chunk: Arc<ChunkDef>,
    /// Unflushed rows, all with the table's storage schema (row id last).
    pub memtable: Vec<RecordBatch>,
    /// Rows of the segments and memtable that are deleted.
    pub deleted: DeleteSet,
}

impl ChunkSnapshot {
    /// Live rows of the chunk.
    pub fn row_count(&self) -> u64 {
        (self.chunk.row_count()
            + self
                .memtable
                .iter()
                .map(|b| b.num_rows() as u64)
                .sum::<u64>())
        .saturating_sub(self.deleted.len() as u64)
    }
}

/// One table's part of a commit.
#[derive(Debug, Clone)]
pub struct TableWrite<'a> {
    pub table: &'a TableDef,
    /// New rows in the table's storage schema, row ids allocated by
    /// [`Store::allocate_rowids`].
    pub inserts: Vec<RecordBatch>,
    /// Rows to delete: batches holding the row id column and the
    /// [`CHUNK_COLUMN`] (the chunk each row was read from, as
    /// [`TableSnapshot::chunks_of_rows`] gives it).
    pub deletes: Vec<RecordBatch>,
    /// What to do with inserted rows whose unique key is taken.
    pub on_conflict: OnConflict,
}

/// A catalog change made together with a commit's rows.
pub type CatalogChange<'a> = dyn Fn(&mut CatalogTxn) -> tempora_catalog::Result<()> + 'a;

/// What a commit wrote.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    pub inserted: u64,
    pub deleted: u64,
    /// Row ids of inserted rows left out for [`OnConflict::Skip`].
    pub skipped: Vec<i64>,
}

/// A consistent view of one table for a query.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub table: Arc<TableDef>,
    pub chunks: Vec<ChunkSnapshot>,
}

/// The column of rows to delete that names the chunk each was read from.
pub const CHUNK_COLUMN: &str = "__tempora_chunk";

impl TableSnapshot {
    /// The chunk of this snapshot each row was read from, given the rows'
    /// time column (None for a plain table); None for a row in no chunk of
    /// the snapshot (a transaction's own uncommitted row). A delete names
    /// the chunk it read a row from: if that chunk is gone by the commit
    /// (dropped, or rewritten by ALTER TABLE), the commit conflicts.
    pub fn chunks_of_rows(
        &self,
        time: Option<&dyn Array>,
        rows: usize,
    ) -> Result<Vec<Option<ChunkId>>> {
        let Some(hypertable) = &self.table.hypertable else {
            return Ok(vec![self.chunks.first().map(|c| c.chunk.id); rows]);
        };
        let Some(time) = time else {
            return Err(Error::SchemaMismatch {
                table: self.table.name.clone(),
                reason: "rows to delete lack the time column".to_owned(),
            });
        };
        let values = dimension_values(&self.table, time, &hypertable.time_column)?;
        Ok(values
            .into_iter()
            .map(|value| {
                let start = chunk_start(value, hypertable.chunk_interval);
                self.chunks
                    .iter()
                    .find(|c| c.chunk.range_start == start)
                    .map(|c| c.chunk.id)
            })
            .collect())
    }
}

/// The catalog and unflushed rows of every table at one moment.
#[derive(Debug, Clone)]
pub struct StoreView {
    state: Arc<CatalogState>,
    memtables: HashMap<ChunkId, (Vec<RecordBatch>, DeleteSet)>,
    /// Keeps the files this view lists from being deleted.
    _epoch: Arc<Epoch>,
}

impl StoreView {
    pub fn catalog(&self) -> &Arc<CatalogState> {
        &self.state
    }

    /// One table's chunks and unflushed rows as of the view.
    pub fn table(&self, table_id: TableId) -> Option<TableSnapshot> {
        let table = self.state.tables.get(&table_id)?.clone();
        let chunks = self
            .state
            .chunks_of(table_id)
            .into_iter()
            .map(|chunk| {
                let (memtable, deleted) =
                    self.memtables.get(&chunk.id).cloned().unwrap_or_default();
                ChunkSnapshot {
                    chunk,
                    memtable,
                    deleted,
                }
            })
            .collect();
        Some(TableSnapshot { table, chunks })
    }
}

/// The storage engine of one data directory.
pub struct Store {
    segment_dir: PathBuf,
    wal_dir: PathBuf,
    catalog: Arc<Catalog>,
    wal: wal::Wal,
    /// Writers hold it shared from WAL append to memtable apply; a checkpoint
    /// freeze or a chunk drop holds it exclusively.
    write_gate: RwLock<()>,
    memtables: RwLock<HashMap<ChunkId, ChunkMemtable>>,
    memtable_bytes: AtomicUsize,
    /// Views hold the epoch they were taken in; see [`Epoch`].
    epoch: Mutex<Arc<Epoch>>,
    /// The next row id to hand out.
    next_rowid: AtomicI64,
    /// Held by a commit with deletes from its conflict check until its
    /// deletes are applied, so two commits never both delete one row.
    delete_lock: Mutex<()>,
    /// The key indexes of tables with unique keys (see [`keys`]).
    keys: Mutex<HashMap<TableId, Arc<keys::KeySlot>>>,
    /// The next catalog mark; held by a commit that changes the catalog
    /// from its WAL append to its catalog transaction.
    next_mark: Mutex<u64>,
    checkpoint_lock: Mutex<()>,
    checkpointer: Arc<Checkpointer>,
    verified_segments: Mutex<HashSet<String>>,
    /// Footers (with page indexes) of segments point reads have used.
    segment_metadata: Mutex<HashMap<String, parquet::arrow::arrow_reader::ArrowReaderMetadata>>,
    options: StoreOptions,
    /// Held for the life of the store: one process per data directory.
    _lock_file: fs::File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("segment_dir", &self.segment_dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the data directory (creating it if needed) and replays the WAL.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Arc<Store>> {
        // Absolute, so that every path the store hands out (segment files
        // for DataFusion's object store above all, which cannot resolve
        // `./tempora-data`) names the same file whatever reads it.
        let data_dir = &std::path::absolute(data_dir).map_err(|e| io_error(data_dir, e))?;
        let segment_dir = data_dir.join("segments");
        let wal_dir = data_dir.join("wal");
        for dir in [data_dir, &segment_dir, &wal_dir] {
            fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        let lock_path = data_dir.join("LOCK");
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, e))?;
        if lock_file.try_lock().is_err() {
            return Err(Error::Locked {
                path: data_dir.to_owned(),
            });
        }
        let catalog = Arc::new(Catalog::open(&data_dir.join("catalog.redb"))?);
        // DDL of transaction blocks that never committed is undone before
        // anything reads the catalog; a committed block's record went with
        // its commit, so one still there with its mark is only forgotten.
        for mark in catalog.tentative_marks() {
            if catalog.snapshot().meta.contains_key(&mark_key(mark)) {
                catalog.transact(|txn| {
                    txn.forget_undo(mark);
                    Ok(())
                })?;
            } else {
                catalog.undo(mark)?;
            }
        }
        let state = catalog.snapshot();
        let replay_from = state.meta_value(META_WAL_REPLAY_FROM);

        let mut memtables: HashMap<ChunkId, ChunkMemtable> = HashMap::new();
        for chunk in state.chunks.values() {
            if let Some(def) = &chunk.deletes {
                let ids = deletes::read_delete_file(&segment_dir, def)?;
                let memtable = memtables.entry(chunk.id).or_default();
                memtable.deleted = DeleteSet::from_sorted(ids);
            }
        }
        let mut next_rowid = state.meta_value(META_NEXT_ROWID) as i64;
        let mut next_mark = state.meta_value(META_NEXT_MARK);
        let files = wal::list_wal_files(&wal_dir)?;
        let last_seq = files.last().map(|(seq, _)| *seq).unwrap_or(0);
        let mut replayed = 0usize;
        for (seq, path) in &files {
            if *seq < replay_from {
                fs::remove_file(path).map_err(|e| io_error(path, e))?;
                continue;
            }
            let is_last = *seq == last_seq;
            for payload in wal::read_wal_file(path, is_last)? {
                let commit = record::decode_commit(&payload)?;
                if let Some(mark) = commit.mark {
                    next_mark = next_mark.max(mark + 1);
                    // Its catalog change never committed: neither did it.
                    if !state.meta.contains_key(&mark_key(mark)) {
                        continue;
                    }
                }
                for write in commit.inserts {
                    if let Some(max) = max_rowid(&write.batch)? {
                        next_rowid = next_rowid.max(max.saturating_add(1));
                    }
                    // Chunks dropped after this record was written are skipped:
                    // chunk ids are never reused, so nothing else can claim the rows.
                    if state.chunks.contains_key(&write.chunk_id) {
                        memtables
                            .entry(write.chunk_id)
                            .or_default()
                            .active
                            .push(write.batch);
                        replayed += 1;
                    }
                }
                for delete in commit.deletes {
                    if state.chunks.contains_key(&delete.chunk_id) {
                        let memtable = memtables.entry(delete.chunk_id).or_default();
                        // A delete the chunk's delete file already lists (the
                        // checkpoint that wrote it crashed before trimming the
                        // WAL) is applied once.
                        let fresh: Vec<i64> = delete
                            .rowids
                            .into_iter()
                            .filter(|id| !memtable.deleted.contains(*id))
                            .collect();
                        memtable.deleted.add(fresh);
                        memtable.delete_version += 1;
                        replayed += 1;
                    }
                }
            }
        }
        let memtable_bytes = memtables
            .values()
            .flat_map(|m| m.active.iter())
            .map(|b| b.get_array_memory_size())
            .sum();
        tracing::info!(wal_files = files.len(), replayed, "storage recovered");
        let wal = wal::Wal::create(&wal_dir, last_seq.max(replay_from) + 1)?;

        let epoch = Epoch::new(segment_dir.clone());
        let store = Store {
            segment_dir,
            wal_dir,
            catalog,
            wal,
            write_gate: RwLock::new(()),
            memtables: RwLock::new(memtables),
            memtable_bytes: AtomicUsize::new(memtable_bytes),
            epoch: Mutex::new(Arc::new(epoch)),
            next_rowid: AtomicI64::new(next_rowid),
            delete_lock: Mutex::new(()),
            keys: Mutex::new(HashMap::new()),
            next_mark: Mutex::new(next_mark),
            checkpoint_lock: Mutex::new(()),
            checkpointer: Arc::new(Checkpointer::default()),
            verified_segments: Mutex::new(HashSet::new()),
            segment_metadata: Mutex::new(HashMap::new()),
            options,
            _lock_file: lock_file,
        };
        store.remove_orphan_segments()?;
        let store = Arc::new(store);
        let checkpointer = store.checkpointer.clone();
        let weak = Arc::downgrade(&store);
        std::thread::Builder::new()
            .name("tempora-checkpoint".to_owned())
            .spawn(move || checkpointer.run(weak))
            .map_err(|e| io_error(data_dir, e))?;
        Ok(store)
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Segment files no chunk lists are left by a checkpoint that crashed
    /// before its catalog commit, or by dropped chunks; they hold no live rows.
    fn remove_orphan_segments(&self) -> Result<()> {
        let state = self.catalog.snapshot();
        let live: HashSet<&str> = state
            .chunks
            .values()
            .flat_map(|c| {
                c.segments
                    .iter()
                    .map(|s| s.file_name.as_str())
                    .chain(c.deletes.iter().map(|d| d.file_name.as_str()))
            })
            .collect();
        for entry in fs::read_dir(&self.segment_dir).map_err(|e| io_error(&self.segment_dir, e))? {
            let entry = entry.map_err(|e| io_error(&self.segment_dir, e))?;
            let name = entry.file_name();
            if let Some(name) = name.to_str()
                && !live.contains(name)
            {
                fs::remove_file(entry.path()).map_err(|e| io_error(&entry.path(), e))?;
            }
        }
        Ok(())
    }

    /// Durably writes `batches` (already in the table's column order and types)
    /// and makes them visible. Returns the number of rows written.
    pub fn insert(&self, table: &TableDef, batches: Vec<RecordBatch>) -> Result<u64> {
        self.insert_many(&[(table, batches)])
    }

    /// Durably writes rows to several tables as one unit (a transaction's
    /// writes): one WAL record, applied to the memtables under one lock, so a
    /// crash keeps all of them or none and no reader sees a part.
    pub fn insert_many(&self, tables: &[(&TableDef, Vec<RecordBatch>)]) -> Result<u64> {
        let mut writes = Vec::with_capacity(tables.len());
        for (table, batches) in tables {
            let schema = table.arrow_schema();
            let inserts = batches
                .iter()
                .filter(|b| b.num_rows() > 0)
                .map(|b| self.attach_rowids(table, conform(table, &schema, b.clone())?))
                .collect::<Result<Vec<_>>>()?;
            writes.push(TableWrite {
                table,
                inserts,
                deletes: Vec::new(),
                on_conflict: OnConflict::Error,
            });
        }
        Ok(self.commit(&writes)?.inserted)
    }

    /// Hands out `count` fresh row ids; returns the first.
    pub fn allocate_rowids(&self, count: usize) -> i64 {
        self.next_rowid.fetch_add(count as i64, Ordering::Relaxed)
    }

    /// Appends fresh row ids to rows in the table's column order.
    pub fn attach_rowids(&self, table: &TableDef, batch: RecordBatch) -> Result<RecordBatch> {
        let first = self.allocate_rowids(batch.num_rows());
        let ids = Int64Array::from_iter_values(first..first + batch.num_rows() as i64);
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(ids));
        let schema = table.storage_schema();
        conform(
            table,
            &schema,
            RecordBatch::try_new(schema.clone(), columns)?,
        )
    }

    /// Durably applies inserts and deletes to several tables as one unit:
    /// one WAL record, applied under one lock. Fails, writing nothing, with
    /// [`Error::Conflict`] when a row it deletes is already deleted, and with
    /// [`Error::UniqueViolation`] when an inserted row's key is taken (unless
    /// its write skips such rows).
    pub fn commit(&self, writes: &[TableWrite<'_>]) -> Result<Committed> {
        self.commit_inner(writes, None)
    }

    /// Like [`Store::commit`], together with a catalog change (a
    /// transaction block's table renames) as one unit: the WAL record
    /// carries a mark that `change`'s catalog transaction records, so after
    /// a crash the rows count only if the change committed. A failing
    /// `change` fails the commit, writing nothing.
    ///
    /// `mark` is the one reserved ([`Store::reserve_mark`]) for tentative
    /// catalog changes made before ([`Catalog::transact_tentative`]): they
    /// become final with this commit. Without one, a mark is taken now.
    pub fn commit_with_catalog(
        &self,
        writes: &[TableWrite<'_>],
        change: &CatalogChange<'_>,
        mark: Option<u64>,
    ) -> Result<Committed> {
        self.commit_inner(writes, Some((change, mark)))
    }

    /// A mark for tentative catalog changes, never handed out twice.
    pub fn reserve_mark(&self) -> u64 {
        let mut next = self.next_mark.lock();
        let mark = *next;
        *next += 1;
        mark
    }

    /// Undoes the tentative catalog changes made under `mark` (a
    /// transaction block that rolled back or whose connection ended).
    pub fn undo(&self, mark: u64) -> Result<()> {
        let tables = self.catalog.undo(mark)?;
        self.forget_keys(tables);
        Ok(())
    }

    fn commit_inner(
        &self,
        writes: &[TableWrite<'_>],
        change: Option<(&CatalogChange<'_>, Option<u64>)>,
    ) -> Result<Committed> {
        let mut routed: Vec<(&TableDef, Vec<(i64, RecordBatch)>)> = Vec::new();
        let mut deleted_rows: Vec<(&TableDef, IdsByChunk)> = Vec::new();
        let mut inserted = 0u64;
        let mut deleted = 0u64;
        for write in writes {
            let table = write.table;
            let schema = table.storage_schema();
            let mut rows_by_start: Vec<(i64, RecordBatch)> = Vec::new();
            for batch in &write.inserts {
                if batch.num_rows() == 0 {
                    continue;
                }
                inserted += batch.num_rows() as u64;
                let batch = conform(table, &schema, batch.clone())?;
                rows_by_start.extend(split_by_chunk(table, batch)?);
            }
            if !rows_by_start.is_empty() {
                routed.push((table, rows_by_start));
            }
            let ids = deleted_ids_by_chunk(table, &write.deletes)?;
            deleted += ids.iter().map(|(_, ids)| ids.len() as u64).sum::<u64>();
            if !ids.is_empty() {
                deleted_rows.push((table, ids));
            }
        }
        if routed.is_empty() && deleted_rows.is_empty() {
            if let Some((change, mark)) = change {
                let _gate = self.write_gate.read();
                self.catalog.transact(|txn| {
                    change(txn)?;
                    // No WAL record names the mark, so it need not be recorded.
                    if let Some(mark) = mark {
                        txn.forget_undo(mark);
                    }
                    Ok(())
                })?;
            }
            return Ok(Committed::default());
        }
        let _gate = self.write_gate.read();
        let state = self.catalog.snapshot();
        let mut commit = Commit::default();
        for (table, rows_by_start) in routed {
            // A table dropped since the rows were made (by another session,
            // while a transaction was open) takes no rows.
            let Some(current) = state.tables.get(&table.id) else {
                return Err(Error::TableDropped {
                    name: table.name.clone(),
                });
            };
            // Nor does a table whose columns or checks another session's
            // ALTER TABLE changed since: the rows have the old columns and
            // were checked against the old constraints. The writer retries.
            if current.columns != table.columns || current.checks != table.checks {
                return Err(Error::Conflict {
                    table: table.name.clone(),
                });
            }
            let chunk_ids =
                self.ensure_chunks(table, rows_by_start.iter().map(|(start, _)| *start))?;
            commit
                .inserts
                .extend(rows_by_start.into_iter().map(|(start, batch)| ChunkWrite {
                    table_id: table.id,
                    chunk_id: chunk_ids[&start],
                    batch,
                }));
        }
        for (table, ids_by_chunk) in deleted_rows {
            if !state.tables.contains_key(&table.id) {
                return Err(Error::TableDropped {
                    name: table.name.clone(),
                });
            }
            for (chunk_id, rowids) in ids_by_chunk {
                // The rows' chunk is gone (dropped, or the table rewritten by
                // ALTER TABLE) since they were read: someone else got there first.
                let conflict = || Error::Conflict {
                    table: table.name.clone(),
                };
                let chunk_id = chunk_id.ok_or_else(conflict)?;
                if state
                    .chunks
                    .get(&chunk_id)
                    .is_none_or(|c| c.table_id != table.id)
                {
                    return Err(conflict());
                }
                commit.deletes.push(ChunkDelete {
                    table_id: table.id,
                    chunk_id,
                    rowids,
                });
            }
        }
        let _deleting = (!commit.deletes.is_empty()).then(|| self.delete_lock.lock());
        if !commit.deletes.is_empty() {
            let memtables = self.memtables.read();
            for delete in &commit.deletes {
                if let Some(memtable) = memtables.get(&delete.chunk_id)
                    && delete
                        .rowids
                        .iter()
                        .any(|id| memtable.deleted.contains(*id) || memtable.removed.contains(*id))
                {
                    let name = state
                        .tables
                        .get(&delete.table_id)
                        .map(|t| t.name.clone())
                        .unwrap_or_default();
                    return Err(Error::Conflict { table: name });
                }
            }
        }
        let (registrations, skipped) = self.register_keys(&state, writes, &mut commit)?;
        inserted -= skipped.len() as u64;
        // The mark lock is held from taking a mark to recording it, so
        // marks are recorded in order and `META_NEXT_MARK` only grows.
        let mut next_mark = change.map(|_| self.next_mark.lock());
        if let (Some(next), Some((_, reserved))) = (&mut next_mark, change) {
            commit.mark = Some(reserved.unwrap_or(**next));
            if reserved.is_none() {
                **next += 1;
            }
        }
        let payload = match record::encode_commit(&commit) {
            Ok(payload) => payload,
            Err(error) => {
                registrations.into_iter().for_each(|r| r.settle(false));
                return Err(error);
            }
        };
        if let Err(error) = self.wal.append(&payload) {
            registrations.into_iter().for_each(|r| r.settle(false));
            return Err(error);
        }
        if let (Some((change, _)), Some(mark)) = (change, commit.mark) {
            let next = next_mark.as_ref().map_or(mark + 1, |n| **n);
            let result = self.catalog.transact(|txn| {
                change(txn)?;
                txn.set_meta(&mark_key(mark), 1);
                txn.forget_undo(mark);
                let recorded = txn.state().meta_value(META_NEXT_MARK);
                txn.set_meta(META_NEXT_MARK, recorded.max(next));
                Ok(())
            });
            if let Err(error) = result {
                // The record stays in the WAL, and replay skips it.
                registrations.into_iter().for_each(|r| r.settle(false));
                return Err(error.into());
            }
        }
        drop(next_mark);
        self.apply(commit);
        registrations.into_iter().for_each(|r| r.settle(true));
        drop(_deleting);
        drop(_gate);
        self.maybe_start_checkpoint();
        Ok(Committed {
            inserted,
            deleted,
            skipped,
        })
    }

    /// Checks and enters the commit's keys in the key indexes of its tables
    /// that have unique keys, in table order (so that two commits waiting
    /// for each other's rows cannot both be waiting). Leaves out of
    /// `commit` the rows a write skips; returns the registrations to settle
    /// and the skipped rows' ids.
    fn register_keys(
        &self,
        state: &CatalogState,
        writes: &[TableWrite<'_>],
        commit: &mut Commit,
    ) -> Result<(Vec<keys::Registration>, Vec<i64>)> {
        let mut keyed: Vec<(&TableWrite<'_>, Arc<TableDef>)> = writes
            .iter()
            .filter_map(|w| {
                let current = state.tables.get(&w.table.id)?;
                current
                    .unique_indexes()
                    .next()
                    .is_some()
                    .then(|| (w, current.clone()))
            })
            .collect();
        keyed.sort_by_key(|(w, _)| w.table.id);
        let mut registrations = Vec::new();
        let mut skipped = Vec::new();
        for (write, table) in keyed {
            let slot = self.key_slot(table.id);
            let result = slot
                .lock(&table, || self.key_rows(&table))
                .and_then(|guard| {
                    let inserts = commit
                        .inserts
                        .iter()
                        .filter(|w| w.table_id == table.id)
                        .map(|w| (w.chunk_id, &w.batch))
                        .collect();
                    keys::register(
                        &slot,
                        guard,
                        &keys::KeyedWrite {
                            table: &table,
                            deletes: &write.deletes,
                            inserts,
                            on_conflict: write.on_conflict,
                        },
                    )
                });
            let (kept, registration) = match result {
                Ok(done) => done,
                Err(error) => {
                    registrations
                        .into_iter()
                        .for_each(|r: keys::Registration| r.settle(false));
                    return Err(error);
                }
            };
            registrations.push(registration);
            let mut kept = kept.into_iter();
            for chunk_write in commit.inserts.iter_mut().filter(|w| w.table_id == table.id) {
                let Some(Some(keep)) = kept.next() else {
                    continue;
                };
                let ids = chunk_write
                    .batch
                    .column_by_name(ROWID_COLUMN)
                    .and_then(|c| c.as_primitive_opt::<Int64Type>());
                if let Some(ids) = ids {
                    skipped.extend(
                        ids.values()
                            .iter()
                            .zip(&keep)
                            .filter(|(_, k)| !**k)
                            .map(|(id, _)| *id),
                    );
                }
                chunk_write.batch = keys::kept_rows(&chunk_write.batch, Some(&keep))?;
            }
        }
        commit.inserts.retain(|w| w.batch.num_rows() > 0);
        Ok((registrations, skipped))
    }

    fn key_slot(&self, table_id: TableId) -> Arc<keys::KeySlot> {
        self.keys.lock().entry(table_id).or_default().clone()
    }

    /// The key columns and row ids of a table's live rows, per chunk: what
    /// its key indexes are built from.
    fn key_rows(&self, table: &TableDef) -> Result<Vec<(ChunkId, RecordBatch)>> {
        let mut names: Vec<&str> = Vec::new();
        for index in table.unique_indexes() {
            for column in &index.columns {
                if !names.contains(&column.as_str()) {
                    names.push(column);
                }
            }
        }
        names.push(ROWID_COLUMN);
        let Some(snapshot) = self.view().table(table.id) else {
            return Ok(Vec::new());
        };
        let mut rows = Vec::new();
        for chunk in &snapshot.chunks {
            let mut batches = Vec::new();
            for segment in &chunk.chunk.segments {
                self.verify_segment(segment)?;
                batches.extend(segment::read_columns(&self.segment_path(segment), &names)?);
            }
            for batch in &chunk.memtable {
                let schema = batch.schema();
                let indices = names
                    .iter()
                    .map(|n| schema.index_of(n))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                batches.push(batch.project(&indices)?);
            }
            let rowid_index = names.len() - 1;
            for batch in batches {
                let live = DeleteSet::filter_batch(&[&chunk.deleted], &batch, rowid_index)?;
                if live.num_rows() > 0 {
                    rows.push((chunk.chunk.id, live));
                }
            }
        }
        Ok(rows)
    }

    /// Replaces a table's definition by one that differs only in its
    /// indexes. A new unique index is built over the existing rows first,
    /// with writers waiting: a duplicate key fails with
    /// [`Error::UniqueViolation`] and changes nothing.
    /// With a `mark`, the catalog change is tentative.
    pub fn set_indexes(&self, new_table: TableDef, mark: Option<u64>) -> Result<()> {
        let _gate = self.write_gate.write();
        let new_table = Arc::new(new_table);
        let built = if new_table.unique_indexes().next().is_some() {
            let rows = self.key_rows(&new_table)?;
            Some(keys::build(&new_table, rows)?)
        } else {
            None
        };
        self.catalog.transact_tentative(mark, |txn| {
            txn.put_table((*new_table).clone());
            Ok(())
        })?;
        self.key_slot(new_table.id).install(built);
        Ok(())
    }

    /// For each row, the live row holding its key in the table's unique
    /// index `index` (rows in the table's columns, by name), as of the
    /// latest commit: what `INSERT ... ON CONFLICT` finds conflicts with.
    pub fn lookup_keys(
        &self,
        table_id: TableId,
        index: &str,
        rows: &RecordBatch,
    ) -> Result<Vec<Option<RowRef>>> {
        let state = self.catalog.snapshot();
        let Some(table) = state.tables.get(&table_id) else {
            return Err(Error::TableDropped {
                name: table_id.to_string(),
            });
        };
        let slot = self.key_slot(table_id);
        let guard = slot.lock(table, || self.key_rows(table))?;
        keys::lookup(&slot, guard, index, rows)
    }

    /// The live rows of chunk `chunk_id` with these row ids, as of now: how
    /// a statement naming one row by its key reads it, without scanning the
    /// chunk. The batch has the table's storage schema, or, given
    /// `columns` (positions in it, ascending), just those columns: a
    /// segment then decodes only their pages.
    pub fn fetch_rows(
        &self,
        table_id: TableId,
        chunk_id: ChunkId,
        rowids: &[i64],
        columns: Option<&[usize]>,
    ) -> Result<RecordBatch> {
        // Only the one chunk is read, so only it is taken out of the
        // memtables, under the same locks (and in the same epoch) as a view.
        let (state, chunk, _epoch) = {
            let memtables = self.memtables.read();
            let state = self.catalog.snapshot();
            let chunk = state.chunks.get(&chunk_id).cloned().map(|chunk| {
                let (memtable, deleted) = memtables
                    .get(&chunk_id)
                    .map(|m| {
                        (
                            m.frozen.iter().chain(m.active.iter()).cloned().collect(),
                            m.deleted.clone(),
                        )
                    })
                    .unwrap_or_default();
                ChunkSnapshot {
                    chunk,
                    memtable,
                    deleted,
                }
            });
            (state, chunk, self.epoch.lock().clone())
        };
        let table = state
            .tables
            .get(&table_id)
            .cloned()
            .ok_or_else(|| Error::TableDropped {
                name: table_id.to_string(),
            })?;
        let full_schema = table.storage_schema();
        let columns = match columns {
            Some(columns) if columns.iter().all(|c| *c < full_schema.fields().len()) => {
                columns.to_vec()
            }
            Some(_) => {
                return Err(Error::SchemaMismatch {
                    table: table.name.clone(),
                    reason: "fetched columns out of range".to_owned(),
                });
            }
            None => (0..full_schema.fields().len()).collect(),
        };
        let schema = Arc::new(full_schema.project(&columns)?);
        let Some(chunk) = chunk.filter(|c| c.chunk.table_id == table_id) else {
            return Ok(RecordBatch::new_empty(schema));
        };
        let mut wanted: Vec<i64> = rowids
            .iter()
            .copied()
            .filter(|id| !chunk.deleted.contains(*id))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let rowid_index = full_schema.fields().len() - 1;
        let mut found = Vec::new();
        let mut remaining = wanted.len();
        // A memtable batch is searched row by row (its ids are not known
        // to be in order); one wanted id, the point change's case, is a
        // plain comparison that stops at its row (an id is in a chunk once).
        for batch in &chunk.memtable {
            if remaining == 0 {
                break;
            }
            let ids = batch
                .column(rowid_index)
                .as_primitive::<Int64Type>()
                .values();
            let rows: Vec<u32> = match wanted.as_slice() {
                [id] => ids
                    .iter()
                    .position(|candidate| candidate == id)
                    .map(|row| vec![row as u32])
                    .unwrap_or_default(),
                _ => ids
                    .iter()
                    .enumerate()
                    .filter(|(_, id)| wanted.binary_search(id).is_ok())
                    .map(|(row, _)| row as u32)
                    .collect(),
            };
            if !rows.is_empty() {
                remaining = remaining.saturating_sub(rows.len());
                found.push(datafusion::arrow::compute::take_record_batch(
                    &batch.project(&columns)?,
                    &datafusion::arrow::array::UInt32Array::from(rows),
                )?);
            }
        }
        for segment in &chunk.chunk.segments {
            if remaining == 0 {
                break;
            }
            self.verify_segment(segment)?;
            let path = self.segment_path(segment);
            let cached = self
                .segment_metadata
                .lock()
                .get(&segment.file_name)
                .cloned();
            let metadata = match cached {
                Some(metadata) => metadata,
                None => {
                    let metadata = segment::load_metadata(&path)?;
                    self.segment_metadata
                        .lock()
                        .insert(segment.file_name.clone(), metadata.clone());
                    metadata
                }
            };
            for batch in
                segment::read_rows_by_id(&path, &metadata, ROWID_COLUMN, &wanted, &columns)?
            {
                remaining = remaining.saturating_sub(batch.num_rows());
                found.push(conform(&table, &schema, batch)?);
            }
        }
        Ok(concat_batches(&schema, &found)?)
    }

    /// Forgets the key indexes of tables whose rows moved; callers hold the
    /// write gate exclusively.
    fn forget_keys(&self, table_ids: impl IntoIterator<Item = TableId>) {
        let slots = self.keys.lock();
        for id in table_ids {
            if let Some(slot) = slots.get(&id) {
                keys::forget(slot);
            }
        }
    }

    /// Chunk ids for the given chunk starts, creating the missing chunks in
    /// one catalog transaction (which serialises concurrent creators).
    fn ensure_chunks(
        &self,
        table: &TableDef,
        starts: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, ChunkId>> {
        let starts: HashSet<i64> = starts.collect();
        let find = |state: &CatalogState| -> HashMap<i64, ChunkId> {
            state
                .chunks
                .values()
                .filter(|c| c.table_id == table.id && starts.contains(&c.range_start))
                .map(|c| (c.range_start, c.id))
                .collect()
        };
        let found = find(&self.catalog.snapshot());
        if found.len() == starts.len() {
            return Ok(found);
        }
        Ok(self.catalog.transact(|txn| {
            let mut found = find(txn.state());
            let mut starts: Vec<&i64> = starts.iter().collect();
            starts.sort();
            for start in starts {
                if found.contains_key(start) {
                    continue;
                }
                let id = match &table.hypertable {
                    Some(_) => txn.allocate_chunk_id(),
                    // A plain table's one chunk is not a TimescaleDB chunk and takes
                    // no chunk number; its id is derived from the table's.
                    None => PLAIN_TABLE_CHUNK_BASE | table.id,
                };
                let end = match &table.hypertable {
                    Some(h) => start.saturating_add(h.chunk_interval),
                    None => i64::MAX,
                };
                txn.put_chunk(ChunkDef {
                    id,
                    table_id: table.id,
                    range_start: *start,
                    range_end: end,
                    segments: Vec::new(),
                    deletes: None,
                });
                found.insert(*start, id);
            }
            Ok(found)
        })?)
    }

    fn apply(&self, commit: Commit) {
        let mut memtables = self.memtables.write();
        for write in commit.inserts {
            self.memtable_bytes
                .fetch_add(write.batch.get_array_memory_size(), Ordering::Relaxed);
            let memtable = memtables.entry(write.chunk_id).or_default();
            memtable.active.push(write.batch);
            merge_small_tail(&mut memtable.active);
        }
        for delete in commit.deletes {
            // Deleted ids stay in memory and in the WAL until a checkpoint;
            // counting them makes enough deletes start one.
            self.memtable_bytes
                .fetch_add(delete.rowids.len() * 8, Ordering::Relaxed);
            let memtable = memtables.entry(delete.chunk_id).or_default();
            memtable.unflushed_deletes += delete.rowids.len();
            memtable.deleted.add(delete.rowids);
            memtable.delete_version += 1;
        }
    }

    /// A consistent view of a table's chunks and unflushed rows.
    pub fn snapshot(&self, table_id: TableId) -> Option<TableSnapshot> {
        self.view().table(table_id)
    }

    /// Every table as of one moment: what one statement reads, so that it
    /// never sees part of another session's commit, even across tables.
    pub fn view(&self) -> StoreView {
        let memtables = self.memtables.read();
        let state = self.catalog.snapshot();
        let memtables = memtables
            .iter()
            .map(|(id, m)| {
                (
                    *id,
                    (
                        m.frozen.iter().chain(m.active.iter()).cloned().collect(),
                        m.deleted.clone(),
                    ),
                )
            })
            .collect();
        let _epoch = self.epoch.lock().clone();
        StoreView {
            state,
            memtables,
            _epoch,
        }
    }

    pub fn segment_path(&self, segment: &SegmentDef) -> PathBuf {
        self.segment_dir.join(&segment.file_name)
    }

    /// Checks a segment's checksum the first time this process reads it.
    pub fn verify_segment(&self, segment: &SegmentDef) -> Result<()> {
        if self.verified_segments.lock().contains(&segment.file_name) {
            return Ok(());
        }
        segment::verify_segment(&self.segment_dir, segment)?;
        self.verified_segments
            .lock()
            .insert(segment.file_name.clone());
        Ok(())
    }

    /// Asks the checkpoint thread for a checkpoint once the memtables pass the
    /// flush threshold, and waits while they hold twice that much.
    fn maybe_start_checkpoint(&self) {
        let threshold = self.options.flush_threshold_bytes;
        if self.memtable_bytes.load(Ordering::Relaxed) < threshold {
            return;
        }
        self.checkpointer.request();
        self.checkpointer.wait_while(|| {
            self.memtable_bytes.load(Ordering::Relaxed) >= threshold.saturating_mul(2)
        });
    }

    /// Flushes every memtable to segment files, writes delete files, and
    /// trims the WAL.
    pub fn checkpoint(&self) -> Result<()> {
        let _checkpoint = self.checkpoint_lock.lock();
        // Deletes as of the freeze are all in the WAL files about to be
        // trimmed; only their rows may be physically removed, since deletes
        // logged later are replayed and must find their rows' ids unremoved.
        let (new_wal_seq, deletes_at_freeze, next_rowid, delete_bytes) = {
            let _gate = self.write_gate.write();
            let mut memtables = self.memtables.write();
            let mut deletes = HashMap::new();
            let mut delete_bytes = 0;
            for (id, memtable) in memtables.iter_mut() {
                delete_bytes += std::mem::take(&mut memtable.unflushed_deletes) * 8;
                let active = std::mem::take(&mut memtable.active);
                memtable.frozen.extend(active);
                if !memtable.deleted.is_empty()
                    || memtable.delete_version != memtable.persisted_version
                {
                    deletes.insert(
                        *id,
                        (
                            memtable.deleted.clone(),
                            memtable.delete_version != memtable.persisted_version,
                            memtable.delete_version,
                        ),
                    );
                }
            }
            let next_rowid = self.next_rowid.load(Ordering::Relaxed);
            (self.wal.rotate()?, deletes, next_rowid, delete_bytes)
        };
        let frozen: HashMap<ChunkId, Vec<RecordBatch>> = self
            .memtables
            .read()
            .iter()
            .filter(|(_, m)| !m.frozen.is_empty())
            .map(|(id, m)| (*id, m.frozen.clone()))
            .collect();
        let state = self.catalog.snapshot();
        let mut chunk_ids: Vec<ChunkId> = frozen
            .keys()
            .chain(deletes_at_freeze.keys())
            .copied()
            .collect();
        chunk_ids.sort_unstable();
        chunk_ids.dedup();
        let mut changes: Vec<ChunkChange> = Vec::new();
        for chunk_id in chunk_ids {
            let Some(chunk) = state.chunks.get(&chunk_id) else {
                continue;
            };
            let Some(table) = state.tables.get(&chunk.table_id) else {
                continue;
            };
            let no_batches = Vec::new();
            let batches = frozen.get(&chunk_id).unwrap_or(&no_batches);
            let (deleted, dirty, version) = deletes_at_freeze
                .get(&chunk_id)
                .cloned()
                .unwrap_or_default();
            changes.push(self.flush_chunk(
                table,
                chunk,
                batches,
                (&deleted, dirty, version),
                new_wal_seq,
            )?);
        }
        sync_dir(&self.segment_dir)?;
        let freed: usize = frozen
            .values()
            .flat_map(|b| b.iter())
            .map(|b| b.get_array_memory_size())
            .sum::<usize>()
            + delete_bytes;
        let mut retired_files = Vec::new();
        let retired_epoch = {
            let mut memtables = self.memtables.write();
            self.catalog.transact(|txn| {
                for change in &changes {
                    // A chunk dropped during the flush keeps no segment; its
                    // files are orphans removed at the next start.
                    let Some(chunk) = txn.state().chunks.get(&change.chunk_id) else {
                        continue;
                    };
                    let mut chunk = (**chunk).clone();
                    if change.replaces_segments {
                        chunk.segments.clear();
                    }
                    chunk.segments.extend(change.new_segment.iter().cloned());
                    if change.delete_file_changed {
                        chunk.deletes = change.delete_file.clone();
                    }
                    txn.put_chunk(chunk);
                }
                txn.set_meta(META_WAL_REPLAY_FROM, new_wal_seq);
                txn.set_meta(META_NEXT_ROWID, next_rowid as u64);
                Ok(())
            })?;
            for memtable in memtables.values_mut() {
                memtable.frozen.clear();
            }
            for change in &changes {
                retired_files.extend(change.retired_files.iter().cloned());
                if let Some(memtable) = memtables.get_mut(&change.chunk_id) {
                    if !change.removed.is_empty() {
                        memtable.deleted = memtable.deleted.without(&change.removed);
                        memtable.removed.add(change.removed.clone());
                    }
                    if change.delete_file_changed {
                        memtable.persisted_version = change.delete_version;
                    }
                }
            }
            memtables.retain(|_, m| !m.is_empty() || !m.removed.is_empty());
            self.retire_files(&retired_files)
        };
        drop(retired_epoch);
        self.memtable_bytes.fetch_sub(
            freed.min(self.memtable_bytes.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        for (seq, path) in wal::list_wal_files(&self.wal_dir)? {
            if seq < new_wal_seq {
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
            }
        }
        sync_dir(&self.wal_dir)?;
        tracing::debug!(chunks = changes.len(), wal = new_wal_seq, "checkpoint done");
        Ok(())
    }

    /// Writes one chunk's frozen rows, less the deleted ones, as a segment;
    /// rewrites the chunk's segments instead when `deleted` covers enough of
    /// their rows; writes the delete file the chunk needs afterwards.
    fn flush_chunk(
        &self,
        table: &TableDef,
        chunk: &ChunkDef,
        batches: &[RecordBatch],
        (deleted, deletes_dirty, delete_version): (&DeleteSet, bool, u64),
        wal_seq: u64,
    ) -> Result<ChunkChange> {
        let schema = table.storage_schema();
        let rowid_index = schema.fields().len() - 1;
        let time_index = table
            .hypertable
            .as_ref()
            .and_then(|h| table.column_index(&h.time_column));
        let mut removed = Vec::new();
        let keep = |batch: &RecordBatch, removed: &mut Vec<i64>| -> Result<RecordBatch> {
            if deleted.is_empty() {
                return Ok(batch.clone());
            }
            let ids = batch.column(rowid_index).as_primitive::<Int64Type>();
            removed.extend(ids.values().iter().filter(|id| deleted.contains(**id)));
            DeleteSet::filter_batch(&[deleted], batch, rowid_index)
        };
        let segment_rows = chunk.row_count();
        let compact = !deleted.is_empty()
            && segment_rows > 0
            && (deleted.len() as u64).saturating_mul(COMPACT_WHEN_DELETED_OF) >= segment_rows;
        let mut rows = Vec::new();
        let mut retired_files = Vec::new();
        if compact {
            for segment in &chunk.segments {
                self.verify_segment(segment)?;
                for batch in segment::read_segment(&self.segment_path(segment))? {
                    rows.push(keep(&batch, &mut removed)?);
                }
                retired_files.push(segment.file_name.clone());
            }
        }
        for batch in batches {
            rows.push(keep(batch, &mut removed)?);
        }
        let live_rows: usize = rows.iter().map(|b| b.num_rows()).sum();
        let new_segment = if live_rows > 0 {
            let sorted = segment::sorted_rows(&schema, &rows, time_index)?;
            let suffix = if compact { "-c" } else { "" };
            let file_name = format!("{:012}-{wal_seq:012}{suffix}.parquet", chunk.id);
            Some(segment::write_segment(
                &self.segment_dir,
                &file_name,
                &sorted,
                time_index,
            )?)
        } else {
            None
        };
        let delete_file_changed = deletes_dirty || !removed.is_empty();
        let mut delete_file = chunk.deletes.clone();
        if delete_file_changed {
            let remaining = deleted.without(&removed).to_sorted_vec();
            delete_file = if remaining.is_empty() {
                None
            } else {
                let name = format!("{:012}-{wal_seq:012}.del", chunk.id);
                Some(deletes::write_delete_file(
                    &self.segment_dir,
                    &name,
                    &remaining,
                )?)
            };
            retired_files.extend(chunk.deletes.iter().map(|d| d.file_name.clone()));
        }
        Ok(ChunkChange {
            chunk_id: chunk.id,
            replaces_segments: compact,
            new_segment,
            delete_file_changed,
            delete_file,
            delete_version,
            removed,
            retired_files,
        })
    }

    /// Drops chunks with their rows: no insert is in flight while the catalog
    /// forgets them, and their files are deleted once no reader can see them.
    ///
    /// With a `mark` the catalog change is tentative, and only chunks that
    /// hold no rows may go: an undo could not bring rows back.
    pub fn drop_chunks(&self, chunk_ids: &[ChunkId], mark: Option<u64>) -> Result<()> {
        let retired = {
            let _checkpoint = self.checkpoint_lock.lock();
            let _gate = self.write_gate.write();
            let mut memtables = self.memtables.write();
            if mark.is_some() {
                self.refuse_tentative_data_change(&memtables, chunk_ids)?;
            }
            let (files, tables) = self.catalog.transact_tentative(mark, |txn| {
                let mut files = Vec::new();
                let mut tables = HashSet::new();
                for id in chunk_ids {
                    if let Some(chunk) = txn.state().chunks.get(id) {
                        files.extend(chunk_files(chunk));
                        tables.insert(chunk.table_id);
                    }
                    txn.drop_chunk(*id);
                }
                Ok((files, tables))
            })?;
            for id in chunk_ids {
                self.forget_memtable(&mut memtables, *id);
            }
            self.forget_keys(tables);
            self.retire_files(&files)
        };
        drop(retired);
        Ok(())
    }

    /// Fails with [`Error::TentativeDataChange`] if any of the chunks holds
    /// rows or files (segments, a delete file) or unflushed rows.
    fn refuse_tentative_data_change(
        &self,
        memtables: &HashMap<ChunkId, ChunkMemtable>,
        chunk_ids: &[ChunkId],
    ) -> Result<()> {
        let state = self.catalog.snapshot();
        for id in chunk_ids {
            let Some(chunk) = state.chunks.get(id) else {
                continue;
            };
            let unflushed = memtables
                .get(id)
                .is_some_and(|m| !m.active.is_empty() || !m.frozen.is_empty());
            if unflushed || !chunk_files(chunk).is_empty() {
                let table = state
                    .tables
                    .get(&chunk.table_id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                return Err(Error::TentativeDataChange { table });
            }
        }
        Ok(())
    }

    /// Drops a table, its chunks and rows; with a `mark`, tentatively (see
    /// [`Store::drop_chunks`]).
    pub fn drop_table(&self, table_id: TableId, mark: Option<u64>) -> Result<()> {
        let chunk_ids: Vec<ChunkId> = self
            .catalog
            .snapshot()
            .chunks_of(table_id)
            .iter()
            .map(|c| c.id)
            .collect();
        self.drop_chunks(&chunk_ids, mark)?;
        self.catalog.transact_tentative(mark, |txn| {
            txn.drop_table(table_id);
            Ok(())
        })?;
        self.keys.lock().remove(&table_id);
        Ok(())
    }

    /// Rows the table holds (flushed and not).
    pub fn row_count(&self, table_id: TableId) -> u64 {
        let Some(snapshot) = self.snapshot(table_id) else {
            return 0;
        };
        snapshot.chunks.iter().map(ChunkSnapshot::row_count).sum()
    }

    /// Replaces a table's definition with `new_table` (same id), moving every
    /// existing row into the chunks the new definition routes it to. The rows
    /// are written as segment files first; one catalog transaction then swaps
    /// the definition, drops the old chunks and adds the new ones, so a crash
    /// leaves either the old table or the new one, never a mix.
    pub fn redefine_table(&self, new_table: TableDef, mark: Option<u64>) -> Result<()> {
        self.rewrite_table(new_table, Ok, mark)
    }

    /// Like [`Store::redefine_table`], passing every existing row through
    /// `transform` (old columns in, `new_table`'s columns out) on its way:
    /// ALTER TABLE's column changes rewrite the table this way, atomically.
    /// Writers wait meanwhile; a `transform` error leaves the table as it was.
    /// With a `mark`, the change is tentative, and only a table without rows
    /// may be rewritten.
    pub fn rewrite_table(
        &self,
        new_table: TableDef,
        transform: impl Fn(RecordBatch) -> Result<RecordBatch>,
        mark: Option<u64>,
    ) -> Result<()> {
        let _checkpoint = self.checkpoint_lock.lock();
        let _gate = self.write_gate.write();
        let state = self.catalog.snapshot();
        let old_chunks = state.chunks_of(new_table.id);
        if mark.is_some() {
            let ids: Vec<ChunkId> = old_chunks.iter().map(|c| c.id).collect();
            self.refuse_tentative_data_change(&self.memtables.read(), &ids)?;
        }
        let schema = new_table.arrow_schema();
        let storage_schema = new_table.storage_schema();
        let mut rows = Vec::new();
        {
            let memtables = self.memtables.read();
            for chunk in &old_chunks {
                let memtable = memtables.get(&chunk.id);
                let deleted = memtable.map(|m| m.deleted.clone()).unwrap_or_default();
                let mut chunk_rows: Vec<RecordBatch> = memtable
                    .map(|m| m.frozen.iter().chain(m.active.iter()).cloned().collect())
                    .unwrap_or_default();
                for segment in &chunk.segments {
                    self.verify_segment(segment)?;
                    chunk_rows.extend(segment::read_segment(&self.segment_path(segment))?);
                }
                for batch in chunk_rows {
                    let rowid_index = batch.num_columns().saturating_sub(1);
                    rows.push(DeleteSet::filter_batch(&[&deleted], &batch, rowid_index)?);
                }
            }
        }
        let mut parts: HashMap<i64, Vec<RecordBatch>> = HashMap::new();
        for batch in rows {
            // Rows keep their ids: a row id names a row for the life of the row.
            let rowid_index = batch.num_columns().saturating_sub(1);
            let ids = batch.column(rowid_index).clone();
            let user = batch.project(&(0..rowid_index).collect::<Vec<_>>())?;
            let transformed = conform(&new_table, &schema, transform(user)?)?;
            let mut columns = transformed.columns().to_vec();
            columns.push(ids);
            let batch = RecordBatch::try_new(storage_schema.clone(), columns)?;
            for (start, part) in split_by_chunk(&new_table, batch)? {
                parts.entry(start).or_default().push(part);
            }
        }
        let time_index = new_table
            .hypertable
            .as_ref()
            .and_then(|h| new_table.column_index(&h.time_column));
        let mut new_chunks = Vec::new();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (start, batches) in parts {
            let sorted = segment::sorted_rows(&storage_schema, &batches, time_index)?;
            let file_name = format!("t{:012}-{start}-{stamp}.parquet", new_table.id);
            let segment =
                segment::write_segment(&self.segment_dir, &file_name, &sorted, time_index)?;
            new_chunks.push((start, segment));
        }
        sync_dir(&self.segment_dir)?;
        let old_files: Vec<String> = old_chunks.iter().flat_map(|c| chunk_files(c)).collect();
        let retired = {
            let mut memtables = self.memtables.write();
            self.catalog.transact_tentative(mark, |txn| {
                for chunk in &old_chunks {
                    txn.drop_chunk(chunk.id);
                }
                for (start, segment) in &new_chunks {
                    let id = txn.allocate_chunk_id();
                    let end = match &new_table.hypertable {
                        Some(h) => start.saturating_add(h.chunk_interval),
                        None => i64::MAX,
                    };
                    txn.put_chunk(ChunkDef {
                        id,
                        table_id: new_table.id,
                        range_start: *start,
                        range_end: end,
                        segments: vec![segment.clone()],
                        deletes: None,
                    });
                }
                txn.put_table(new_table.clone());
                txn.set_meta(
                    META_NEXT_ROWID,
                    self.next_rowid.load(Ordering::Relaxed) as u64,
                );
                Ok(())
            })?;
            for chunk in &old_chunks {
                self.forget_memtable(&mut memtables, chunk.id);
            }
            self.forget_keys([new_table.id]);
            self.retire_files(&old_files)
        };
        drop(retired);
        Ok(())
    }

    /// Drops a chunk's unflushed rows (the chunk is gone from the catalog).
    fn forget_memtable(&self, memtables: &mut HashMap<ChunkId, ChunkMemtable>, chunk_id: ChunkId) {
        if let Some(memtable) = memtables.remove(&chunk_id) {
            let bytes: usize = memtable
                .active
                .iter()
                .chain(memtable.frozen.iter())
                .map(|b| b.get_array_memory_size())
                .sum();
            self.memtable_bytes.fetch_sub(
                bytes.min(self.memtable_bytes.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
    }

    /// Hands files the catalog no longer lists to the current epoch, which
    /// deletes them once every view that could still list them is gone, and
    /// starts a new epoch. Call under the memtables write lock, right after
    /// the catalog change (views are taken under the read lock), and drop
    /// the returned epoch after releasing it.
    fn retire_files(&self, files: &[String]) -> Arc<Epoch> {
        let next = Arc::new(Epoch::new(self.segment_dir.clone()));
        let mut current = self.epoch.lock();
        let old = std::mem::replace(&mut *current, next.clone());
        old.retired.lock().extend(files.iter().cloned());
        // Views of the old epoch keep the new one (and so later retirements
        // that they might still see) from being cleaned up before them.
        let _ = old.next.set(next);
        let mut verified = self.verified_segments.lock();
        let mut metadata = self.segment_metadata.lock();
        for name in files {
            verified.remove(name);
            metadata.remove(name);
        }
        old
    }
}

/// A span of time between two catalog changes that retire files. Views taken
/// during it hold it; files retired at its end are deleted when it is dropped,
/// which happens only after every earlier epoch (each holds the next).
struct Epoch {
    segment_dir: PathBuf,
    retired: Mutex<Vec<String>>,
    next: std::sync::OnceLock<Arc<Epoch>>,
}

impl Epoch {
    fn new(segment_dir: PathBuf) -> Epoch {
        Epoch {
            segment_dir,
            retired: Mutex::new(Vec::new()),
            next: std::sync::OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch").finish_non_exhaustive()
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        for name in self.retired.get_mut().drain(..) {
            // A file that cannot be removed now is an orphan, removed at the next start.
            if let Err(error) = fs::remove_file(self.segment_dir.join(&name)) {
                tracing::warn!(%error, file = %name, "could not remove retired file");
            }
        }
    }
}

/// The files a chunk lists: its segments and its delete file.
fn chunk_files(chunk: &ChunkDef) -> Vec<String> {
    chunk
        .segments
        .iter()
        .map(|s| s.file_name.clone())
        .chain(chunk.deletes.iter().map(|d| d.file_name.clone()))
        .collect()
}

impl Drop for Store {
    fn drop(&mut self) {
        self.checkpointer.stop();
    }
}

/// What a checkpoint changes in one chunk.
struct ChunkChange {
    chunk_id: ChunkId,
    /// The chunk's segments were rewritten into `new_segment`.
    replaces_segments: bool,
    new_segment: Option<SegmentDef>,
    delete_file_changed: bool,
    delete_file: Option<DeleteFileDef>,
    /// The chunk's delete version the new delete file reflects.
    delete_version: u64,
    /// Deleted row ids whose rows are no longer stored.
    removed: Vec<i64>,
    /// Files the chunk no longer lists.
    retired_files: Vec<String>,
}

/// The checkpoint thread's mailbox.
#[derive(Default)]
struct Checkpointer {
    state: Mutex<CheckpointerState>,
    /// Signals the thread: a checkpoint is requested, or the store is gone.
    wake: Condvar,
    /// Signals writers: a checkpoint ended (memtables may have shrunk).
    done: Condvar,
}

#[derive(Default)]
struct CheckpointerState {
    requested: bool,
    running: bool,
    stopped: bool,
}

impl Checkpointer {
    fn request(&self) {
        let mut state = self.state.lock();
        if !state.requested {
            state.requested = true;
            self.wake.notify_one();
        }
    }

    fn stop(&self) {
        self.state.lock().stopped = true;
        self.wake.notify_all();
        self.done.notify_all();
    }

    /// Blocks while `full()` holds and a checkpoint is pending or running;
    /// returns at once if none is (nothing would ever wake the caller).
    fn wait_while(&self, full: impl Fn() -> bool) {
        let mut state = self.state.lock();
        while full() && (state.requested || state.running) && !state.stopped {
            self.done.wait(&mut state);
        }
    }

    /// The checkpoint thread: one checkpoint per request, until the store is dropped.
    fn run(&self, store: Weak<Store>) {
        loop {
            {
                let mut state = self.state.lock();
                while !state.requested && !state.stopped {
                    self.wake.wait(&mut state);
                }
                if state.stopped {
                    return;
                }
                state.requested = false;
                state.running = true;
            }
            if let Some(store) = store.upgrade()
                && let Err(error) = store.checkpoint()
            {
                tracing::error!(%error, "checkpoint failed; rows stay in the WAL and memtables");
            }
            self.state.lock().running = false;
            self.done.notify_all();
        }
    }
}

/// Gives the batch the table's exact schema (names, metadata), checking types.
fn conform(table: &TableDef, schema: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(Error::SchemaMismatch {
            table: table.name.clone(),
            reason: format!(
                "{} columns for {}",
                batch.num_columns(),
                schema.fields().len()
            ),
        });
    }
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.data_type() != column.data_type() {
            return Err(Error::SchemaMismatch {
                table: table.name.clone(),
                reason: format!(
                    "column \"{}\" is {} but rows carry {}",
                    field.name(),
                    field.data_type(),
                    column.data_type()
                ),
            });
        }
    }
    Ok(RecordBatch::try_new(
        schema.clone(),
        batch.columns().to_vec(),
    )?)
}

/// The time of each row in the hypertable's dimension units: microseconds for
/// timestamps and dates, the value itself for integer time.
fn dimension_values(table: &TableDef, column: &dyn Array, column_name: &str) -> Result<Vec<i64>> {
    if column.null_count() > 0 {
        return Err(Error::NullTime {
            column: column_name.to_owned(),
        });
    }
    Ok(match column.data_type() {
        DataType::Timestamp(unit, _) => (0..column.len())
            .map(|i| timestamp_micros(column, i, unit))
            .collect(),
        DataType::Date32 => column
            .as_primitive::<Date32Type>()
            .values()
            .iter()
            .map(|d| *d as i64 * MICROS_PER_DAY)
            .collect(),
        DataType::Int16 => column
            .as_primitive::<Int16Type>()
            .values()
            .iter()
            .map(|v| *v as i64)
            .collect(),
        DataType::Int32 => column
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|v| *v as i64)
            .collect(),
        DataType::Int64 => column.as_primitive::<Int64Type>().values().to_vec(),
        other => {
            return Err(Error::SchemaMismatch {
                table: table.name.clone(),
                reason: format!("time column has type {other}"),
            });
        }
    })
}

/// The start of the chunk that holds dimension value `value`.
pub fn chunk_start(value: i64, interval: i64) -> i64 {
    value.div_euclid(interval).saturating_mul(interval)
}

/// Splits a batch into one batch per chunk start.
fn split_by_chunk(table: &TableDef, batch: RecordBatch) -> Result<Vec<(i64, RecordBatch)>> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let Some(hypertable) = &table.hypertable else {
        return Ok(vec![(i64::MIN, batch)]);
    };
    let time_index =
        table
            .column_index(&hypertable.time_column)
            .ok_or_else(|| Error::SchemaMismatch {
                table: table.name.clone(),
                reason: format!("no time column \"{}\"", hypertable.time_column),
            })?;
    let values = dimension_values(
        table,
        batch.column(time_index).as_ref(),
        &hypertable.time_column,
    )?;
    let starts: Vec<i64> = values
        .iter()
        .map(|v| chunk_start(*v, hypertable.chunk_interval))
        .collect();
    if starts.iter().all(|s| *s == starts[0]) {
        return Ok(vec![(starts[0], batch)]);
    }
    let mut rows_by_start: HashMap<i64, Vec<u32>> = HashMap::new();
    for (row, start) in starts.iter().enumerate() {
        rows_by_start.entry(*start).or_default().push(row as u32);
    }
    let mut parts: Vec<(i64, RecordBatch)> = rows_by_start
        .into_iter()
        .map(|(start, rows)| Ok((start, take_record_batch(&batch, &UInt32Array::from(rows))?)))
        .collect::<Result<_>>()?;
    parts.sort_by_key(|(start, _)| *start);
    Ok(parts)
}

/// The largest row id of a batch in storage schema (row ids last).
fn max_rowid(batch: &RecordBatch) -> Result<Option<i64>> {
    let Some(column) = batch.columns().last() else {
        return Ok(None);
    };
    let Some(ids) = column.as_primitive_opt::<Int64Type>() else {
        return Err(Error::CorruptRecord {
            reason: "rows without row ids".to_owned(),
        });
    };
    Ok(datafusion::arrow::compute::max(ids))
}

/// Row ids grouped by their rows' chunk (None: read from no chunk).
type IdsByChunk = Vec<(Option<ChunkId>, Vec<i64>)>;

/// The ids of rows to delete, grouped by the chunk they were read from.
fn deleted_ids_by_chunk(table: &TableDef, batches: &[RecordBatch]) -> Result<IdsByChunk> {
    let mut by_chunk: HashMap<Option<ChunkId>, Vec<i64>> = HashMap::new();
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        let missing = |name: &str| Error::SchemaMismatch {
            table: table.name.clone(),
            reason: format!("rows to delete lack column \"{name}\""),
        };
        let ids = batch
            .column_by_name(ROWID_COLUMN)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| missing(ROWID_COLUMN))?;
        let chunks = batch
            .column_by_name(CHUNK_COLUMN)
            .and_then(|c| c.as_primitive_opt::<UInt64Type>())
            .ok_or_else(|| missing(CHUNK_COLUMN))?;
        for (id, chunk) in ids.values().iter().zip(chunks.iter()) {
            by_chunk.entry(chunk).or_default().push(*id);
        }
    }
    let mut grouped: IdsByChunk = by_chunk.into_iter().collect();
    for (_, ids) in &mut grouped {
        ids.sort_unstable();
        ids.dedup();
    }
    grouped.sort_by_key(|(chunk, _)| *chunk);
    Ok(grouped)
}

/// Merges the trailing run of small batches into one when it grows long.
fn merge_small_tail(batches: &mut Vec<RecordBatch>) {
    let small = batches
        .iter()
        .rev()
        .take_while(|b| b.num_rows() < SMALL_BATCH_ROWS)
        .count();
    if small < SMALL_BATCHES_MAX {
        return;
    }
    let tail = batches.split_off(batches.len() - small);
    match concat_batches(&tail[0].schema(), &tail) {
        Ok(merged) => batches.push(merged),
        // Batches of one chunk share the table schema, so this cannot fail; if it
        // ever did, keeping them unmerged is still correct.
        Err(_) => batches.extend(tail),
    }
}

#[cfg(test)]
mod tests;
