//! ALTER TABLE and TRUNCATE.
//!
//! Renaming the table and changing defaults or NOT NULL change only the
//! catalog. Adding, dropping, renaming and retyping columns rewrite the
//! table's rows into new segment files under the new definition and swap
//! them in with one catalog transaction (`Store::rewrite_table`), as
//! PostgreSQL rewrites a table for ALTER COLUMN TYPE: writers wait meanwhile,
//! the cost grows with the table, and a crash leaves the old table or the new
//! one. Segment files name columns, so a metadata-only rename or add would
//! need column ids in the files first.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::Schema;
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnOption, ObjectName, RenameTableNameKind,
};

use tempora_catalog::{ColumnDef, TableDef};
use tempora_query::types::{is_serial, pg_type_of_sql};
use tempora_types::PgType;

use crate::names::{ident, table_name};
use crate::session::{Output, Session};
use crate::{Error, Result};

fn command(tag: &str) -> Output {
    Output::Command {
        tag: tag.to_owned(),
    }
}

pub(crate) async fn alter_table(session: &mut Session, alter: &ast::AlterTable) -> Result<Output> {
    let name = table_name(&alter.name)?;
    let state = session.engine().store().catalog().snapshot();
    let found = match session.table(&name) {
        Ok(table) => Some(table),
        Err(Error::UndefinedTable { .. }) => None,
        Err(error) => return Err(error),
    };
    let Some(table) = found else {
        if alter.if_exists {
            session.notice(format!("relation \"{name}\" does not exist, skipping"));
            return Ok(command("ALTER TABLE"));
        }
        return Err(Error::UndefinedTable { name });
    };
    if alter.operations.len() != 1 {
        return Err(Error::not_supported(
            "several ALTER TABLE actions in one statement (run one per statement)",
        ));
    }
    let changes_columns = matches!(
        &alter.operations[0],
        AlterTableOperation::RenameColumn { .. }
            | AlterTableOperation::AddColumn { .. }
            | AlterTableOperation::DropColumn { .. }
            | AlterTableOperation::AlterColumn { .. }
    );
    // The block's staged rows have the columns the table had when they
    // were written; COMMIT could not store them under the new ones.
    if changes_columns && session.transaction.is_some() && session.reads.has_staged_rows(table.id) {
        return Err(Error::not_supported(format!(
            "changing the columns of table \"{}\" after writing rows to it in the same transaction block (commit the rows first)",
            table.name
        )));
    }
    match &alter.operations[0] {
        AlterTableOperation::RenameTable { table_name: new } => {
            let (RenameTableNameKind::To(new) | RenameTableNameKind::As(new)) = new;
            if session.transaction.is_some() {
                return crate::transaction::stage_rename(session, &table, new);
            }
            rename_table(session, &table, new)
        }
        AlterTableOperation::RenameColumn { .. }
        | AlterTableOperation::AddColumn { .. }
        | AlterTableOperation::DropColumn { .. }
        | AlterTableOperation::AlterColumn { .. }
            if !state.views_depending_on(&table.name).is_empty() =>
        {
            crate::views::check_columns_unused(&state, &table.name, "change the columns")?;
            Ok(command("ALTER TABLE"))
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            rename_column(
                session,
                &table,
                &ident(old_column_name),
                &ident(new_column_name),
            )
            .await
        }
        AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            ..
        } => add_column(session, &table, *if_not_exists, column_def).await,
        AlterTableOperation::DropColumn {
            column_names,
            if_exists,
            drop_behavior,
            ..
        } => {
            if matches!(drop_behavior, Some(ast::DropBehavior::Cascade)) {
                return Err(Error::not_supported("DROP COLUMN ... CASCADE"));
            }
            let [column] = column_names.as_slice() else {
                return Err(Error::not_supported(
                    "dropping several columns in one action",
                ));
            };
            drop_column(session, &table, &ident(column), *if_exists).await
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            alter_column(session, &table, &ident(column_name), op).await
        }
        AlterTableOperation::AddConstraint {
            constraint,
            not_valid: false,
        } => {
            crate::indexes::alter_add_constraint(session, &table, constraint).await?;
            Ok(command("ALTER TABLE"))
        }
        AlterTableOperation::DropConstraint {
            if_exists,
            name,
            drop_behavior,
        } => {
            if matches!(drop_behavior, Some(ast::DropBehavior::Cascade)) {
                return Err(Error::not_supported("DROP CONSTRAINT ... CASCADE"));
            }
            crate::indexes::alter_drop_constraint(session, &table, name, *if_exists).await?;
            Ok(command("ALTER TABLE"))
        }
        other => Err(Error::not_supported(format!(
            "ALTER TABLE action \"{other}\""
        ))),
    }
}

