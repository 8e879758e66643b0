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
//! Statements that change the catalog (CREATE/DROP TABLE, the TimescaleDB
//! functions that create or drop chunks) are refused inside a block with
//! 25001: their effects are not staged yet, and running them at once would
//! break the block's atomicity.

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
use tempora_storage::{Committed, DeleteSet, OnConflict, TableWrite, keys};

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
    implicit: bool,
}

#[derive(Debug)]
struct Savepoint {
    name: String,
    /// The number of staged writes when the savepoint was set.
    mark: usize,
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

    /// 25001 for a statement that changes the catalog inside a block.
    pub(crate) fn refuse_in_block(&self, what: &str) -> Result<()> {
        match &self.transaction {
            Some(_) => Err(error(
                SqlState::ActiveSqlTransaction,
                format!(
                    "{what} cannot run inside a transaction block in tempora: run it outside BEGIN ... COMMIT"
                ),
            )),
            None => Ok(()),
        }
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
        tokio::task::spawn_blocking(move || {
            store.commit(&[TableWrite {
                table: &table,
                inserts,
                deletes,
                on_conflict,
            }])
        })
        .await
        .map_err(|e| Error::not_supported(format!("write task failed: {e}")))?
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
        let staged: Vec<RecordBatch> = self
            .reads
            .uncommitted_rows(table.id)
            .iter()
            .map(|b| {
                let rowid_index = b.num_columns().saturating_sub(1);
                DeleteSet::filter_batch(&[&deleted], b, rowid_index)
            })
            .collect::<tempora_storage::Result<_>>()?;
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
            let committed =
                tokio::task::spawn_blocking(move || store.lookup_keys(table_id, &name, &probe))
                    .await
                    .map_err(|e| Error::not_supported(format!("key lookup failed: {e}")))??;
            let in_block = keys::find_in(table, index, &staged, rows)?;
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

    /// Writes the block's staged rows as one durable unit and ends the block.
    /// The block ends even when the write fails, as in PostgreSQL.
    async fn commit(&mut self) -> Result<()> {
        self.transaction = None;
        let staged = self.reads.take_staged();
        if staged.is_empty() {
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
        if !renames.is_empty() {
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
                Self::commit_with_renames(&store, &writes, &renames)
            })
            .await
            .map_err(|e| Error::not_supported(format!("commit task failed: {e}")))?;
        }
        tokio::task::spawn_blocking(move || {
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
        .await
        .map_err(|e| Error::not_supported(format!("commit task failed: {e}")))??;
        Ok(())
    }

    /// Writes the block's staged rows and its renames as one unit.
    fn commit_with_renames(
        store: &tempora_storage::Store,
        writes: &[TableWrite<'_>],
        renames: &[(Arc<TableDef>, String)],
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
        store.commit_with_catalog(writes, &change)?;
        Ok(())
    }

    fn rollback(&mut self) {
        self.transaction = None;
        self.reads.take_staged();
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
