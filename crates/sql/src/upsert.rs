//! INSERT ... ON CONFLICT: DO NOTHING and DO UPDATE.
//!
//! DO NOTHING hands the rows to the store, which leaves out, atomically
//! with the commit, every row whose key is taken (on the arbiter index, or
//! on any unique index without a target).
//!
//! DO UPDATE finds the rows holding the proposed keys in the store's key
//! index, reads them with one scan joined to the proposed rows (which the
//! statement calls `excluded`), and commits in one unit the new rows and
//! the updated versions of the old ones (delete and insert, as UPDATE
//! does). Outside a transaction block the table's lock is held from lookup
//! to commit, as for UPDATE; if a concurrent commit took a key or a row
//! meanwhile, the statement looks again, so each proposed row is inserted
//! or updates the row holding its key, as PostgreSQL guarantees.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array, UInt64Array,
};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, UInt64Type};
use datafusion::sql::sqlparser::ast::{self, Expr, VisitMut, VisitorMut};

use tempora_catalog::{ROWID_COLUMN, TableDef};
use tempora_query::visibility::rowids;
use tempora_storage::{OnConflict, keys};

use crate::dml::{self, Target};
use crate::error::SqlState;
use crate::names::ident;
use crate::session::Session;
use crate::{Error, Result};

/// The name the proposed rows are bound to for DO UPDATE's scan.
const EXCLUDED_ROWS: &str = "__tempora_excluded";
/// Columns of the bound proposed rows: the row id each conflicts with, and
/// its position among the proposed rows.
const CONFLICT_COLUMN: &str = "__tempora_conflict";
const ORDINAL_COLUMN: &str = "__tempora_ordinal";

/// What an INSERT does about rows whose key is taken.
pub(crate) enum Upsert {
    Nothing(OnConflict),
    Update {
        /// The arbiter index: its name and place among the unique indexes.
        index: String,
        assignments: Vec<ast::Assignment>,
        selection: Option<Box<Expr>>,
    },
}

/// Reads the ON CONFLICT clause against the table's unique indexes.
pub(crate) fn clause(table: &TableDef, on: &ast::OnInsert) -> Result<Upsert> {
    let ast::OnInsert::OnConflict(on) = on else {
        return Err(Error::Syntax {
            message: "syntax error at or near \"ON DUPLICATE\"".to_owned(),
        });
    };
    let arbiter = match &on.conflict_target {
        None => None,
        Some(ast::ConflictTarget::Columns(columns)) => {
            let mut names: Vec<String> = columns.iter().map(ident).collect();
            names.sort();
            let found = table.unique_indexes().enumerate().find(|(_, index)| {
                let mut key = index.columns.clone();
                key.sort();
                key == names
            });
            match found {
                Some((position, index)) => Some((position, index.name.clone())),
                None => {
                    return Err(Error::Coded {
                        code: SqlState::InvalidColumnReference,
                        message: "there is no unique or exclusion constraint matching the ON CONFLICT specification".to_owned(),
                    });
                }
            }
        }
        Some(ast::ConflictTarget::OnConstraint(name)) => {
            let name = crate::names::table_name(name)?;
            match table
                .unique_indexes()
                .enumerate()
                .find(|(_, i)| i.constraint && i.name == name)
            {
                Some((position, index)) => Some((position, index.name.clone())),
                None => {
                    return Err(Error::UndefinedObject {
                        message: format!(
                            "constraint \"{name}\" for table \"{}\" does not exist",
                            table.name
                        ),
                    });
                }
            }
        }
    };
    match &on.action {
        ast::OnConflictAction::DoNothing => Ok(Upsert::Nothing(match arbiter {
            Some((position, _)) => OnConflict::SkipOn(position),
            None => OnConflict::Skip,
        })),
        ast::OnConflictAction::DoUpdate(update) => {
            let Some((_, index)) = arbiter else {
                return Err(Error::Syntax {
                    message:
                        "ON CONFLICT DO UPDATE requires inference specification or constraint name"
                            .to_owned(),
                });
            };
            Ok(Upsert::Update {
                index,
                assignments: update.assignments.clone(),
                selection: update.selection.clone().map(Box::new),
            })
        }
    }
}

/// Writes rows (the table's columns) with ON CONFLICT DO NOTHING; returns
/// the rows inserted.
pub(crate) async fn insert_or_skip(
    session: &mut Session,
    table: &Arc<TableDef>,
    rows: RecordBatch,
    on_conflict: OnConflict,
) -> Result<RecordBatch> {
    let store = session.engine().store().clone();
    let with_ids = store.attach_rowids(table, rows.clone())?;
    let committed = session
        .commit_rows(
            table,
            vec![with_ids.clone()],
            Vec::new(),
            "INSERT",
            on_conflict,
        )
        .await?;
    if committed.skipped.is_empty() {
        return Ok(rows);
    }
    let skipped: std::collections::HashSet<i64> = committed.skipped.into_iter().collect();
    let keep: BooleanArray = rowids(&with_ids)
        .iter()
        .map(|id| Some(!skipped.contains(id)))
        .collect();
    Ok(filter_record_batch(&rows, &keep)?)
}