fn column_of<'a>(table: &'a TableDef, column: &str) -> Result<(usize, &'a ColumnDef)> {
    table
        .column_index(column)
        .map(|i| (i, &table.columns[i]))
        .ok_or_else(|| Error::UndefinedColumn {
            table: table.name.clone(),
            column: column.to_owned(),
        })
}

fn is_time_column(table: &TableDef, column: &str) -> bool {
    table
        .hypertable
        .as_ref()
        .is_some_and(|h| h.time_column == column)
}

/// Swaps in a new definition that changes no stored column.
fn put_definition(session: &Session, table: TableDef) -> Result<Output> {
    session.catalog_transact(|txn| {
        txn.put_table(table);
        Ok(())
    })?;
    Ok(command("ALTER TABLE"))
}

/// Rewrites every row of the table through `transform` under `new_table`.
async fn rewrite(
    session: &Session,
    new_table: TableDef,
    transform: impl Fn(RecordBatch) -> tempora_storage::Result<RecordBatch> + Send + 'static,
) -> Result<Output> {
    let store = session.engine().store().clone();
    let mark = session.ddl_mark();
    tokio::task::spawn_blocking(move || store.rewrite_table(new_table, transform, mark))
        .await
        .map_err(|e| Error::not_supported(format!("table rewrite failed: {e}")))??;
    Ok(command("ALTER TABLE"))
}

