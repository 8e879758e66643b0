//! Transaction blocks: BEGIN / COMMIT / ROLLBACK, savepoints, and the
//! failed-block state in which PostgreSQL ignores commands until the block ends.
//!
//! A block's writes are staged in the session (`SessionReads`, where its own
//! statements read them) and reach the store at COMMIT as one WAL record, so a
//! crash keeps all of a committed block or none of it, and no other session
//! sees a part. Isolation is READ COMMITTED: each statement reads the store as
//! of its first scan, plus the block's own writes. Rows are only appended, so
//! concurrent blocks never conflict on a row; keyed writes come with keys.
//!
//! DDL inside a block changes the catalog at once, tentatively: under the
//! block's catalog mark, which records the before-image of each entry it
//! changes (`Catalog::transact_tentative`). The block's later statements see
//! the change; the tables it touched are locked for the block (see
//! `locks`), so no other session reads or writes them until the block ends.
//! COMMIT writes the staged rows with the mark and makes the change final
//! in the same catalog transaction; ROLLBACK, a failed COMMIT or a closed
//! connection put the before-images back, and so does the restart after a
//! crash (`Store::open`). What an undo could not bring back, dropping or
//! rewriting stored rows, is refused inside a block with 25001.
//! `ALTER TABLE ... RENAME TO` is staged like a write instead, as before.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::RecordBatch;
use datafusion::sql::sqlparser::ast::{
    self as ast, Ident, Statement, TransactionAccessMode, TransactionIsolationLevel,
    TransactionMode,
};

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use tempora_catalog::TableDef;
use tempora_query::visibility::{Resolved, StagedWrite, net_writes, rowids};
use tempora_storage::{Committed, OnConflict, TableWrite, keys};

/// A block's rows that passed the key check, and the ids of those skipped.
struct KeptRows {
    rows: RecordBatch,
    skipped: Vec<i64>,
}

use crate::error::SqlState;
use crate::session::{Output, Session};
use crate::{Error, Result};

/// Where a session stands, as ReadyForQuery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// No transaction block: each statement commits on its own ('I').
    Idle,
    /// Inside a block ('T').
    InBlock,
    /// Inside a block that failed; only ROLLBACK ends it ('E').
    Failed,
}

/// An open transaction block.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    savepoints: Vec<Savepoint>,
    failed: bool,
    read_only: bool,
    /// Opened by a multi-statement query string, not by BEGIN.
    pub(crate) implicit: bool,
    /// The catalog mark of the block's tentative DDL, once it ran some.
    ddl_mark: std::sync::OnceLock<u64>,
    /// How many DDL statements the block ran.
    ddl_statements: usize,
}

#[derive(Debug)]
struct Savepoint {
    name: String,
    /// The number of staged writes when the savepoint was set.
    mark: usize,
    /// The block's DDL statements when the savepoint was set.
    ddl_statements: usize,
}

fn error(code: SqlState, message: impl Into<String>) -> Error {
    Error::Transaction {
        message: message.into(),
        code,
    }
}