/// Qualifies the target's bare column names in DO UPDATE's expressions,
/// which PostgreSQL reads as the target's (not `excluded`'s).
struct QualifyTarget<'a> {
    table: &'a TableDef,
    alias: &'a str,
}

impl VisitorMut for QualifyTarget<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> std::ops::ControlFlow<()> {
        if let Expr::Identifier(name) = expr
            && self.table.column_index(&ident(name)).is_some()
        {
            *expr = Expr::CompoundIdentifier(vec![
                ast::Ident::with_quote('"', self.alias.to_owned()),
                name.clone(),
            ]);
        }
        std::ops::ControlFlow::Continue(())
    }
}

fn qualified(mut expr: Expr, target: &Target) -> Expr {
    let _ = expr.visit(&mut QualifyTarget {
        table: &target.table,
        alias: &target.alias,
    });
    expr
}

/// Writes rows (the table's columns) with ON CONFLICT DO UPDATE; returns
/// the rows inserted and the new versions of the rows updated, in the
/// order they were proposed.
pub(crate) async fn insert_or_update(
    session: &mut Session,
    target: &Target,
    rows: RecordBatch,
    index: &str,
    assignment_list: &[ast::Assignment],
    selection: Option<&Expr>,
    params: &[Option<String>],
) -> Result<RecordBatch> {
    let table = target.table.clone();
    if keys::earlier_duplicates(&table, index, &rows)?
        .iter()
        .any(Option::is_some)
    {
        return Err(Error::Coded {
            code: SqlState::CardinalityViolation,
            message: "ON CONFLICT DO UPDATE command cannot affect row a second time\nHINT: Ensure that no rows proposed for insertion within the same command have duplicate constrained values.".to_owned(),
        });
    }
    let qualified_assignments: Vec<ast::Assignment> = assignment_list
        .iter()
        .map(|a| ast::Assignment {
            target: a.target.clone(),
            value: qualified(a.value.clone(), target),
        })
        .collect();
    let (assigned, mut exprs) = dml::assignments(&table, &qualified_assignments, params)?;
    // The scan's extra columns: the SET expressions, then the proposed
    // row's position and whether WHERE holds.
    exprs.push(Expr::CompoundIdentifier(vec![
        ast::Ident::new("excluded"),
        ast::Ident::with_quote('"', ORDINAL_COLUMN),
    ]));
    exprs.push(match selection {
        Some(selection) => Expr::Nested(Box::new(qualified(selection.clone(), target))),
        None => Expr::Value(ast::Value::Boolean(true).into()),
    });
    let join = Expr::BinaryOp {
        left: Box::new(Expr::CompoundIdentifier(vec![
            ast::Ident::with_quote('"', target.alias.clone()),
            ast::Ident::with_quote('"', ROWID_COLUMN),
        ])),
        op: ast::BinaryOperator::Eq,
        right: Box::new(Expr::CompoundIdentifier(vec![
            ast::Ident::new("excluded"),
            ast::Ident::with_quote('"', CONFLICT_COLUMN),
        ])),
    };
    let from = vec![ast::TableWithJoins {
        relation: ast::TableFactor::Table {
            name: ast::ObjectName::from(vec![ast::Ident::with_quote('"', EXCLUDED_ROWS)]),
            alias: Some(ast::TableAlias {
                name: ast::Ident::new("excluded"),
                columns: vec![],
                explicit: true,
                at: None,
            }),
            args: None,
            with_hints: vec![],
            version: None,
            with_ordinality: false,
            partitions: vec![],
            json_path: None,
            sample: None,
            index_hints: vec![],
        },
        joins: vec![],
    }];
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let scan = dml::scan_query(target, &columns, exprs, &from, Some(&join))?;
    let in_block = session.transaction.is_some();
    let store = session.engine().store().clone();
    let with_ids = store.attach_rowids(&table, rows.clone())?;
    let mut attempt = 0;
    loop {
        let lock = session.engine().table_lock(table.id);
        let _guard = if in_block {
            None
        } else {
            Some(lock.lock_owned().await)
        };
        session.reads.begin_statement();
        let holders = key_holders(session, &table, index, &rows).await?;
        let fresh: Vec<u32> = (0..rows.num_rows() as u32)
            .filter(|r| holders[*r as usize].is_none())
            .collect();
        let taken: Vec<u32> = (0..rows.num_rows() as u32)
            .filter(|r| holders[*r as usize].is_some())
            .collect();
        let mut inserts = vec![take_record_batch(
            &with_ids,
            &UInt32Array::from(fresh.clone()),
        )?];
        let mut deletes = Vec::new();
        let mut updated = RecordBatch::new_empty(table.arrow_schema());
        let mut updated_ordinals: Vec<u64> = Vec::new();
        if !taken.is_empty() {
            let proposed = take_record_batch(&rows, &UInt32Array::from(taken.clone()))?;
            let conflicts: Int64Array = taken.iter().map(|r| holders[*r as usize]).collect();
            let ordinals: UInt64Array = taken.iter().map(|r| *r as u64).collect();
            let mut fields: Vec<Field> = proposed
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new(CONFLICT_COLUMN, DataType::Int64, true));
            fields.push(Field::new(ORDINAL_COLUMN, DataType::UInt64, false));
            let mut columns: Vec<ArrayRef> = proposed.columns().to_vec();
            columns.push(Arc::new(conflicts));
            columns.push(Arc::new(ordinals));
            let excluded = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
            session.reads.bind_rows(EXCLUDED_ROWS, excluded);
            let scanned = session.collect(&scan, params).await;
            session.reads.unbind_rows(EXCLUDED_ROWS);
            let (schema, batches) = scanned?;
            let found = concat_batches(&schema, &batches)?;
            if found.num_rows() != taken.len() {
                // A row holding a key went away since the lookup: look again.
                if attempt < dml::CONFLICT_RETRIES && !in_block {
                    attempt += 1;
                    continue;
                }
                return Err(tempora_storage::Error::Conflict {
                    table: table.name.clone(),
                }
                .into());
            }
            let where_column = found.num_columns() - 1;
            let ordinal_column = where_column - 1;
            let holds = found.column(where_column).as_boolean();
            let mask: BooleanArray = (0..found.num_rows())
                .map(|r| Some(holds.is_valid(r) && holds.value(r)))
                .collect();
            let chosen = filter_record_batch(&found, &mask)?;
            updated = dml::new_versions(session, &table, &chosen, &assigned).await?;
            updated_ordinals = chosen
                .column(ordinal_column)
                .as_primitive::<UInt64Type>()
                .values()
                .to_vec();
            let time_position = table
                .hypertable
                .as_ref()
                .and_then(|h| table.column_index(&h.time_column))
                .map(|i| i + 1);
            deletes.push(dml::deleted_rows(session, &table, &chosen, time_position)?);
            inserts.push(store.attach_rowids(&table, updated.clone())?);
        }
        let result = session
            .commit_rows(&table, inserts, deletes, "INSERT", OnConflict::Error)
            .await;
        match result {
            Err(error)
                if !in_block && retriable(&error, index) && attempt < dml::CONFLICT_RETRIES =>
            {
                attempt += 1;
                continue;
            }
            Err(error) => return Err(error),
            Ok(_) => {}
        }
        // The rows written, in the order they were proposed.
        let inserted = take_record_batch(&rows, &UInt32Array::from(fresh.clone()))?;
        let all = concat_batches(&table.arrow_schema(), &[inserted, updated])?;
        let mut order: Vec<(u64, u32)> = fresh
            .iter()
            .map(|r| *r as u64)
            .chain(updated_ordinals)
            .enumerate()
            .map(|(position, ordinal)| (ordinal, position as u32))
            .collect();
        order.sort_unstable();
        let indices = UInt32Array::from(order.into_iter().map(|(_, p)| p).collect::<Vec<_>>());
        return Ok(take_record_batch(&all, &indices)?);
    }
}

