//! UPDATE and DELETE.
//!
//! Both run as one query over the target table with its row ids
//! ([`rowid_scan_name`]), joined with the USING / FROM tables and filtered by
//! the WHERE clause:
//!
//! ```text
//! DELETE FROM t USING u WHERE p        SELECT t.rowid, t.time      FROM rows_of(t) AS t, u WHERE p
//! UPDATE t SET a = e FROM u WHERE p    SELECT t.rowid, t.*, e AS a' FROM rows_of(t) AS t, u WHERE p
//! ```
//!
//! A row the join matches more than once is changed once. The result goes
//! to the store as one commit: the old rows' ids are deleted and, for
//! UPDATE, the new versions inserted (with new row ids). Outside a
//! transaction block the statement holds its table's lock from scan to
//! commit, so concurrent UPDATE/DELETE of a table wait for each other and
//! each sees the rows the one before it left: PostgreSQL's READ COMMITTED
//! outcome for rows both touch. If a transaction block's COMMIT got to a
//! row first, the statement reads again and retries. Inside a block the
//! changes are staged; COMMIT fails with 40001 if another commit changed
//! one of those rows since (first committer wins).

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringBuilder, UInt32Array, UInt64Array,
};
use datafusion::arrow::compute::{
    CastOptions, cast_with_options, concat_batches, take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::sql::sqlparser::ast::{self, Expr, SelectItem, Statement};

use tempora_catalog::{ChunkId, ROWID_COLUMN, TableDef};
use tempora_query::provider::rowid_scan_name;
use tempora_storage::CHUNK_COLUMN;
use tempora_types::PgType;
use tempora_types::text::{ColumnBuilder, format_value};

use crate::insert;
use crate::names::{ident, table_name};
use crate::point::{self, PointScan};
use crate::session::{Output, Session};
use crate::{Error, Result};

/// How often an UPDATE or DELETE outside a block reads again after losing a
/// row to a concurrent transaction's COMMIT.
pub(crate) const CONFLICT_RETRIES: usize = 64;

/// The table an UPDATE or DELETE changes, and the name its rows go by.
pub(crate) struct Target {
    pub(crate) table: Arc<TableDef>,
    pub(crate) alias: String,
}

/// The table an UPDATE or DELETE names (42P01 if there is none).
fn target_of(session: &Session, relation: &ast::TableWithJoins) -> Result<Target> {
    if !relation.joins.is_empty() {
        return Err(Error::not_supported(
            "JOIN in the target of UPDATE or DELETE (use FROM or USING)",
        ));
    }
    let ast::TableFactor::Table {
        name, alias, args, ..
    } = &relation.relation
    else {
        return Err(Error::not_supported(
            "UPDATE or DELETE of something other than a table",
        ));
    };
    if args.is_some() {
        return Err(Error::not_supported("UPDATE or DELETE of a table function"));
    }
    let table_name = table_name(name)?;
    Ok(Target {
        table: session.table(&table_name)?,
        alias: alias.as_ref().map(|a| ident(&a.name)).unwrap_or(table_name),
    })
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What one SET assignment gives its column.
pub(crate) enum Assigned {
    /// A literal or parameter, read by the column's input function.
    Text(Option<String>),
    /// The column's DEFAULT.
    Default,
    /// An expression, evaluated per row: the scan's column of this index.
    Expr(usize),
}

/// The scan query: row id and `columns` of the target, then `extra`
/// expressions, from the target and `from`, filtered by `selection`.
pub(crate) fn scan_query(
    target: &Target,
    columns: &[&str],
    extra: Vec<Expr>,
    from: &[ast::TableWithJoins],
    selection: Option<&Expr>,
) -> Result<Statement> {
    let alias = quoted(&target.alias);
    let mut items = vec![format!("{alias}.{}", quoted(ROWID_COLUMN))];
    items.extend(columns.iter().map(|c| format!("{alias}.{}", quoted(c))));
    let sql = format!(
        "SELECT {} FROM {} AS {alias}",
        items.join(", "),
        quoted(&rowid_scan_name(&target.table.name)),
    );
    let mut statement = crate::session::parse(&sql)?
        .pop()
        .ok_or_else(|| Error::not_supported("an empty scan"))?;
    let Statement::Query(query) = &mut statement else {
        return Err(Error::not_supported("this UPDATE or DELETE"));
    };
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return Err(Error::not_supported("this UPDATE or DELETE"));
    };
    for (index, expr) in extra.into_iter().enumerate() {
        select.projection.push(SelectItem::ExprWithAlias {
            expr,
            alias: ast::Ident::with_quote('"', format!("__tempora_set_{index}")),
        });
    }
    select.from.extend(from.iter().cloned());
    select.selection = selection.cloned();
    Ok(statement)
}

/// The scanned rows, each target row once (a join may match it more often).
fn distinct_rows(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let batch = concat_batches(schema, batches)?;
    let ids = batch.column(0).as_primitive::<Int64Type>();
    let mut seen = HashSet::with_capacity(ids.len());
    let keep: Vec<u32> = (0..ids.len())
        .filter(|&row| seen.insert(ids.value(row)))
        .map(|row| row as u32)
        .collect();
    if keep.len() == batch.num_rows() {
        return Ok(batch);
    }
    Ok(take_record_batch(&batch, &UInt32Array::from(keep))?)
}

/// The row ids of scanned rows with the chunk each was read from, and the
/// table's key columns (by which the store unindexes them), as the store
/// deletes them. `time_position`: the time column's place in `rows`.
pub(crate) fn deleted_rows(
    session: &Session,
    table: &TableDef,
    rows: &RecordBatch,
    time_position: Option<usize>,
) -> Result<RecordBatch> {
    let snapshot = session
        .reads
        .table(table.id)
        .ok_or_else(|| Error::UndefinedTable {
            name: table.name.clone(),
        })?;
    let time = time_position.map(|i| rows.column(i).as_ref());
    let chunks = snapshot.chunks_of_rows(time, rows.num_rows())?;
    deletes_in_chunks(table, rows, chunks)
}

/// [`deleted_rows`] for rows whose chunks are known.
fn deletes_in_chunks(
    table: &TableDef,
    rows: &RecordBatch,
    chunks: Vec<Option<ChunkId>>,
) -> Result<RecordBatch> {
    let mut fields = vec![
        Field::new(ROWID_COLUMN, DataType::Int64, false),
        Field::new(CHUNK_COLUMN, DataType::UInt64, true),
    ];
    let mut columns: Vec<ArrayRef> =
        vec![rows.column(0).clone(), Arc::new(UInt64Array::from(chunks))];
    let schema = rows.schema();
    for name in key_columns(table) {
        if let Ok(index) = schema.index_of(name) {
            fields.push(schema.field(index).clone());
            columns.push(rows.column(index).clone());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// The columns of the table's unique keys, each once.
fn key_columns(table: &TableDef) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for index in table.unique_indexes() {
        for column in &index.columns {
            if !names.contains(&column.as_str()) {
                names.push(column);
            }
        }
    }
    names
}

/// Where the time column of a hypertable is among scanned rows that hold
/// the row id and then all the table's columns.
fn time_position(table: &TableDef) -> Option<usize> {
    table
        .hypertable
        .as_ref()
        .and_then(|h| table.column_index(&h.time_column))
        .map(|i| i + 1)
}

/// The table's columns of scanned rows (which start with the row id).
fn user_rows(table: &TableDef, rows: &RecordBatch) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = (1..=table.columns.len())
        .map(|i| rows.column(i).clone())
        .collect();
    Ok(RecordBatch::try_new(table.arrow_schema(), columns)?)
}

pub(crate) fn is_conflict(error: &Error) -> bool {
    matches!(
        error,
        Error::Storage {
            source: tempora_storage::Error::Conflict { .. }
        }
    )
}

/// What an UPDATE or DELETE does to the rows its scan finds.
enum Change<'a> {
    /// Delete them; `time`: where the time column is among the scanned columns.
    Delete { time: Option<usize> },
    /// Replace them by new versions with these assignments.
    Update { assigned: &'a [(usize, Assigned)] },
}

/// Scans the rows to change, works out the change and commits it. Outside
/// a block the table's lock is held throughout, and a conflict with a
/// block's COMMIT reads again. Returns the scanned rows and the new rows
/// written.
async fn change_rows(
    session: &mut Session,
    table: &Arc<TableDef>,
    scan: &Statement,
    point: Option<PointScan>,
    params: &[Option<String>],
    change: Change<'_>,
) -> Result<(RecordBatch, Option<RecordBatch>)> {
    let command = match change {
        Change::Delete { .. } => "DELETE",
        Change::Update { .. } => "UPDATE",
    };
    let in_block = session.transaction.is_some();
    let mut attempt = 0;
    loop {
        let lock = session.engine().table_lock(table.id);
        let _guard = if in_block {
            None
        } else {
            Some(lock.lock_owned().await)
        };
        session.reads.begin_statement();
        // A block reads its own staged rows too, which the key index does
        // not know: it scans.
        // A point read knows the chunk of the row it found.
        let (schema, batches, chunk) = match &point {
            Some(point) if !in_block => point::read(session, table, point, params).await?,
            _ => {
                let (schema, batches) = session.collect(scan, params).await?;
                (schema, batches, None)
            }
        };
        let rows = distinct_rows(&schema, &batches)?;
        let deletes = |session: &Session, time| match chunk {
            Some(chunk) => deletes_in_chunks(table, &rows, vec![Some(chunk); rows.num_rows()]),
            None => deleted_rows(session, table, &rows, time),
        };
        let (inserts, deletes) = match &change {
            Change::Delete { time } => (None, deletes(session, *time)?),
            Change::Update { assigned } => (
                Some(new_versions(session, table, &rows, assigned).await?),
                deletes(session, time_position(table))?,
            ),
        };
        match session
            .write_changes(
                table,
                inserts.iter().cloned().collect(),
                vec![deletes],
                command,
            )
            .await
        {
            Err(error) if !in_block && is_conflict(&error) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
            }
            Err(error) => return Err(error),
            Ok(_) => return Ok((rows, inserts)),
        }
    }
}

/// The statement's answer: RETURNING evaluated over `rows`, or its tag with
/// the count of rows changed.
async fn output(
    session: &Session,
    target: &Target,
    rows: RecordBatch,
    returning: Option<&[SelectItem]>,
    command: &str,
) -> Result<Output> {
    match returning {
        Some(items) => {
            let (schema, batches) =
                insert::returning_as(session, &target.table, &target.alias, rows, items).await?;
            Ok(Output::Batches {
                schema,
                batches,
                tag: command.to_owned(),
            })
        }
        None => Ok(Output::Command {
            tag: format!("{command} {}", rows.num_rows()),
        }),
    }
}

pub(crate) async fn delete(
    session: &mut Session,
    delete: &ast::Delete,
    params: &[Option<String>],
) -> Result<Output> {
    let (target, using) = delete_parts(session, delete)?;
    let table = target.table.clone();
    // Without RETURNING the scan reads the time column and the key columns
    // (which the store needs to unindex the rows), time first.
    let columns: Vec<&str> = if delete.returning.is_some() {
        table.columns.iter().map(|c| c.name.as_str()).collect()
    } else {
        let mut columns: Vec<&str> = table
            .hypertable
            .iter()
            .map(|h| h.time_column.as_str())
            .collect();
        for key in key_columns(&table) {
            if !columns.contains(&key) {
                columns.push(key);
            }
        }
        columns
    };
    let scan = scan_query(
        &target,
        &columns,
        Vec::new(),
        &using,
        delete.selection.as_ref(),
    )?;
    // Without RETURNING the scan read just the row id and time column.
    let time = match delete.returning {
        Some(_) => time_position(&table),
        None => table.hypertable.as_ref().map(|_| 1),
    };
    let point = point::scan(&target, &scan, &using, delete.selection.as_ref(), params);
    let (rows, _) = change_rows(
        session,
        &table,
        &scan,
        point,
        params,
        Change::Delete { time },
    )
    .await?;
    // RETURNING reads the old rows' columns, which the scan then read.
    let rows = match delete.returning {
        Some(_) => user_rows(&table, &rows)?,
        None => rows,
    };
    output(
        session,
        &target,
        rows,
        delete.returning.as_deref(),
        "DELETE",
    )
    .await
}

fn delete_parts(
    session: &Session,
    delete: &ast::Delete,
) -> Result<(Target, Vec<ast::TableWithJoins>)> {
    if !delete.tables.is_empty() || !delete.order_by.is_empty() || delete.limit.is_some() {
        return Err(Error::Syntax {
            message: "syntax error: DELETE takes one table, without ORDER BY or LIMIT".to_owned(),
        });
    }
    let from = match &delete.from {
        ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from) => from,
    };
    let [relation] = from.as_slice() else {
        return Err(Error::Syntax {
            message: "syntax error: DELETE FROM takes one table; name others in USING".to_owned(),
        });
    };
    let target = target_of(session, relation)?;
    Ok((target, delete.using.clone().unwrap_or_default()))
}

