//! Persistence of the catalog in redb.
//!
//! Seven redb tables hold the entries: `tables` and `chunks` keyed by id,
//! `sequences`, `views` and `roles` keyed by name (values are JSON), `meta`
//! (name -> u64), and `undo` (mark -> JSON list of before-images).
//! A [`CatalogTxn`] records which keys it changed; `transact` writes exactly
//! those in one redb write transaction. redb commits with fsync, so once
//! `transact` returns the change survives a crash, and a crash before that
//! leaves the previous catalog intact.
//!
//! Tentative changes: a transaction block's DDL is applied at once with
//! [`Catalog::transact_tentative`], which records, in the same redb write,
//! the before-image of every entry it changes for the first time under the
//! block's mark. COMMIT drops the record ([`CatalogTxn::forget_undo`]) in
//! the catalog transaction that records the mark; ROLLBACK, a dropped
//! connection, or a restart after a crash puts the before-images back
//! ([`Catalog::undo`]). `meta` entries are counters and flags and are never
//! undone, nor is a sequence's position, so an id or a value handed out is
//! never handed out again.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::{
    CatalogState, ChunkDef, ChunkId, RoleDef, SequenceDef, TableDef, TableId, ViewDef,
};
use crate::{Error, Result};

const TABLES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("tables");
const CHUNKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("chunks");
const SEQUENCES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sequences");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const VIEWS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("views");
const UNDO: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("undo");
const ROLES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("roles");

/// Key in `meta` of the next id handed out for tables and chunks.
const NEXT_ID: &str = "next_id";
/// Key in `meta` of the next chunk id.
const NEXT_CHUNK_ID: &str = "next_chunk_id";
/// Key in `meta` of the next TimescaleDB hypertable id.
const NEXT_HYPERTABLE_ID: &str = "next_hypertable_id";

/// An entry as it was before a tentative change first touched it
/// (`None`: it did not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum UndoEntry {
    Table {
        id: TableId,
        before: Option<TableDef>,
    },
    Chunk {
        id: ChunkId,
        before: Option<ChunkDef>,
    },
    Sequence {
        name: String,
        before: Option<SequenceDef>,
    },
    View {
        name: String,
        before: Option<ViewDef>,
    },
    Role {
        name: String,
        before: Option<RoleDef>,
    },
}

impl UndoEntry {
    /// The entry's key, to record only the first before-image of each.
    fn key(&self) -> (u8, String) {
        match self {
            UndoEntry::Table { id, .. } => (0, id.to_string()),
            UndoEntry::Chunk { id, .. } => (1, id.to_string()),
            UndoEntry::Sequence { name, .. } => (2, name.clone()),
            UndoEntry::View { name, .. } => (3, name.clone()),
            UndoEntry::Role { name, .. } => (4, name.clone()),
        }
    }
}

