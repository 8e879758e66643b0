//! CHECK constraints: declared in CREATE TABLE or ALTER TABLE ... ADD,
//! evaluated over every row a statement writes (INSERT, COPY, UPDATE,
//! upserts) before it reaches the store. A row passes when the expression is
//! true or NULL, as in PostgreSQL; constraints are tried in name order, so
//! the one named is the one PostgreSQL would name.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast::{
    self, Expr, Statement, Visit, VisitMut, Visitor, VisitorMut,
};

use tempora_catalog::{CheckDef, TableDef};
use tempora_types::PgType;
use tempora_types::text::format_value;

use crate::error::SqlState;
use crate::names::ident;
use crate::session::Session;
use crate::{Error, Result};

/// The name rows are bound to while their checks are evaluated.
const CHECKED_ROWS: &str = "__tempora_checked_rows";

/// The table's columns an expression names.
fn referenced_columns(table: &TableDef, expr: &Expr) -> BTreeSet<String> {
    struct Columns<'a> {
        table: &'a TableDef,
        found: BTreeSet<String>,
    }
    impl Visitor for Columns<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            let name = match expr {
                Expr::Identifier(i) => Some(ident(i)),
                Expr::CompoundIdentifier(parts) => parts.last().map(ident),
                _ => None,
            };
            if let Some(name) = name
                && self.table.column_index(&name).is_some()
            {
                self.found.insert(name);
            }
            ControlFlow::Continue(())
        }
    }
    let mut columns = Columns {
        table,
        found: BTreeSet::new(),
    };
    let _ = expr.visit(&mut columns);
    columns.found
}

/// Adds a CHECK constraint to a table definition, named as given or as
/// PostgreSQL names it: `t_col_check` when it reads one column, else
/// `t_check`, numbered when taken.
pub(crate) fn add_check(
    table: &mut TableDef,
    name: Option<&ast::Ident>,
    expr: &Expr,
) -> Result<()> {
    let taken = |table: &TableDef, name: &str| {
        table.checks.iter().any(|c| c.name == name) || table.indexes.iter().any(|i| i.name == name)
    };
    let name = match name {
        Some(name) => {
            let name = ident(name);
            if taken(table, &name) {
                return Err(Error::Coded {
                    code: SqlState::DuplicateObject,
                    message: format!(
                        "constraint \"{name}\" for relation \"{}\" already exists",
                        table.name
                    ),
                });
            }
            name
        }
        None => {
            let columns = referenced_columns(table, expr);
            let base = match columns.iter().next() {
                Some(column) if columns.len() == 1 => format!("{}_{column}_check", table.name),
                _ => format!("{}_check", table.name),
            };
            let mut name = base.clone();
            let mut n = 1;
            while taken(table, &name) {
                name = format!("{base}{n}");
                n += 1;
            }
            name
        }
    };
    table.checks.push(CheckDef {
        name,
        expr: expr.to_string(),
    });
    Ok(())
}

/// The query that finds, for each row bound as [`CHECKED_ROWS`], which
/// checks (in name order) it fails.
fn failures_query(table: &TableDef, checks: &[&CheckDef]) -> String {
    let items: Vec<String> = checks
        .iter()
        .map(|c| format!("NOT coalesce(({}), true)", c.expr))
        .collect();
    format!(
        "SELECT {} FROM \"{CHECKED_ROWS}\" AS \"{}\"",
        items.join(", "),
        table.name.replace('"', "\"\"")
    )
}

async fn query(
    session: &Session,
    sql: &str,
) -> Result<(datafusion::arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
    let statement: Statement = crate::session::parse(sql)?
        .pop()
        .ok_or_else(|| Error::not_supported("an empty check"))?;
    session.collect(&statement, &[]).await
}

/// Checks that each of the table's CHECK expressions is a boolean
/// expression over its columns (42804, 42703 and the like otherwise).
pub(crate) async fn validate_definition(session: &Session, table: &TableDef) -> Result<()> {
    if table.checks.is_empty() {
        return Ok(());
    }
    session
        .reads
        .bind_rows(CHECKED_ROWS, RecordBatch::new_empty(table.arrow_schema()));
    let mut result = Ok(());
    for check in &table.checks {
        let sql = format!(
            "SELECT ({}) FROM \"{CHECKED_ROWS}\" AS \"{}\"",
            check.expr,
            table.name.replace('"', "\"\"")
        );
        match query(session, &sql).await {
            Ok((schema, _)) => {
                let data_type = schema.field(0).data_type();
                if !matches!(data_type, DataType::Boolean | DataType::Null) {
                    let pg = PgType::of_arrow(data_type)
                        .map(|t| t.to_string())
                        .unwrap_or_else(|_| data_type.to_string());
                    result = Err(Error::DatatypeMismatch {
                        message: format!("argument of CHECK must be type boolean, not type {pg}"),
                    });
                }
            }
            Err(error) => result = Err(error),
        }
        if result.is_err() {
            break;
        }
    }
    session.reads.unbind_rows(CHECKED_ROWS);
    result
}