/// Each assigned column with what it gets, and the expressions to evaluate.
pub(crate) type Assignments = (Vec<(usize, Assigned)>, Vec<Expr>);

/// The column each SET assignment targets, with what it assigns.
pub(crate) fn assignments(
    table: &TableDef,
    list: &[ast::Assignment],
    params: &[Option<String>],
) -> Result<Assignments> {
    let mut assigned: Vec<(usize, Assigned)> = Vec::new();
    let mut exprs = Vec::new();
    for assignment in list {
        let ast::AssignmentTarget::ColumnName(name) = &assignment.target else {
            return Err(Error::not_supported(
                "assigning a tuple of columns in UPDATE",
            ));
        };
        let column_name = match name.0.last() {
            Some(ast::ObjectNamePart::Identifier(i)) => ident(i),
            _ => {
                return Err(Error::Syntax {
                    message: format!("invalid column name {name}"),
                });
            }
        };
        let index = table
            .column_index(&column_name)
            .ok_or_else(|| Error::UndefinedColumn {
                table: table.name.clone(),
                column: column_name.clone(),
            })?;
        if assigned.iter().any(|(i, _)| *i == index) {
            return Err(Error::Syntax {
                message: format!("multiple assignments to same column \"{column_name}\""),
            });
        }
        let column = &table.columns[index];
        let is_default = matches!(&assignment.value,
            Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"));
        if column.identity_always && !is_default {
            return Err(Error::IdentityUpdate {
                column: column_name,
            });
        }
        let value = if is_default {
            Assigned::Default
        } else if let Some(text) = insert::literal_text(&assignment.value, column.pg_type, params) {
            // Read now, so a bad literal fails even when no row matches.
            if let Some(text) = &text {
                ColumnBuilder::new(column.pg_type, 1)?.append_text(text)?;
            }
            Assigned::Text(text)
        } else {
            exprs.push(assignment.value.clone());
            Assigned::Expr(exprs.len() - 1)
        };
        assigned.push((index, value));
    }
    Ok((assigned, exprs))
}

pub(crate) async fn update(
    session: &mut Session,
    update: &ast::Update,
    params: &[Option<String>],
) -> Result<Output> {
    let (target, from) = update_parts(session, update)?;
    let table = target.table.clone();
    let (assigned, exprs) = assignments(&table, &update.assignments, params)?;
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let scan = scan_query(&target, &columns, exprs, &from, update.selection.as_ref())?;
    let change = Change::Update {
        assigned: &assigned,
    };
    let point = point::scan(&target, &scan, &from, update.selection.as_ref(), params);
    let (_, new_rows) = change_rows(session, &table, &scan, point, params, change).await?;
    let new_rows = new_rows.unwrap_or_else(|| RecordBatch::new_empty(table.arrow_schema()));
    output(
        session,
        &target,
        new_rows,
        update.returning.as_deref(),
        "UPDATE",
    )
    .await
}

fn update_parts(
    session: &Session,
    update: &ast::Update,
) -> Result<(Target, Vec<ast::TableWithJoins>)> {
    if update.or.is_some() || !update.order_by.is_empty() || update.limit.is_some() {
        return Err(Error::Syntax {
            message: "syntax error: UPDATE takes no OR, ORDER BY or LIMIT".to_owned(),
        });
    }
    let target = target_of(session, &update.table)?;
    let from = match &update.from {
        Some(ast::UpdateTableFromKind::AfterSet(from)) => from.clone(),
        Some(ast::UpdateTableFromKind::BeforeSet(_)) => {
            return Err(Error::Syntax {
                message: "syntax error at or near \"FROM\"".to_owned(),
            });
        }
        None => Vec::new(),
    };
    Ok((target, from))
}

/// The updated rows: old values where nothing is assigned, assigned values
/// converted to their columns' types as PostgreSQL's assignment does.
pub(crate) async fn new_versions(
    session: &Session,
    table: &TableDef,
    rows: &RecordBatch,
    assigned: &[(usize, Assigned)],
) -> Result<RecordBatch> {
    let count = rows.num_rows();
    let mut columns: Vec<ArrayRef> = (1..=table.columns.len())
        .map(|i| rows.column(i).clone())
        .collect();
    let mut parsed = Vec::new();
    let first_expr = 1 + table.columns.len();
    for (index, value) in assigned {
        let column = &table.columns[*index];
        columns[*index] = match value {
            Assigned::Text(text) => {
                parsed.push(*index);
                let mut builder = ColumnBuilder::new(column.pg_type, count)?;
                for _ in 0..count {
                    match text {
                        Some(text) => builder.append_text(text)?,
                        None => builder.append_null(),
                    }
                }
                builder.finish()
            }
            Assigned::Default => match &column.default_sql {
                Some(sql) if count > 0 => {
                    insert::evaluate_default(session, sql, column.pg_type, count).await?
                }
                _ => datafusion::arrow::array::new_null_array(&column.pg_type.arrow_type(), count),
            },
            Assigned::Expr(position) => assign(
                rows.column(first_expr + position),
                column.pg_type,
                &column.name,
            )?,
        };
    }
    let batch = RecordBatch::try_new(table.arrow_schema(), columns)?;
    insert::validate(table, batch, &parsed)
}

/// Converts values computed for a column to its type, as PostgreSQL's
/// assignment casts do: numbers to numbers, dates and timestamps to each
/// other, anything to text (in PostgreSQL's text form); else 42804.
fn assign(values: &ArrayRef, target: PgType, column: &str) -> Result<ArrayRef> {
    let target_type = target.arrow_type();
    if values.data_type() == &target_type {
        return Ok(values.clone());
    }
    if values.data_type() == &DataType::Null {
        return Ok(datafusion::arrow::array::new_null_array(
            &target_type,
            values.len(),
        ));
    }
    if !insert::assignable(values.data_type(), false, target) {
        let source = PgType::of_arrow(values.data_type())
            .map(|t| t.to_string())
            .unwrap_or_else(|_| values.data_type().to_string());
        return Err(Error::DatatypeMismatch {
            message: format!(
                "column \"{column}\" is of type {target} but expression is of type {source}"
            ),
        });
    }
    if matches!(target, PgType::Text | PgType::Varchar { .. })
        && let Ok(source) = PgType::of_arrow(values.data_type())
    {
        let mut builder = StringBuilder::with_capacity(values.len(), values.len() * 8);
        let mut text = String::new();
        for row in 0..values.len() {
            text.clear();
            if format_value(values.as_ref(), row, source, &mut text)? {
                builder.append_value(&text);
            } else {
                builder.append_null();
            }
        }
        return Ok(Arc::new(builder.finish()));
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    Ok(cast_with_options(values, &target_type, &options)?)
}

/// What EXPLAIN of an UPDATE or DELETE shows: a line naming the change,
/// and the scan that finds the rows.
pub(crate) fn explain_scan(
    session: &Session,
    statement: &Statement,
) -> Result<(String, Statement)> {
    match statement {
        Statement::Delete(delete) => {
            let (target, using) = delete_parts(session, delete)?;
            let scan = scan_query(&target, &[], Vec::new(), &using, delete.selection.as_ref())?;
            Ok((format!("Delete on {}", target.table.name), scan))
        }
        Statement::Update(update) => {
            let (target, from) = update_parts(session, update)?;
            let exprs = update.assignments.iter().map(|a| a.value.clone()).collect();
            let scan = scan_query(&target, &[], exprs, &from, update.selection.as_ref())?;
            Ok((format!("Update on {}", target.table.name), scan))
        }
        _ => Err(Error::not_supported("EXPLAIN of this statement")),
    }
}

/// Parameter types and RETURNING columns of a prepared UPDATE or DELETE.
pub(crate) async fn describe(
    session: &mut Session,
    statement: &Statement,
    declared: &[Option<PgType>],
) -> Result<(Vec<PgType>, Option<SchemaRef>)> {
    let mut types: Vec<Option<PgType>> = declared.to_vec();
    let set = |types: &mut Vec<Option<PgType>>, n: usize, pg_type: PgType| {
        if types.len() < n {
            types.resize(n, None);
        }
        if types[n - 1].is_none() {
            types[n - 1] = Some(pg_type);
        }
    };
    let (target, scan, returning) = match statement {
        Statement::Delete(delete) => {
            let (target, using) = delete_parts(session, delete)?;
            let scan = scan_query(&target, &[], Vec::new(), &using, delete.selection.as_ref())?;
            (target, scan, delete.returning.clone())
        }
        Statement::Update(update) => {
            let (target, from) = update_parts(session, update)?;
            // Placeholders assigned as they are take their column's type.
            let mut exprs = Vec::new();
            for assignment in &update.assignments {
                if let ast::AssignmentTarget::ColumnName(name) = &assignment.target
                    && let Some(ast::ObjectNamePart::Identifier(i)) = name.0.last()
                    && let Some(index) = target.table.column_index(&ident(i))
                    && let Expr::Value(value) = &assignment.value
                    && let ast::Value::Placeholder(p) = &value.value
                    && let Ok(n) = p.trim_start_matches('$').parse::<usize>()
                    && n >= 1
                {
                    set(&mut types, n, target.table.columns[index].pg_type);
                } else {
                    exprs.push(assignment.value.clone());
                }
            }
            let scan = scan_query(&target, &[], exprs, &from, update.selection.as_ref())?;
            (target, scan, update.returning.clone())
        }
        _ => return Err(Error::not_supported("describing this statement")),
    };
    // Planning only infers parameter types: a statement whose parameters
    // all have one is described without it (the common point change with
    // literals or declared parameters, prepared anew for every run).
    let needed = placeholder_count(statement);
    let undecided = (0..needed).any(|i| types.get(i).copied().flatten().is_none());
    if undecided {
        let plan = session.plan(&scan).await?;
        infer_parameters(&plan, &mut types, set)?;
    }
    let types = types
        .into_iter()
        .map(|t| t.unwrap_or(PgType::Text))
        .collect();
    let returning = match returning {
        Some(items) => {
            let empty = RecordBatch::new_empty(target.table.arrow_schema());
            let (schema, _) =
                insert::returning_as(session, &target.table, &target.alias, empty, &items).await?;
            Some(schema)
        }
        None => None,
    };
    Ok((types, returning))
}

/// The highest `$n` a statement uses.
fn placeholder_count(statement: &Statement) -> usize {
    let mut count = 0;
    let _ = ast::visit_expressions(statement, |expr| {
        if let Expr::Value(value) = expr
            && let ast::Value::Placeholder(name) = &value.value
            && let Ok(n) = name.trim_start_matches('$').parse::<usize>()
        {
            count = count.max(n);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    count
}

/// Types of the parameters a plan infers, where none is known yet.
fn infer_parameters(
    plan: &datafusion::logical_expr::LogicalPlan,
    types: &mut Vec<Option<PgType>>,
    set: impl Fn(&mut Vec<Option<PgType>>, usize, PgType),
) -> Result<()> {
    for (name, data_type) in plan.get_parameter_types()? {
        if let (Ok(n), Some(data_type)) = (name.trim_start_matches('$').parse::<usize>(), data_type)
            && n >= 1
            && let Ok(pg_type) = PgType::of_arrow(&data_type)
        {
            set(types, n, pg_type);
        }
    }
    Ok(())
}