/// The same arrays under a new schema (after a rename).
fn with_schema(
    schema: &Arc<Schema>,
    columns: Vec<ArrayRef>,
) -> tempora_storage::Result<RecordBatch> {
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn rename_table(session: &Session, table: &TableDef, new: &ObjectName) -> Result<Output> {
    let new_name = table_name(new)?;
    let state = session.engine().store().catalog().snapshot();
    if state.relation_exists(&new_name) {
        return Err(Error::DuplicateTable { name: new_name });
    }
    let views = crate::views::renamed_in_views(&state, &table.name, &new_name)?;
    let mut renamed = table.clone();
    renamed.name = new_name;
    session.catalog_transact(|txn| {
        txn.put_table(renamed);
        for view in views {
            txn.put_view(view);
        }
        Ok(())
    })?;
    Ok(command("ALTER TABLE"))
}

async fn rename_column(
    session: &Session,
    table: &TableDef,
    old: &str,
    new: &str,
) -> Result<Output> {
    let (index, _) = column_of(table, old)?;
    if table.column_index(new).is_some() {
        return Err(Error::DuplicateColumnInTable {
            table: table.name.clone(),
            column: new.to_owned(),
        });
    }
    let mut renamed = table.clone();
    renamed.columns[index].name = new.to_owned();
    crate::indexes::rename_column(&mut renamed, old, new);
    crate::checks::rename_column(&mut renamed, old, new)?;
    if let Some(h) = &mut renamed.hypertable
        && h.time_column == old
    {
        h.time_column = new.to_owned();
    }
    // A serial column's sequence keeps its name but follows the column.
    let owned = session
        .engine()
        .store()
        .catalog()
        .snapshot()
        .sequences_owned_by(table.id, old);
    let schema = renamed.arrow_schema();
    let output = rewrite(session, renamed, move |batch| {
        with_schema(&schema, batch.columns().to_vec())
    })
    .await?;
    session.catalog_transact(|txn| {
        for name in &owned {
            txn.sequence_mut(name)?.owned_by = Some((table.id, new.to_owned()));
        }
        Ok(())
    })?;
    Ok(output)
}

async fn add_column(
    session: &mut Session,
    table: &TableDef,
    if_not_exists: bool,
    column: &ast::ColumnDef,
) -> Result<Output> {
    let name = ident(&column.name);
    if table.column_index(&name).is_some() {
        if if_not_exists {
            session.notice(format!(
                "column \"{name}\" of relation \"{}\" already exists, skipping",
                table.name
            ));
            return Ok(command("ALTER TABLE"));
        }
        return Err(Error::DuplicateColumnInTable {
            table: table.name.clone(),
            column: name,
        });
    }
    if is_serial(&column.data_type) {
        return Err(Error::not_supported(
            "ADD COLUMN of a serial type (create a sequence and set the column's DEFAULT)",
        ));
    }
    let pg_type = pg_type_of_sql(&column.data_type).ok_or_else(|| Error::UndefinedType {
        name: column.data_type.to_string().to_lowercase(),
    })?;
    let mut def = ColumnDef {
        name: name.clone(),
        pg_type,
        not_null: false,
        default_sql: None,
        identity_always: false,
    };
    let mut default = None;
    for option in &column.options {
        match &option.option {
            ColumnOption::NotNull => def.not_null = true,
            ColumnOption::Null => def.not_null = false,
            ColumnOption::Default(expr) => {
                def.default_sql = Some(expr.to_string());
                default = Some(expr.clone());
            }
            other => {
                return Err(Error::not_supported(format!(
                    "column option \"{other}\" in ADD COLUMN"
                )));
            }
        }
    }
    // Existing rows get the default, computed once: PostgreSQL does the same
    // for a constant default; a volatile one (now(), nextval) would differ per
    // row there, so it is refused rather than given one value.
    let value = match &default {
        Some(expr) => {
            let text = expr.to_string().to_ascii_lowercase();
            if [
                "nextval",
                "random",
                "now",
                "clock_timestamp",
                "gen_random_uuid",
            ]
            .iter()
            .any(|f| text.contains(f))
            {
                return Err(Error::not_supported(
                    "ADD COLUMN with a volatile DEFAULT on a table (add the column, then set its DEFAULT and UPDATE)",
                ));
            }
            let value = session.evaluate(expr, &[]).await?;
            let target = pg_type.arrow_type();
            if value.data_type() == target {
                value
            } else {
                value.cast_to(&target)?
            }
        }
        None => ScalarValue::try_from(&pg_type.arrow_type())?,
    };
    if def.not_null && value.is_null() && session.engine().store().row_count(table.id) > 0 {
        return Err(tempora_storage::Error::ContainsNulls {
            table: table.name.clone(),
            column: name,
        }
        .into());
    }
    let mut altered = table.clone();
    altered.columns.push(def);
    let schema = altered.arrow_schema();
    rewrite(session, altered, move |batch| {
        let mut columns = batch.columns().to_vec();
        columns.push(value.to_array_of_size(batch.num_rows()).map_err(|e| {
            tempora_storage::Error::SchemaMismatch {
                table: String::new(),
                reason: e.to_string(),
            }
        })?);
        with_schema(&schema, columns)
    })
    .await
}

async fn drop_column(
    session: &mut Session,
    table: &TableDef,
    column: &str,
    if_exists: bool,
) -> Result<Output> {
    let Some(index) = table.column_index(column) else {
        if if_exists {
            session.notice(format!(
                "column \"{column}\" of relation \"{}\" does not exist, skipping",
                table.name
            ));
            return Ok(command("ALTER TABLE"));
        }
        return Err(Error::UndefinedColumn {
            table: table.name.clone(),
            column: column.to_owned(),
        });
    };
    if is_time_column(table, column) {
        return Err(Error::not_supported(format!(
            "dropping column \"{column}\": it is the time dimension of hypertable \"{}\"",
            table.name
        )));
    }
    if table.columns.len() == 1 {
        return Err(Error::not_supported("dropping a table's last column"));
    }
    let mut altered = table.clone();
    altered.columns.remove(index);
    crate::indexes::drop_column(&mut altered, column);
    crate::checks::drop_column(&mut altered, column)?;
    let schema = altered.arrow_schema();
    let output = rewrite(session, altered, move |batch| {
        let mut columns = batch.columns().to_vec();
        columns.remove(index);
        with_schema(&schema, columns)
    })
    .await?;
    // A serial column's sequence goes with it.
    let owned = session
        .engine()
        .store()
        .catalog()
        .snapshot()
        .sequences_owned_by(table.id, column);
    session.catalog_transact(|txn| {
        for name in &owned {
            txn.drop_sequence(name);
        }
        Ok(())
    })?;
    for name in &owned {
        session.engine().sequences.forget(name);
    }
    Ok(output)
}

/// Whether ALTER COLUMN TYPE from `from` to `to` keeps every value: the
/// widening conversions.
fn widens(from: PgType, to: PgType) -> bool {
    use PgType::*;
    match (from, to) {
        _ if from == to => true,
        (Int2, Int4 | Int8 | Float8) | (Int4, Int8 | Float8) | (Float4, Float8) => true,
        (
            Int2 | Int4 | Int8,
            Numeric {
                precision: None, ..
            },
        ) => true,
        (Varchar { .. } | Text, Text) | (Text, Varchar { max_chars: None }) => true,
        (Varchar { max_chars: Some(a) }, Varchar { max_chars: Some(b) }) => b >= a,
        (Varchar { .. }, Varchar { max_chars: None }) => true,
        (Timestamp, Timestamptz) | (Date, Timestamp | Timestamptz) => true,
        _ => false,
    }
}

async fn alter_column(
    session: &mut Session,
    table: &TableDef,
    column: &str,
    op: &AlterColumnOperation,
) -> Result<Output> {
    let (index, def) = column_of(table, column)?;
    let mut altered = table.clone();
    match op {
        AlterColumnOperation::SetDefault { value } => {
            altered.columns[index].default_sql = Some(value.to_string());
            put_definition(session, altered)
        }
        AlterColumnOperation::DropDefault => {
            altered.columns[index].default_sql = None;
            put_definition(session, altered)
        }
        AlterColumnOperation::DropNotNull => {
            if table
                .primary_key()
                .is_some_and(|k| k.columns.iter().any(|c| c == column))
            {
                return Err(Error::InvalidTableDefinition {
                    message: format!("column \"{column}\" is in a primary key"),
                });
            }
            if is_time_column(table, column) {
                return Err(Error::not_supported(format!(
                    "DROP NOT NULL on \"{column}\": the time dimension of a hypertable is never null"
                )));
            }
            altered.columns[index].not_null = false;
            put_definition(session, altered)
        }
        AlterColumnOperation::SetNotNull => {
            altered.columns[index].not_null = true;
            let (table_name, column_name) = (table.name.clone(), column.to_owned());
            let schema = altered.arrow_schema();
            // Checked while writers wait, so no null slips in between.
            rewrite(session, altered, move |batch| {
                if batch.column(index).null_count() > 0 {
                    return Err(tempora_storage::Error::ContainsNulls {
                        table: table_name.clone(),
                        column: column_name.clone(),
                    });
                }
                with_schema(&schema, batch.columns().to_vec())
            })
            .await
        }
        AlterColumnOperation::SetDataType {
            data_type, using, ..
        } => {
            if using.is_some() {
                return Err(Error::not_supported("ALTER COLUMN TYPE ... USING"));
            }
            let to = pg_type_of_sql(data_type).ok_or_else(|| Error::UndefinedType {
                name: data_type.to_string().to_lowercase(),
            })?;
            if is_time_column(table, column) && to != def.pg_type {
                return Err(Error::not_supported(
                    "changing the type of a hypertable's time dimension",
                ));
            }
            if !widens(def.pg_type, to) {
                return Err(Error::not_supported(format!(
                    "ALTER COLUMN TYPE from {} to {} (tempora converts only to types that hold every value: smallint to integer to bigint, to numeric or double precision, varchar to text, timestamp to timestamptz)",
                    def.pg_type.typname(),
                    to.typname()
                )));
            }
            altered.columns[index].pg_type = to;
            let schema = altered.arrow_schema();
            let target = to.arrow_type();
            rewrite(session, altered, move |batch| {
                let mut columns = batch.columns().to_vec();
                columns[index] = cast_with_options(
                    &columns[index],
                    &target,
                    &CastOptions {
                        safe: false,
                        ..CastOptions::default()
                    },
                )?;
                with_schema(&schema, columns)
            })
            .await
        }
        other => Err(Error::not_supported(format!(
            "ALTER COLUMN action \"{other}\""
        ))),
    }
}

/// `TRUNCATE t [, ...]`: every row goes, the tables (and a hypertable's
/// settings) stay; chunks are dropped as `drop_chunks` drops them.
pub(crate) fn truncate(session: &mut Session, truncate: &ast::Truncate) -> Result<Output> {
    if matches!(
        truncate.identity,
        Some(ast::TruncateIdentityOption::Restart)
    ) {
        return Err(Error::not_supported(
            "TRUNCATE ... RESTART IDENTITY (reset the sequences with setval)",
        ));
    }
    let store = session.engine().store().clone();
    let state = store.catalog().snapshot();
    let mut chunk_ids = Vec::new();
    for target in &truncate.table_names {
        let name = table_name(&target.name)?;
        let table = state
            .table_by_name(&name)
            .ok_or_else(|| Error::UndefinedTable { name: name.clone() })?;
        chunk_ids.extend(state.chunks_of(table.id).iter().map(|c| c.id));
    }
    store.drop_chunks(&chunk_ids, session.ddl_mark())?;
    Ok(command("TRUNCATE TABLE"))
}