/// The durable catalog and its current snapshot.
pub struct Catalog {
    db: Database,
    state: RwLock<Arc<CatalogState>>,
    /// Serialises writers: each transaction starts from the latest snapshot.
    write_lock: Mutex<()>,
    /// The before-images of the open tentative changes, by mark, as stored
    /// in the `undo` table. Changed only under `write_lock`.
    undo: Mutex<BTreeMap<u64, Vec<UndoEntry>>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Writes the entries of a table keyed by name that a transaction changed
/// (`changed`) as they now are in `current`, removing those it dropped.
fn write_named<T: Serialize>(
    write: &redb::WriteTransaction,
    definition: TableDefinition<'_, &str, &[u8]>,
    changed: &BTreeSet<String>,
    current: &BTreeMap<String, T>,
) -> Result<()> {
    let mut table = write.open_table(definition)?;
    for name in changed {
        match current.get(name) {
            Some(entry) => {
                table.insert(name.as_str(), encode(entry).as_slice())?;
            }
            None => {
                table.remove(name.as_str())?;
            }
        }
    }
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain structs of strings and numbers into a Vec cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

impl Catalog {
    /// Opens (or creates) the catalog file and loads it into memory.
    pub fn open(path: &Path) -> Result<Catalog> {
        let db = Database::create(path)?;
        let mut state = CatalogState::default();
        {
            let write = db.begin_write()?;
            // Create the tables on first open so readers never see them missing.
            write.open_table(TABLES)?;
            write.open_table(CHUNKS)?;
            write.open_table(SEQUENCES)?;
            write.open_table(META)?;
            write.open_table(VIEWS)?;
            write.open_table(UNDO)?;
            write.open_table(ROLES)?;
            write.commit()?;
        }
        let read = db.begin_read()?;
        for entry in read.open_table(TABLES)?.iter()? {
            let (key, value) = entry?;
            let table: TableDef = decode(&format!("tables/{}", key.value()), value.value())?;
            state.table_names.insert(table.name.clone(), table.id);
            state.tables.insert(table.id, Arc::new(table));
        }
        for entry in read.open_table(CHUNKS)?.iter()? {
            let (key, value) = entry?;
            let chunk: ChunkDef = decode(&format!("chunks/{}", key.value()), value.value())?;
            state.chunks.insert(chunk.id, Arc::new(chunk));
        }
        for entry in read.open_table(SEQUENCES)?.iter()? {
            let (key, value) = entry?;
            let mut sequence: SequenceDef =
                decode(&format!("sequences/{}", key.value()), value.value())?;
            // Values up to the reservation may have been handed out before a crash.
            if sequence.reserved_through.is_some() {
                sequence.last_value = sequence.reserved_through;
            }
            state.sequences.insert(sequence.name.clone(), sequence);
        }
        for entry in read.open_table(VIEWS)?.iter()? {
            let (key, value) = entry?;
            let view: ViewDef = decode(&format!("views/{}", key.value()), value.value())?;
            state.views.insert(view.name.clone(), view);
        }
        for entry in read.open_table(META)?.iter()? {
            let (key, value) = entry?;
            state.meta.insert(key.value().to_owned(), value.value());
        }
        for entry in read.open_table(ROLES)?.iter()? {
            let (key, value) = entry?;
            let role: RoleDef = decode(&format!("roles/{}", key.value()), value.value())?;
            state.roles.insert(role.name.clone(), role);
        }
        let mut undo = BTreeMap::new();
        for entry in read.open_table(UNDO)?.iter()? {
            let (key, value) = entry?;
            let entries: Vec<UndoEntry> = decode(&format!("undo/{}", key.value()), value.value())?;
            undo.insert(key.value(), entries);
        }
        Ok(Catalog {
            db,
            state: RwLock::new(Arc::new(state)),
            write_lock: Mutex::new(()),
            undo: Mutex::new(undo),
        })
    }

    /// The marks of tentative changes neither committed nor undone.
    pub fn tentative_marks(&self) -> Vec<u64> {
        self.undo.lock().keys().copied().collect()
    }

    /// The current catalog; it never changes under the caller.
    pub fn snapshot(&self) -> Arc<CatalogState> {
        self.state.read().clone()
    }

    /// Runs `f` on a copy of the catalog and makes its changes durable and
    /// visible together. If `f` fails nothing changes.
    pub fn transact<R>(&self, f: impl FnOnce(&mut CatalogTxn) -> Result<R>) -> Result<R> {
        self.transact_tentative(None, f)
    }

    /// Like [`Catalog::transact`]; with a `mark`, the change is tentative:
    /// the before-image of each table, chunk, sequence and view it changes
    /// for the first time under `mark` is recorded with it, for
    /// [`Catalog::undo`].
    pub fn transact_tentative<R>(
        &self,
        mark: Option<u64>,
        f: impl FnOnce(&mut CatalogTxn) -> Result<R>,
    ) -> Result<R> {
        let _writer = self.write_lock.lock();
        let base = self.snapshot();
        let mut txn = CatalogTxn {
            state: (*base).clone(),
            tables: BTreeSet::new(),
            chunks: BTreeSet::new(),
            sequences: BTreeSet::new(),
            views: BTreeSet::new(),
            roles: BTreeSet::new(),
            meta: BTreeSet::new(),
            forget_undo: BTreeSet::new(),
        };
        let result = f(&mut txn)?;
        let undo = mark.map(|mark| (mark, self.undo_entries(mark, &base, &txn)));
        self.persist(&txn, undo.as_ref())?;
        let mut records = self.undo.lock();
        for mark in &txn.forget_undo {
            records.remove(mark);
        }
        if let Some((mark, entries)) = undo {
            records.insert(mark, entries);
        }
        drop(records);
        *self.state.write() = Arc::new(txn.state);
        Ok(result)
    }

    /// The undo record of `mark` with the before-images (from `base`) of
    /// the entries `txn` changes that the record does not hold yet.
    fn undo_entries(&self, mark: u64, base: &CatalogState, txn: &CatalogTxn) -> Vec<UndoEntry> {
        let mut entries = self.undo.lock().get(&mark).cloned().unwrap_or_default();
        let mut known: HashSet<(u8, String)> = entries.iter().map(UndoEntry::key).collect();
        let changed = txn
            .tables
            .iter()
            .map(|id| UndoEntry::Table {
                id: *id,
                before: base.tables.get(id).map(|t| (**t).clone()),
            })
            .chain(txn.chunks.iter().map(|id| UndoEntry::Chunk {
                id: *id,
                before: base.chunks.get(id).map(|c| (**c).clone()),
            }))
            .chain(txn.sequences.iter().map(|name| UndoEntry::Sequence {
                name: name.clone(),
                before: base.sequences.get(name).cloned(),
            }))
            .chain(txn.views.iter().map(|name| UndoEntry::View {
                name: name.clone(),
                before: base.views.get(name).cloned(),
            }))
            .chain(txn.roles.iter().map(|name| UndoEntry::Role {
                name: name.clone(),
                before: base.roles.get(name).cloned(),
            }));
        for entry in changed {
            if known.insert(entry.key()) {
                entries.push(entry);
            }
        }
        entries
    }

    /// Puts back what the tentative changes under `mark` changed, in one
    /// transaction, and forgets the record. Chunks left without their table
    /// (made for the rows of a block whose table this removes) go too.
    /// Returns the ids of the tables whose definition changed.
    pub fn undo(&self, mark: u64) -> Result<Vec<TableId>> {
        let Some(entries) = self.undo.lock().get(&mark).cloned() else {
            return Ok(Vec::new());
        };
        self.transact(|txn| {
            // Tables the block created go first, so that a table it dropped
            // and then created again under the same name gets its name back.
            let mut tables = Vec::new();
            for entry in &entries {
                if let UndoEntry::Table { id, before: None } = entry {
                    tables.push(*id);
                    txn.drop_table(*id);
                }
            }
            for entry in &entries {
                if let UndoEntry::Table {
                    id,
                    before: Some(table),
                } = entry
                {
                    tables.push(*id);
                    txn.put_table(table.clone());
                }
            }
            for entry in entries {
                match entry {
                    UndoEntry::Table { .. } => {}
                    UndoEntry::Chunk { id, before } => match before {
                        Some(chunk) => txn.put_chunk(chunk),
                        None => txn.drop_chunk(id),
                    },
                    UndoEntry::Sequence { name, before } => match before {
                        Some(mut sequence) => {
                            // Values handed out since stay handed out: the
                            // sequence keeps its current position.
                            if let Some(current) = txn.state.sequences.get(&name) {
                                sequence.last_value = current.last_value;
                                sequence.reserved_through = current.reserved_through;
                            }
                            txn.put_sequence(sequence)
                        }
                        None => txn.drop_sequence(&name),
                    },
                    UndoEntry::View { name, before } => match before {
                        Some(view) => txn.put_view(view),
                        None => txn.drop_view(&name),
                    },
                    UndoEntry::Role { name, before } => match before {
                        Some(role) => txn.put_role(role),
                        None => txn.drop_role(&name),
                    },
                }
            }
            let orphans: Vec<ChunkId> = txn
                .state
                .chunks
                .values()
                .filter(|c| !txn.state.tables.contains_key(&c.table_id))
                .map(|c| c.id)
                .collect();
            for id in orphans {
                txn.drop_chunk(id);
            }
            txn.forget_undo(mark);
            Ok(tables)
        })
    }

    fn persist(&self, txn: &CatalogTxn, undo: Option<&(u64, Vec<UndoEntry>)>) -> Result<()> {
        if txn.tables.is_empty()
            && txn.chunks.is_empty()
            && txn.sequences.is_empty()
            && txn.views.is_empty()
            && txn.roles.is_empty()
            && txn.meta.is_empty()
            && txn.forget_undo.is_empty()
        {
            return Ok(());
        }
        let write = self.db.begin_write()?;
        {
            let mut records = write.open_table(UNDO)?;
            for mark in &txn.forget_undo {
                records.remove(*mark)?;
            }
            if let Some((mark, entries)) = undo {
                records.insert(*mark, encode(entries).as_slice())?;
            }
            let mut tables = write.open_table(TABLES)?;
            for id in &txn.tables {
                match txn.state.tables.get(id) {
                    Some(table) => {
                        tables.insert(*id, encode(table.as_ref()).as_slice())?;
                    }
                    None => {
                        tables.remove(*id)?;
                    }
                }
            }
            let mut chunks = write.open_table(CHUNKS)?;
            for id in &txn.chunks {
                match txn.state.chunks.get(id) {
                    Some(chunk) => {
                        chunks.insert(*id, encode(chunk.as_ref()).as_slice())?;
                    }
                    None => {
                        chunks.remove(*id)?;
                    }
                }
            }
            write_named(&write, SEQUENCES, &txn.sequences, &txn.state.sequences)?;
            write_named(&write, VIEWS, &txn.views, &txn.state.views)?;
            write_named(&write, ROLES, &txn.roles, &txn.state.roles)?;
            let mut meta = write.open_table(META)?;
            for key in &txn.meta {
                match txn.state.meta.get(key) {
                    Some(value) => {
                        meta.insert(key.as_str(), *value)?;
                    }
                    None => {
                        meta.remove(key.as_str())?;
                    }
                }
            }
        }
        write.commit()?;
        Ok(())
    }
}

/// A set of catalog changes being prepared; see [`Catalog::transact`].
pub struct CatalogTxn {
    state: CatalogState,
    tables: BTreeSet<TableId>,
    chunks: BTreeSet<ChunkId>,
    sequences: BTreeSet<String>,
    views: BTreeSet<String>,
    roles: BTreeSet<String>,
    meta: BTreeSet<String>,
    /// Marks whose tentative changes this transaction makes final.
    forget_undo: BTreeSet<u64>,
}

impl CatalogTxn {
    /// Makes the tentative changes under `mark` final: their undo record
    /// goes with this transaction.
    pub fn forget_undo(&mut self, mark: u64) {
        self.forget_undo.insert(mark);
    }

    /// The catalog as this transaction has changed it so far.
    pub fn state(&self) -> &CatalogState {
        &self.state
    }

    /// A fresh table id; ids are never reused.
    pub fn allocate_id(&mut self) -> u64 {
        let next = self.state.meta_value(NEXT_ID).max(1);
        self.set_meta(NEXT_ID, next + 1);
        next
    }

    /// A fresh chunk id (1, 2, ...), numbered apart from tables as TimescaleDB
    /// numbers its chunks, so chunk names match (`_hyper_1_1_chunk`).
    pub fn allocate_chunk_id(&mut self) -> u64 {
        let next = self.state.meta_value(NEXT_CHUNK_ID).max(1);
        self.set_meta(NEXT_CHUNK_ID, next + 1);
        next
    }

    /// A fresh TimescaleDB hypertable id (1, 2, ...).
    pub fn allocate_hypertable_id(&mut self) -> u32 {
        let next = self.state.meta_value(NEXT_HYPERTABLE_ID).max(1);
        self.set_meta(NEXT_HYPERTABLE_ID, next + 1);
        next as u32
    }

    pub fn set_meta(&mut self, key: &str, value: u64) {
        self.state.meta.insert(key.to_owned(), value);
        self.meta.insert(key.to_owned());
    }

    /// Adds a table; fails if the name is taken.
    pub fn create_table(&mut self, table: TableDef) -> Result<()> {
        if self.state.relation_exists(&table.name) {
            return Err(Error::TableExists { name: table.name });
        }
        self.put_table(table);
        Ok(())
    }

    /// Replaces (or adds) a table definition under its id.
    pub fn put_table(&mut self, table: TableDef) {
        if let Some(old) = self.state.tables.get(&table.id)
            && old.name != table.name
        {
            let old_name = old.name.clone();
            self.state.table_names.remove(&old_name);
        }
        self.state.table_names.insert(table.name.clone(), table.id);
        self.tables.insert(table.id);
        self.state.tables.insert(table.id, Arc::new(table));
    }

    /// Removes a table with its chunks and owned sequences.
    pub fn drop_table(&mut self, table_id: TableId) {
        if let Some(table) = self.state.tables.remove(&table_id) {
            self.state.table_names.remove(&table.name);
        }
        self.tables.insert(table_id);
        let chunk_ids: Vec<ChunkId> = self
            .state
            .chunks
            .values()
            .filter(|c| c.table_id == table_id)
            .map(|c| c.id)
            .collect();
        for id in chunk_ids {
            self.drop_chunk(id);
        }
        let owned: Vec<String> = self
            .state
            .sequences
            .values()
            .filter(|s| s.owned_by.as_ref().is_some_and(|(t, _)| *t == table_id))
            .map(|s| s.name.clone())
            .collect();
        for name in owned {
            self.state.sequences.remove(&name);
            self.sequences.insert(name);
        }
    }

    pub fn put_chunk(&mut self, chunk: ChunkDef) {
        self.chunks.insert(chunk.id);
        self.state.chunks.insert(chunk.id, Arc::new(chunk));
    }

    pub fn drop_chunk(&mut self, chunk_id: ChunkId) {
        self.state.chunks.remove(&chunk_id);
        self.chunks.insert(chunk_id);
    }

    pub fn create_sequence(&mut self, sequence: SequenceDef) -> Result<()> {
        if self.state.relation_exists(&sequence.name) {
            return Err(Error::SequenceExists {
                name: sequence.name,
            });
        }
        self.put_sequence(sequence);
        Ok(())
    }

    pub fn put_sequence(&mut self, sequence: SequenceDef) {
        self.sequences.insert(sequence.name.clone());
        self.state.sequences.insert(sequence.name.clone(), sequence);
    }

    /// Adds or replaces a view.
    pub fn put_view(&mut self, view: ViewDef) {
        self.views.insert(view.name.clone());
        self.state.views.insert(view.name.clone(), view);
    }

    /// Adds or replaces a role.
    pub fn put_role(&mut self, role: RoleDef) {
        self.roles.insert(role.name.clone());
        self.state.roles.insert(role.name.clone(), role);
    }

    pub fn drop_role(&mut self, name: &str) {
        self.state.roles.remove(name);
        self.roles.insert(name.to_owned());
    }

    pub fn drop_view(&mut self, name: &str) {
        self.state.views.remove(name);
        self.views.insert(name.to_owned());
    }

    pub fn drop_sequence(&mut self, name: &str) {
        self.state.sequences.remove(name);
        self.sequences.insert(name.to_owned());
    }

    pub fn sequence_mut(&mut self, name: &str) -> Result<&mut SequenceDef> {
        self.sequences.insert(name.to_owned());
        self.state
            .sequences
            .get_mut(name)
            .ok_or_else(|| Error::SequenceNotFound {
                name: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ColumnDef, HypertableDef, SegmentDef};
    use tempora_types::PgType;

    fn table(id: TableId, name: &str) -> TableDef {
        TableDef {
            id,
            name: name.to_owned(),
            columns: vec![ColumnDef {
                name: "time".to_owned(),
                pg_type: PgType::Timestamptz,
                not_null: true,
                default_sql: None,
                identity_always: false,
            }],
            hypertable: Some(HypertableDef {
                hypertable_id: 1,
                time_column: "time".to_owned(),
                chunk_interval: 86_400_000_000,
                integer_time: false,
            }),
            indexes: Vec::new(),
            checks: Vec::new(),
        }
    }

    #[test]
    fn changes_survive_reopen_and_failed_transactions_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.redb");
        {
            let catalog = Catalog::open(&path).unwrap();
            catalog
                .transact(|txn| {
                    let id = txn.allocate_id();
                    txn.create_table(table(id, "metrics"))?;
                    let chunk_id = txn.allocate_id();
                    txn.put_chunk(ChunkDef {
                        id: chunk_id,
                        table_id: id,
                        range_start: 0,
                        range_end: 86_400_000_000,
                        segments: vec![SegmentDef {
                            file_name: "a.seg".to_owned(),
                            row_count: 3,
                            byte_size: 10,
                            crc32: 7,
                        }],
                        deletes: None,
                    });
                    Ok(())
                })
                .unwrap();
            let failed = catalog.transact(|txn| {
                let id = txn.allocate_id();
                txn.create_table(table(id, "other"))?;
                txn.create_table(table(id + 1, "metrics"))
            });
            assert!(matches!(failed, Err(Error::TableExists { .. })));
            assert!(catalog.snapshot().table_by_name("other").is_none());
        }
        let catalog = Catalog::open(&path).unwrap();
        let state = catalog.snapshot();
        let metrics = state.table_by_name("metrics").unwrap();
        assert_eq!(state.chunks_of(metrics.id).len(), 1);
        assert_eq!(state.chunks_of(metrics.id)[0].row_count(), 3);
        assert!(state.table_by_name("other").is_none());
        catalog
            .transact(|txn| {
                txn.drop_table(metrics.id);
                Ok(())
            })
            .unwrap();
        drop(catalog);
        let catalog = Catalog::open(&path).unwrap();
        assert!(catalog.snapshot().tables.is_empty());
        assert!(catalog.snapshot().chunks.is_empty());
    }

    #[test]
    fn tentative_changes_are_undone_or_made_final_also_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.redb");
        let catalog = Catalog::open(&path).unwrap();
        let kept = catalog
            .transact(|txn| {
                let id = txn.allocate_id();
                txn.create_table(table(id, "kept"))?;
                Ok(id)
            })
            .unwrap();
        // Mark 7: drop `kept`'s definition change, create `made` and a view.
        catalog
            .transact_tentative(Some(7), |txn| {
                let mut changed = (**txn.state().tables.get(&kept).unwrap()).clone();
                changed.name = "renamed".to_owned();
                txn.put_table(changed);
                let id = txn.allocate_id();
                txn.create_table(table(id, "made"))?;
                txn.put_view(crate::model::ViewDef {
                    name: "v".to_owned(),
                    query: "SELECT 1".to_owned(),
                    columns: Vec::new(),
                    depends_on: Vec::new(),
                    column_types: Vec::new(),
                });
                Ok(())
            })
            .unwrap();
        // A second change under the same mark keeps the first before-image.
        catalog
            .transact_tentative(Some(7), |txn| {
                let mut changed = (**txn.state().tables.get(&kept).unwrap()).clone();
                changed.name = "renamed_again".to_owned();
                txn.put_table(changed);
                Ok(())
            })
            .unwrap();
        // Mark 8 is made final by the transaction that forgets it.
        catalog
            .transact_tentative(Some(8), |txn| {
                let id = txn.allocate_id();
                txn.create_table(table(id, "final"))
            })
            .unwrap();
        catalog
            .transact(|txn| {
                txn.forget_undo(8);
                Ok(())
            })
            .unwrap();
        assert_eq!(catalog.tentative_marks(), vec![7]);
        drop(catalog);
        // After a crash the record is still there, and undoing it restores
        // the catalog as it was before mark 7.
        let catalog = Catalog::open(&path).unwrap();
        assert_eq!(catalog.tentative_marks(), vec![7]);
        let next_id = catalog.snapshot().meta_value(NEXT_ID);
        catalog.undo(7).unwrap();
        let state = catalog.snapshot();
        assert!(state.table_by_name("kept").is_some());
        assert!(state.table_by_name("renamed_again").is_none());
        assert!(state.table_by_name("made").is_none());
        assert!(state.table_by_name("final").is_some());
        assert!(state.views.is_empty());
        // Ids handed out are never handed out again.
        assert_eq!(state.meta_value(NEXT_ID), next_id);
        assert!(catalog.tentative_marks().is_empty());
        drop(catalog);
        let catalog = Catalog::open(&path).unwrap();
        assert!(catalog.tentative_marks().is_empty());
        assert!(catalog.snapshot().table_by_name("made").is_none());
    }
}