/// Whether a failed DO UPDATE commit lost a race (a row it read was
/// changed, or a key it found free was taken) and should look again.
fn retriable(error: &Error, index: &str) -> bool {
    match error {
        Error::Storage {
            source: tempora_storage::Error::UniqueViolation { index: failed, .. },
        } => failed == index,
        other => dml::is_conflict(other),
    }
}

/// For each proposed row, the id of the row holding its key in `index`, as
/// the statement sees the table: committed rows (less those the open block
/// deleted) and the block's own rows.
async fn key_holders(
    session: &Session,
    table: &Arc<TableDef>,
    index: &str,
    rows: &RecordBatch,
) -> Result<Vec<Option<i64>>> {
    let store = session.engine().store().clone();
    let (table_id, name, probe) = (table.id, index.to_owned(), rows.clone());
    let committed = crate::blocking::run("key lookup", move || {
        store.lookup_keys(table_id, &name, &probe)
    })
    .await??;
    if session.transaction.is_none() {
        return Ok(committed.into_iter().map(|r| r.map(|r| r.rowid)).collect());
    }
    let deleted = session.reads.staged_deletes(table.id);
    let own = session
        .reads
        .staged_key_rows(table, index, rows, &deleted)?;
    Ok(committed
        .into_iter()
        .zip(own)
        .map(|(committed, own)| {
            own.or(committed
                .map(|r| r.rowid)
                .filter(|id| !deleted.contains(*id)))
        })
        .collect())
}