/// 25P02: what every statement but ROLLBACK gets in a failed block.
pub(crate) fn in_failed_block() -> Error {
    error(
        SqlState::InFailedSqlTransaction,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// Whether a statement may run in a block that failed.
fn ends_failed_block(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Commit { .. } | Statement::Rollback { .. }
    )
}

fn check_modes(modes: &[TransactionMode]) -> Result<bool> {
    let mut read_only = false;
    for mode in modes {
        match mode {
            TransactionMode::AccessMode(TransactionAccessMode::ReadOnly) => read_only = true,
            TransactionMode::AccessMode(TransactionAccessMode::ReadWrite) => read_only = false,
            // PostgreSQL runs READ UNCOMMITTED as READ COMMITTED, and so does tempora.
            TransactionMode::IsolationLevel(
                TransactionIsolationLevel::ReadCommitted
                | TransactionIsolationLevel::ReadUncommitted,
            ) => {}
            TransactionMode::IsolationLevel(level) => {
                return Err(Error::Unsupported {
                    message: format!(
                        "isolation level {level} is not supported: tempora runs transactions at READ COMMITTED"
                    ),
                });
            }
        }
    }
    Ok(read_only)
}

fn tag(tag: &str) -> Output {
    Output::Command {
        tag: tag.to_owned(),
    }
}

impl Session {
    pub fn transaction_status(&self) -> TransactionStatus {
        match &self.transaction {
            None => TransactionStatus::Idle,
            Some(t) if t.failed || self.stream_failed.load(Ordering::Relaxed) => {
                TransactionStatus::Failed
            }
            Some(_) => TransactionStatus::InBlock,
        }
    }

    /// Marks the open block failed: a statement in it raised an error (also
    /// one raised while its rows were being sent).
    pub fn statement_failed(&mut self) {
        if let Some(transaction) = &mut self.transaction {
            transaction.failed = true;
        }
    }

    /// 25P02 for every statement but COMMIT/ROLLBACK in a failed block.
    pub(crate) fn check_not_failed(&self, statement: &Statement) -> Result<()> {
        match &self.transaction {
            Some(t) if t.failed && !ends_failed_block(statement) => Err(in_failed_block()),
            _ => Ok(()),
        }
    }

    /// The catalog mark under which DDL changes the catalog: the block's
    /// (reserved at its first DDL), or None outside a block.
    pub(crate) fn ddl_mark(&self) -> Option<u64> {
        let transaction = self.transaction.as_ref()?;
        Some(
            *transaction
                .ddl_mark
                .get_or_init(|| self.engine().store().reserve_mark()),
        )
    }

    /// Changes the catalog for a DDL statement: at once outside a block,
    /// tentatively under the block's mark inside one.
    pub(crate) fn catalog_transact<R>(
        &self,
        f: impl FnOnce(&mut tempora_catalog::CatalogTxn) -> tempora_catalog::Result<R>,
    ) -> Result<R> {
        let mark = self.ddl_mark();
        Ok(self
            .engine()
            .store()
            .catalog()
            .transact_tentative(mark, f)?)
    }

    /// The ids of the tables `statement` names, as this session resolves
    /// the names (a TimescaleDB call names its table in a string); with
    /// `targets_only`, only the tables a DDL statement changes, not those
    /// it reads (a view's query, the source of `LIKE`).
    fn named_tables(
        &self,
        statement: &Statement,
        targets_only: bool,
    ) -> Vec<tempora_catalog::TableId> {
        let mut names = Vec::new();
        let mut add = |name: &ast::ObjectName| {
            if let Ok(name) = crate::names::table_name(name) {
                names.push(name);
            }
        };
        match statement {
            Statement::CreateTable(create) if targets_only => add(&create.name),
            Statement::AlterTable(alter) if targets_only => add(&alter.name),
            Statement::CreateIndex(create) if targets_only => add(&create.table_name),
            Statement::Drop { names, .. } if targets_only => names.iter().for_each(&mut add),
            Statement::Truncate(truncate) if targets_only => {
                truncate.table_names.iter().for_each(|t| add(&t.name))
            }
            Statement::Query(_) => {}
            _ if targets_only => {}
            _ => {
                let _ = ast::visit_relations(statement, |name| {
                    add(name);
                    std::ops::ControlFlow::<()>::Continue(())
                });
            }
        }
        if let Statement::Query(query) = statement {
            if let Some(relation) = crate::timescale::api_call(query).and_then(|c| c.relation()) {
                names.push(relation);
            } else if !targets_only {
                let _ = ast::visit_relations(statement, |name| {
                    if let Ok(name) = crate::names::table_name(name) {
                        names.push(name);
                    }
                    std::ops::ControlFlow::<()>::Continue(())
                });
            }
        }
        let state = self.engine().store().catalog().snapshot();
        let mut ids: Vec<_> = names
            .iter()
            .filter_map(|name| match self.reads.resolve(name) {
                Resolved::AsIs => state.table_by_name(name).map(|t| t.id),
                Resolved::Renamed(catalog_name) => state.table_by_name(&catalog_name).map(|t| t.id),
                Resolved::Hidden => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Before a statement: waits while another block's DDL holds a table
    /// the statement names. DDL inside a block takes those tables for the
    /// block.
    pub(crate) async fn lock_named_tables(
        &mut self,
        statement: &Statement,
        ddl: bool,
    ) -> Result<()> {
        let take = ddl && self.transaction.is_some();
        if !take && !self.engine().ddl_locks.any_held() {
            return Ok(());
        }
        if take {
            // First wait for every table the statement reads too.
            let read = self.named_tables(statement, false);
            self.engine()
                .ddl_locks
                .acquire(self.id, &read, false)
                .await?;
        }
        let tables = self.named_tables(statement, take);
        self.engine()
            .ddl_locks
            .acquire(self.id, &tables, take)
            .await
    }

    /// Waits while another block's DDL holds the table `name` (for
    /// statements read without the general parser).
    pub(crate) async fn wait_for_ddl_lock(&self, name: &ast::ObjectName) -> Result<()> {
        if !self.engine().ddl_locks.any_held() {
            return Ok(());
        }
        let Ok(table) = crate::names::table_name(name).and_then(|n| self.table(&n)) else {
            return Ok(());
        };
        self.engine()
            .ddl_locks
            .acquire(self.id, &[table.id], false)
            .await
    }

    /// After a DDL statement inside a block succeeded: the tables it made
    /// are the block's too, and savepoints learn that DDL ran.
    pub(crate) async fn after_block_ddl(&mut self, statement: &Statement) -> Result<()> {
        let Some(transaction) = &mut self.transaction else {
            return Ok(());
        };
        transaction.ddl_statements += 1;
        let tables = self.named_tables(statement, true);
        self.engine()
            .ddl_locks
            .acquire(self.id, &tables, true)
            .await
    }

    /// Ends the block's hold on the catalog: undoes its tentative DDL (when
    /// `undo`) and releases its tables.
    fn end_ddl(&mut self, mark: Option<u64>, undo: bool) {
        if let (Some(mark), true) = (mark, undo)
            && let Err(error) = self.engine().store().undo(mark)
        {
            // The undo record stays; the next start puts the catalog back.
            tracing::error!(%error, mark, "undoing a transaction block's DDL failed");
        }
        self.engine().ddl_locks.release(self.id);
    }

    /// Writes rows: staged if a block is open, else durably at once.
    pub(crate) async fn write_rows(
        &mut self,
        table: &Arc<TableDef>,
        batches: Vec<RecordBatch>,
        command: &str,
    ) -> Result<u64> {
        Ok(self
            .write_changes(table, batches, Vec::new(), command)
            .await?
            .0)
    }

    /// Inserts rows (in the table's column order) and deletes rows (batches
    /// with the row id, the chunk and the table's key columns) as one unit:
    /// staged if a block is open, else durably at once. Returns the numbers
    /// of rows inserted and deleted.
    pub(crate) async fn write_changes(
        &mut self,
        table: &Arc<TableDef>,
        inserts: Vec<RecordBatch>,
        deletes: Vec<RecordBatch>,
        command: &str,
    ) -> Result<(u64, u64)> {
        let store = self.engine().store().clone();
        let inserts = inserts
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| store.attach_rowids(table, b))
            .collect::<tempora_storage::Result<Vec<_>>>()?;
        let committed = self
            .commit_rows(table, inserts, deletes, command, OnConflict::Error)
            .await?;
        Ok((committed.inserted, committed.deleted))
    }

    /// Like [`Session::write_changes`], for inserted rows that carry their
    /// row ids already, with what to do about rows whose key is taken.
    /// Inside a block, keys are checked now, against the committed rows and
    /// the block's own; COMMIT checks them again against what others
    /// committed meanwhile.
    pub(crate) async fn commit_rows(
        &mut self,
        table: &Arc<TableDef>,
        inserts: Vec<RecordBatch>,
        deletes: Vec<RecordBatch>,
        command: &str,
        on_conflict: OnConflict,
    ) -> Result<Committed> {
        let store = self.engine().store().clone();
        // The last point at which a cancel request stops a write.
        self.cancel.check()?;
        if self.transaction.as_ref().is_some_and(|t| t.read_only) {
            return Err(error(
                SqlState::ReadOnlySqlTransaction,
                format!("cannot execute {command} in a read-only transaction"),
            ));
        }
        crate::checks::enforce(self, table, &inserts).await?;
        if self.transaction.is_some() {
            let mut committed = Committed::default();
            let inserts = inserts
                .into_iter()
                .filter(|b| b.num_rows() > 0)
                .collect::<Vec<_>>();
            let inserts = if table.unique_indexes().next().is_some() && !inserts.is_empty() {
                let rows = concat_batches(&inserts[0].schema(), &inserts)?;
                let kept = self
                    .check_block_keys(table, &rows, &deletes, on_conflict)
                    .await?;
                committed.skipped = kept.skipped;
                vec![kept.rows]
            } else {
                inserts
            };
            for batch in deletes {
                if batch.num_rows() > 0 {
                    committed.deleted += batch.num_rows() as u64;
                    self.reads.stage(StagedWrite::Delete(table.clone(), batch));
                }
            }
            for batch in inserts {
                if batch.num_rows() > 0 {
                    committed.inserted += batch.num_rows() as u64;
                    self.reads.stage(StagedWrite::Insert(table.clone(), batch));
                }
            }
            return Ok(committed);
        }
        let table = table.clone();
        crate::blocking::run("write task", move || {
            store.commit(&[TableWrite {
                table: &table,
                inserts,
                deletes,
                on_conflict,
            }])
        })
        .await?
        .map_err(Error::from)
    }

    /// Checks a block's new rows (with row ids) against the keys of the
    /// committed rows and of the rows the block wrote, less the rows it
    /// deleted (now or before). Returns the rows to write, leaving out
    /// those `on_conflict` skips; other conflicts fail with 23505.
    async fn check_block_keys(
        &self,
        table: &Arc<TableDef>,
        rows: &RecordBatch,
        deletes: &[RecordBatch],
        on_conflict: OnConflict,
    ) -> Result<KeptRows> {
        let mut deleted = self.reads.staged_deletes(table.id);
        deleted.add(deletes.iter().flat_map(rowids).collect());
        let mut keep = vec![true; rows.num_rows()];
        let mut indexes: Vec<(usize, String)> = table
            .unique_indexes()
            .map(|i| i.name.clone())
            .enumerate()
            .collect();
        // The arbiter of ON CONFLICT first: a row it skips is skipped,
        // whatever other keys it repeats.
        if let OnConflict::SkipOn(arbiter) = on_conflict {
            indexes.sort_by_key(|(position, _)| *position != arbiter);
        }
        for (position, index) in &indexes {
            let position = *position;
            let store = self.engine().store().clone();
            let (table_id, name, probe) = (table.id, index.clone(), rows.clone());
            let committed = crate::blocking::run("key lookup", move || {
                store.lookup_keys(table_id, &name, &probe)
            })
            .await??;
            let in_block = self.reads.staged_key_rows(table, index, rows, &deleted)?;
            let earlier = keys::earlier_duplicates(table, index, rows)?;
            for row in 0..rows.num_rows() {
                if !keep[row] {
                    continue;
                }
                let taken = committed[row].is_some_and(|r| !deleted.contains(r.rowid))
                    || in_block[row].is_some()
                    || earlier[row].is_some_and(|e| keep[e]);
                if !taken {
                    continue;
                }
                let skip = match on_conflict {
                    OnConflict::Error => false,
                    OnConflict::Skip => true,
                    OnConflict::SkipOn(arbiter) => arbiter == position,
                };
                if !skip {
                    return Err(tempora_storage::Error::UniqueViolation {
                        table: table.name.clone(),
                        index: index.clone(),
                        detail: format!(
                            "Key {} already exists.",
                            keys::key_detail(table, index, rows, row)?
                        ),
                        creating: false,
                    }
                    .into());
                }
                keep[row] = false;
            }
        }
        let ids = rowids(rows);
        let skipped = ids
            .iter()
            .zip(&keep)
            .filter(|(_, k)| !**k)
            .map(|(id, _)| *id)
            .collect();
        let mask = BooleanArray::from(keep);
        Ok(KeptRows {
            rows: filter_record_batch(rows, &mask)?,
            skipped,
        })
    }

    pub(crate) fn begin_implicit(&mut self) {
        if self.transaction.is_none() {
            self.transaction = Some(Transaction {
                implicit: true,
                ..Transaction::default()
            });
        }
    }

    /// Ends the implicit block of a query string: commits it if every
    /// statement succeeded, else discards it. An explicit block stays open.
    pub(crate) async fn end_implicit(&mut self, succeeded: bool) -> Result<()> {
        if !self.transaction.as_ref().is_some_and(|t| t.implicit) {
            return Ok(());
        }
        if succeeded && !self.transaction.as_ref().is_some_and(|t| t.failed) {
            self.commit().await
        } else {
            self.rollback();
            Ok(())
        }
    }

    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE.
    pub(crate) async fn transaction_control(&mut self, statement: &Statement) -> Result<Output> {
        match statement {
            Statement::StartTransaction { modes, .. } => {
                let read_only = check_modes(modes)?;
                match &mut self.transaction {
                    Some(transaction) if transaction.implicit => {
                        // BEGIN inside a query string makes its block explicit.
                        transaction.implicit = false;
                        transaction.read_only = read_only;
                    }
                    Some(_) => self.warn("25001", "there is already a transaction in progress"),
                    None => {
                        self.transaction = Some(Transaction {
                            read_only,
                            ..Transaction::default()
                        })
                    }
                }
                Ok(tag("BEGIN"))
            }
            Statement::Commit { chain, .. } => {
                if *chain {
                    return Err(Error::not_supported("COMMIT AND CHAIN"));
                }
                match &self.transaction {
                    None => {
                        self.warn("25P01", "there is no transaction in progress");
                        Ok(tag("COMMIT"))
                    }
                    Some(t) if t.failed => {
                        self.rollback();
                        Ok(tag("ROLLBACK"))
                    }
                    Some(_) => {
                        self.commit().await?;
                        Ok(tag("COMMIT"))
                    }
                }
            }
            Statement::Rollback {
                chain,
                savepoint: None,
            } => {
                if *chain {
                    return Err(Error::not_supported("ROLLBACK AND CHAIN"));
                }
                if self.transaction.is_none() {
                    self.warn("25P01", "there is no transaction in progress");
                }
                self.rollback();
                Ok(tag("ROLLBACK"))
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                let mark = self.savepoint_mark(name, "ROLLBACK TO SAVEPOINT")?;
                let Some(transaction) = &mut self.transaction else {
                    return Err(Error::not_supported("ROLLBACK TO outside a block"));
                };
                let ddl_since = transaction
                    .savepoints
                    .iter()
                    .rev()
                    .find(|s| s.name == name.value)
                    .is_some_and(|s| s.ddl_statements < transaction.ddl_statements);
                if ddl_since {
                    // The block stays failed: only ROLLBACK ends it.
                    transaction.failed = true;
                    return Err(Error::not_supported(
                        "ROLLBACK TO SAVEPOINT after DDL run since the savepoint (roll back the whole transaction block)",
                    ));
                }
                // The savepoint stays; the ones set after it go.
                let keep = transaction
                    .savepoints
                    .iter()
                    .rposition(|s| s.name == name.value)
                    .map_or(0, |i| i + 1);
                transaction.savepoints.truncate(keep);
                transaction.failed = false;
                self.reads.truncate_staged(mark);
                Ok(tag("ROLLBACK"))
            }
            Statement::Savepoint { name } => {
                let mark = self.reads.staged_len();
                match &mut self.transaction {
                    Some(transaction) => {
                        transaction.savepoints.push(Savepoint {
                            name: name.value.clone(),
                            mark,
                            ddl_statements: transaction.ddl_statements,
                        });
                        Ok(tag("SAVEPOINT"))
                    }
                    None => Err(error(
                        SqlState::NoActiveSqlTransaction,
                        "SAVEPOINT can only be used in transaction blocks",
                    )),
                }
            }
            Statement::ReleaseSavepoint { name } => {
                self.savepoint_mark(name, "RELEASE SAVEPOINT")?;
                if let Some(transaction) = &mut self.transaction
                    && let Some(index) = transaction
                        .savepoints
                        .iter()
                        .rposition(|s| s.name == name.value)
                {
                    // Releasing a savepoint also releases the ones set after it.
                    transaction.savepoints.truncate(index);
                }
                Ok(tag("RELEASE"))
            }
            other => Err(Error::not_supported(format!(
                "transaction statement {other}"
            ))),
        }
    }

    /// The staged-write mark of savepoint `name` (the latest of that name).
    fn savepoint_mark(&self, name: &Ident, command: &str) -> Result<usize> {
        let Some(transaction) = &self.transaction else {
            return Err(error(
                SqlState::NoActiveSqlTransaction,
                format!("{command} can only be used in transaction blocks"),
            ));
        };
        transaction
            .savepoints
            .iter()
            .rev()
            .find(|s| s.name == name.value)
            .map(|s| s.mark)
            .ok_or_else(|| {
                error(
                    SqlState::InvalidSavepointSpecification,
                    format!("savepoint \"{}\" does not exist", name.value),
                )
            })
    }

    /// Writes the block's staged rows as one durable unit, makes its DDL
    /// final, and ends the block. The block ends even when the write fails,
    /// as in PostgreSQL; its DDL is then undone.
    async fn commit(&mut self) -> Result<()> {
        let mark = self
            .transaction
            .take()
            .and_then(|t| t.ddl_mark.get().copied());
        let result = self.commit_staged(mark).await;
        self.end_ddl(mark, result.is_err());
        result
    }

    async fn commit_staged(&mut self, mark: Option<u64>) -> Result<()> {
        let staged = self.reads.take_staged();
        if staged.is_empty() && mark.is_none() {
            return Ok(());
        }
        let renames: Vec<(Arc<TableDef>, String)> = staged
            .iter()
            .filter_map(|w| match w {
                StagedWrite::Rename(table, _, new) => Some((table.clone(), new.clone())),
                _ => None,
            })
            .collect();
        // Writes per table, tables in the order they were first written.
        let tables = net_writes(staged)?;
        let store = self.engine().store().clone();
        if !renames.is_empty() || mark.is_some() {
            return tokio::task::spawn_blocking(move || {
                let writes: Vec<TableWrite<'_>> = tables
                    .iter()
                    .map(|(table, inserts, deletes)| TableWrite {
                        table: table.as_ref(),
                        inserts: inserts.clone(),
                        deletes: deletes.clone(),
                        on_conflict: OnConflict::Error,
                    })
                    .collect();
                Self::commit_with_renames(&store, &writes, &renames, mark)
            })
            .await
            .map_err(|e| Error::not_supported(format!("commit task failed: {e}")))?;
        }
        crate::blocking::run("commit task", move || {
            let writes: Vec<TableWrite<'_>> = tables
                .iter()
                .map(|(table, inserts, deletes)| TableWrite {
                    table: table.as_ref(),
                    inserts: inserts.clone(),
                    deletes: deletes.clone(),
                    on_conflict: OnConflict::Error,
                })
                .collect();
            store.commit(&writes)
        })
        .await??;
        Ok(())
    }

    /// Writes the block's staged rows and its renames as one unit, with the
    /// mark of its tentative DDL.
    fn commit_with_renames(
        store: &tempora_storage::Store,
        writes: &[TableWrite<'_>],
        renames: &[(Arc<TableDef>, String)],
        mark: Option<u64>,
    ) -> Result<()> {
        // The views that name a renamed table follow it, as outside a block.
        let mut state = (*store.catalog().snapshot()).clone();
        let mut views = Vec::new();
        for (table, new) in renames {
            let current = state.tables.get(&table.id).map(|t| t.name.clone());
            let old = current.unwrap_or_else(|| table.name.clone());
            for view in crate::views::renamed_in_views(&state, &old, new)? {
                state.views.insert(view.name.clone(), view.clone());
                views.push(view);
            }
            if let Some(t) = state.tables.get_mut(&table.id) {
                let mut renamed = (**t).clone();
                renamed.name = new.clone();
                *t = Arc::new(renamed);
            }
        }
        let change = |txn: &mut tempora_catalog::CatalogTxn| -> tempora_catalog::Result<()> {
            // The name each table has by now in this transaction.
            let mut expected: std::collections::HashMap<tempora_catalog::TableId, String> =
                std::collections::HashMap::new();
            for (table, new) in renames {
                let name = expected
                    .get(&table.id)
                    .cloned()
                    .unwrap_or_else(|| table.name.clone());
                // Renamed, dropped or altered by another session since the
                // block renamed it: the first committer wins.
                let Some(current) = txn.state().tables.get(&table.id).cloned() else {
                    return Err(tempora_catalog::Error::Conflict {
                        name: table.name.clone(),
                    });
                };
                if current.name != name {
                    return Err(tempora_catalog::Error::Conflict {
                        name: table.name.clone(),
                    });
                }
                if txn.state().relation_exists(new) {
                    return Err(tempora_catalog::Error::TableExists { name: new.clone() });
                }
                let mut renamed = (*current).clone();
                renamed.name = new.clone();
                txn.put_table(renamed);
                expected.insert(table.id, new.clone());
            }
            for view in &views {
                txn.put_view(view.clone());
            }
            Ok(())
        };
        store.commit_with_catalog(writes, &change, mark)?;
        Ok(())
    }

    fn rollback(&mut self) {
        let mark = self
            .transaction
            .take()
            .and_then(|t| t.ddl_mark.get().copied());
        self.reads.take_staged();
        self.end_ddl(mark, true);
    }
}

impl Drop for Session {
    /// A connection that ends inside a block rolls it back: its DDL is
    /// undone and its tables released; its advisory locks are released.
    fn drop(&mut self) {
        if self.transaction.is_some() {
            self.rollback();
        }
        self.engine().advisory_locks.unlock_all(self.id);
    }
}

/// `ALTER TABLE name RENAME TO new` inside a block: staged, seen by the
/// block's later statements, done at COMMIT together with its writes.
pub(crate) fn stage_rename(
    session: &mut Session,
    table: &Arc<TableDef>,
    new: &ast::ObjectName,
) -> Result<Output> {
    let new_name = crate::names::table_name(new)?;
    let state = session.engine().store().catalog().snapshot();
    let taken = match session.reads.resolve(&new_name) {
        Resolved::Hidden => false,
        Resolved::AsIs => state.relation_exists(&new_name),
        Resolved::Renamed(_) => true,
    };
    if taken {
        return Err(Error::DuplicateTable { name: new_name });
    }
    if !state.views_depending_on(&table.name).is_empty() {
        return Err(Error::not_supported(
            "renaming a table that views read inside a transaction block (rename it outside BEGIN ... COMMIT)",
        ));
    }
    // The name the block knows it by: the catalog's, unless renamed before.
    let seen = session
        .reads
        .staged_renames_of(table.id)
        .unwrap_or_else(|| table.name.clone());
    session
        .reads
        .stage(StagedWrite::Rename(table.clone(), seen, new_name));
    Ok(tag("ALTER TABLE"))
}