/// Fails with 23514 if a row of `batches` (the table's columns, maybe
/// followed by the row id) fails one of the table's CHECK constraints.
pub(crate) async fn enforce(
    session: &Session,
    table: &TableDef,
    batches: &[RecordBatch],
) -> Result<()> {
    if table.checks.is_empty() {
        return Ok(());
    }
    let mut checks: Vec<&CheckDef> = table.checks.iter().collect();
    checks.sort_by(|a, b| a.name.cmp(&b.name));
    let sql = failures_query(table, &checks);
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        session.reads.bind_rows(CHECKED_ROWS, batch.clone());
        let result = query(session, &sql).await;
        session.reads.unbind_rows(CHECKED_ROWS);
        let (_, failures) = result?;
        let mut offset = 0;
        for failed in &failures {
            for row in 0..failed.num_rows() {
                for (position, check) in checks.iter().enumerate() {
                    let column = failed.column(position).as_boolean();
                    if column.is_valid(row) && column.value(row) {
                        return Err(violation(table, check, batch, offset + row));
                    }
                }
            }
            offset += failed.num_rows();
        }
    }
    Ok(())
}

fn violation(table: &TableDef, check: &CheckDef, batch: &RecordBatch, row: usize) -> Error {
    let mut values = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        let mut text = String::new();
        let shown = batch
            .column_by_name(&column.name)
            .map(|array| format_value(array.as_ref(), row, column.pg_type, &mut text));
        values.push(match shown {
            Some(Ok(true)) => text,
            _ => "null".to_owned(),
        });
    }
    Error::Coded {
        code: SqlState::CheckViolation,
        message: format!(
            "new row for relation \"{}\" violates check constraint \"{}\"\nDETAIL: Failing row contains ({}).",
            table.name,
            check.name,
            values.join(", ")
        ),
    }
}

/// Fails with 23514 if a row the table holds fails `check` (ALTER TABLE ...
/// ADD CHECK).
pub(crate) async fn validate_existing(
    session: &Session,
    table: &TableDef,
    check: &CheckDef,
) -> Result<()> {
    let sql = format!(
        "SELECT count(*) FROM \"{}\" WHERE NOT coalesce(({}), true)",
        table.name.replace('"', "\"\""),
        check.expr
    );
    session.reads.begin_statement();
    let (_, batches) = query(session, &sql).await?;
    let failing = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| {
            b.column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0)
        })
        .unwrap_or(0);
    if failing > 0 {
        return Err(Error::Coded {
            code: SqlState::CheckViolation,
            message: format!(
                "check constraint \"{}\" of relation \"{}\" is violated by some row",
                check.name, table.name
            ),
        });
    }
    Ok(())
}

/// The table's checks after a column is renamed: their expressions name it
/// anew.
pub(crate) fn rename_column(table: &mut TableDef, old: &str, new: &str) -> Result<()> {
    struct Rename<'a> {
        old: &'a str,
        new: &'a str,
    }
    impl VisitorMut for Rename<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            match expr {
                Expr::Identifier(i) if ident(i) == self.old => {
                    *i = ast::Ident::with_quote('"', self.new);
                }
                Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last_mut()
                        && ident(last) == self.old
                    {
                        *last = ast::Ident::with_quote('"', self.new);
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    for check in &mut table.checks {
        let mut expr = crate::session::parse_expression(&check.expr)?;
        let _ = VisitMut::visit(&mut expr, &mut Rename { old, new });
        check.expr = expr.to_string();
    }
    Ok(())
}

/// The table's checks after a column is dropped: those reading it go, as
/// in PostgreSQL.
pub(crate) fn drop_column(table: &mut TableDef, column: &str) -> Result<()> {
    struct Names<'a> {
        column: &'a str,
        found: bool,
    }
    impl Visitor for Names<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            let name = match expr {
                Expr::Identifier(i) => Some(ident(i)),
                Expr::CompoundIdentifier(parts) => parts.last().map(ident),
                _ => None,
            };
            self.found |= name.as_deref() == Some(self.column);
            ControlFlow::Continue(())
        }
    }
    let mut kept = Vec::new();
    for check in &table.checks {
        let expr = crate::session::parse_expression(&check.expr)?;
        let mut names = Names {
            column,
            found: false,
        };
        let _ = expr.visit(&mut names);
        if !names.found {
            kept.push(check.clone());
        }
    }
    table.checks = kept;
    Ok(())
}

/// Whether `name` is one of the table's CHECK constraints.
pub(crate) fn has_check(table: &TableDef, name: &str) -> bool {
    table.checks.iter().any(|c| c.name == name)
}
