//! INSERT: build the rows, fill defaults, validate, write through the store.
//!
//! Two ways to build rows, one result: `VALUES` lists of literals and
//! parameters (what drivers and bulk loaders send) are parsed straight into
//! Arrow by the same PostgreSQL text parsers COPY uses; anything else
//! (expressions, `INSERT ... SELECT`) is planned by DataFusion, whose insert
//! planning casts the source to the table's column types.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{LogicalPlan, ScalarUDF};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{self, Expr, SetExpr, Statement, UnaryOperator, Value};

use tempora_catalog::TableDef;
use tempora_query::types::pg_type_of_sql;
use tempora_types::PgType;
use tempora_types::text::ColumnBuilder;

use crate::fast_insert::{RawValue, ValuesInsert};
use crate::names::{ident, table_name};
use crate::params::{ParamRef, ParamRows, ParamSet};
use crate::session::{Output, Session, query_of, select_of};
use crate::upsert::Upsert;
use crate::{Error, Result};

fn target_table(session: &Session, insert: &ast::Insert) -> Result<Arc<TableDef>> {
    let ast::TableObject::TableName(name) = &insert.table else {
        return Err(Error::not_supported("INSERT into a table function"));
    };
    let name = table_name(name)?;
    session.table(&name)
}

/// Without a column list, an INSERT whose rows have N < all columns
/// targets the first N, as in PostgreSQL: the statement with them listed
/// (None when it lists its columns, or gives all, or its width is not
/// known before planning, as for `SELECT *`).
fn implicit_columns(table: &TableDef, insert: &ast::Insert) -> Option<ast::Insert> {
    if !insert.columns.is_empty() {
        return None;
    }
    let width = match insert.source.as_deref()?.body.as_ref() {
        SetExpr::Values(values) => values.rows.first()?.content.len(),
        SetExpr::Select(select)
            if !select.projection.iter().any(|item| {
                matches!(
                    item,
                    ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..)
                )
            }) =>
        {
            select.projection.len()
        }
        _ => return None,
    };
    if width == 0 || width >= table.columns.len() {
        return None;
    }
    let mut listed = insert.clone();
    listed.columns = table.columns[..width]
        .iter()
        .map(|column| ast::ObjectName::from(vec![ast::Ident::with_quote('"', &column.name)]))
        .collect();
    Some(listed)
}

/// Table column index of each target column, in the order the statement lists them.
fn target_columns(table: &TableDef, columns: &[ast::ObjectName]) -> Result<Vec<usize>> {
    if columns.is_empty() {
        return Ok((0..table.columns.len()).collect());
    }
    let mut indices = Vec::with_capacity(columns.len());
    for column in columns {
        let name = match column.0.last() {
            Some(ast::ObjectNamePart::Identifier(i)) => ident(i),
            _ => {
                return Err(Error::Syntax {
                    message: format!("invalid column name {column}"),
                });
            }
        };
        let index = table
            .column_index(&name)
            .ok_or_else(|| Error::UndefinedColumn {
                table: table.name.clone(),
                column: name.clone(),
            })?;
        if indices.contains(&index) {
            return Err(Error::DuplicateColumn { name });
        }
        if table.columns[index].identity_always {
            return Err(Error::IdentityAlways { column: name });
        }
        indices.push(index);
    }
    Ok(indices)
}

fn check_supported(insert: &ast::Insert) -> Result<()> {
    if insert.source.is_none() {
        return Err(Error::not_supported("INSERT without VALUES or SELECT"));
    }
    Ok(())
}

pub(crate) async fn execute(
    session: &mut Session,
    insert: &ast::Insert,
    params: &[Option<String>],
) -> Result<Output> {
    check_supported(insert)?;
    let table = target_table(session, insert)?;
    let listed = implicit_columns(&table, insert);
    let insert = listed.as_ref().unwrap_or(insert);
    let targets = target_columns(&table, &insert.columns)?;
    let upsert = match &insert.on {
        Some(on) => Some(crate::upsert::clause(&table, on)?),
        None => None,
    };
    // Literal rows were parsed by the PostgreSQL text parsers already; rows
    // DataFusion computed still need their text forms checked.
    let (batch, parsed) = match literal_rows(&table, &targets, insert, params)? {
        Some(batch) => (batch, targets.as_slice()),
        None => (
            planned_rows(session, &table, insert, params).await?,
            &[][..],
        ),
    };
    let batch = match upsert {
        None => write(session, &table, &targets, batch, parsed).await?,
        Some(upsert) => {
            let rows = fill_defaults(session, &table, &targets, batch).await?;
            let rows = validate(&table, rows, parsed)?;
            match upsert {
                Upsert::Nothing(on_conflict) => {
                    crate::upsert::insert_or_skip(session, &table, rows, on_conflict).await?
                }
                Upsert::Update {
                    index,
                    assignments,
                    selection,
                } => {
                    let target = crate::dml::Target {
                        table: table.clone(),
                        alias: insert
                            .table_alias
                            .as_ref()
                            .map(|a| ident(&a.alias))
                            .unwrap_or_else(|| table.name.clone()),
                    };
                    crate::upsert::insert_or_update(
                        session,
                        &target,
                        rows,
                        &index,
                        &assignments,
                        selection.as_deref(),
                        params,
                    )
                    .await?
                }
            }
        }
    };
    let alias = insert
        .table_alias
        .as_ref()
        .map(|a| ident(&a.alias))
        .unwrap_or_else(|| table.name.clone());
    match &insert.returning {
        Some(items) => {
            let (schema, batches) = returning_as(session, &table, &alias, batch, items).await?;
            Ok(Output::Batches {
                schema,
                batches,
                tag: "INSERT 0".to_owned(),
            })
        }
        None => Ok(Output::Command {
            tag: format!("INSERT 0 {}", batch.num_rows()),
        }),
    }
}

/// Runs an INSERT read by [`crate::fast_insert`]; None when one of its values
/// needs the general path after all (a number an integer column would round,
/// a boolean for a date column...), which then also reports any error.
pub(crate) async fn execute_values(
    session: &mut Session,
    insert: &ValuesInsert<'_>,
) -> Option<Result<Output>> {
    let table = match table_name(&insert.table).and_then(|name| session.table(&name)) {
        Ok(table) => table,
        Err(_) => return None,
    };
    let columns: Vec<ast::ObjectName> = insert
        .columns
        .iter()
        .map(|c| ast::ObjectName(vec![ast::ObjectNamePart::Identifier(c.clone())]))
        .collect();
    let targets = target_columns(&table, &columns).ok()?;
    let no_params: &[Option<String>] = &[];
    let rows = insert.rows.iter().map(|row| (row.as_slice(), no_params));
    let batch = match build_literal_batch(&table, &targets, insert.rows.len(), rows, |v, _| {
        Some(v.reborrow())
    }) {
        Ok(Some(batch)) => batch,
        Ok(None) | Err(Error::Syntax { .. }) => return None,
        Err(error) => return Some(Err(error)),
    };
    Some(
        write(session, &table, &targets, batch, &targets)
            .await
            .map(|batch| Output::Command {
                tag: format!("INSERT 0 {}", batch.num_rows()),
            }),
    )
}

/// Fills defaults, validates (`parsed`: columns already read by the
/// PostgreSQL text parsers) and writes the rows; returns them as stored.
async fn write(
    session: &mut Session,
    table: &Arc<TableDef>,
    targets: &[usize],
    batch: RecordBatch,
    parsed: &[usize],
) -> Result<RecordBatch> {
    let batch = fill_defaults(session, table, targets, batch).await?;
    let batch = validate(table, batch, parsed)?;
    session
        .write_rows(table, vec![batch.clone()], "INSERT")
        .await?;
    Ok(batch)
}

/// The text of a literal or parameter in a VALUES list, as the column's type
/// would read it; None when the expression needs real evaluation.
enum Literal<'a> {
    Null,
    Text(&'a str),
    Owned(String),
    /// A parameter sent in binary as this type.
    Binary(PgType, &'a [u8]),
}

/// Whether PostgreSQL would read numeric literal `n` into a column of
/// `pg_type` exactly as the column's input function reads the same text.
/// Elsewhere (`1.5` into an integer rounds, `1e3` into text prints `1000`)
/// the general path evaluates it.
fn number_reads_as_text(n: &str, pg_type: PgType) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let plain_decimal = || {
        let (whole, fraction) = n.split_once('.').unwrap_or((n, "1"));
        digits(whole) && digits(fraction) && (whole == "0" || !whole.starts_with('0'))
    };
    match pg_type {
        PgType::Int2 | PgType::Int4 | PgType::Int8 => digits(n),
        PgType::Float4 | PgType::Float8 => true,
        PgType::Numeric { .. } | PgType::Text | PgType::Varchar { .. } => plain_decimal(),
        _ => false,
    }
}

/// The literal a value written in a VALUES list gives a column of `pg_type`.
fn literal_of<'a, P: ParamSet + ?Sized>(
    value: &'a RawValue<'a>,
    pg_type: PgType,
    params: &'a P,
) -> Option<Literal<'a>> {
    let text_column = matches!(pg_type, PgType::Text | PgType::Varchar { .. });
    match value {
        RawValue::Null => Some(Literal::Null),
        RawValue::String(s) => Some(Literal::Text(s)),
        RawValue::Number(n) if number_reads_as_text(n, pg_type) => Some(Literal::Text(n)),
        RawValue::NegativeNumber(n) if !text_column && number_reads_as_text(n, pg_type) => {
            Some(Literal::Owned(format!("-{n}")))
        }
        RawValue::Bool(b) if pg_type == PgType::Bool || text_column => {
            Some(Literal::Text(if *b { "true" } else { "false" }))
        }
        RawValue::Parameter(index) => match params.param(index.checked_sub(1)?)? {
            ParamRef::Text(text) => Some(Literal::Text(text)),
            ParamRef::Binary(sent, bytes) => Some(Literal::Binary(sent, bytes)),
            ParamRef::Null => Some(Literal::Null),
        },
        _ => None,
    }
}

/// The text a literal or parameter gives a column of `pg_type` (Some(None)
/// for NULL); None when the expression needs evaluating.
pub(crate) fn literal_text(
    expr: &Expr,
    pg_type: PgType,
    params: &[Option<String>],
) -> Option<Option<String>> {
    let value = raw_value(expr, pg_type)?;
    Some(match literal_of(&value, pg_type, params)? {
        Literal::Null => None,
        Literal::Text(text) => Some(text.to_owned()),
        Literal::Owned(text) => Some(text),
        // Text parameters are all this reads.
        Literal::Binary(..) => return None,
    })
}

/// What a VALUES expression is, when it is a plain literal or parameter.
fn raw_value(expr: &Expr, pg_type: PgType) -> Option<RawValue<'_>> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Null => Some(RawValue::Null),
            Value::SingleQuotedString(s) => Some(RawValue::String(s.into())),
            Value::Number(n, _) => Some(RawValue::Number(n)),
            Value::Boolean(b) => Some(RawValue::Bool(*b)),
            Value::Placeholder(p) => Some(RawValue::Parameter(
                p.strip_prefix('$')?.parse().ok().filter(|i| *i > 0)?,
            )),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(value) => match &value.value {
                Value::Number(n, _) => Some(RawValue::NegativeNumber(n)),
                _ => None,
            },
            _ => None,
        },
        // `'...'::t` and `t '...'` where t is the column's own type read the
        // text with the column's input function, as a bare string does.
        Expr::Cast {
            expr, data_type, ..
        } if pg_type_of_sql(data_type) == Some(pg_type) => match expr.as_ref() {
            Expr::Value(value) => match &value.value {
                Value::SingleQuotedString(s) => Some(RawValue::String(s.into())),
                _ => None,
            },
            _ => None,
        },
        Expr::TypedString(typed) if pg_type_of_sql(&typed.data_type) == Some(pg_type) => {
            match &typed.value.value {
                Value::SingleQuotedString(s) => Some(RawValue::String(s.into())),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Builds the rows of `VALUES` lists made only of literals and parameters.
fn literal_rows(
    table: &TableDef,
    targets: &[usize],
    insert: &ast::Insert,
    params: &[Option<String>],
) -> Result<Option<RecordBatch>> {
    let Some(source) = &insert.source else {
        return Ok(None);
    };
    if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() {
        return Ok(None);
    }
    let SetExpr::Values(values) = source.body.as_ref() else {
        return Ok(None);
    };
    let rows = values
        .rows
        .iter()
        .map(|row| (row.content.as_slice(), params));
    build_literal_batch(table, targets, values.rows.len(), rows, raw_value)
}

/// Runs a plain INSERT whose VALUES is one row of literals and parameters
/// once for each set of parameters in `rows`, as one statement (a pipeline
/// of Executes, see `Session::execute_pipelined`); returns the number of
/// rows written, or None for any other INSERT or when a value needs the
/// general path, which then runs it once per set.
pub(crate) async fn execute_many(
    session: &mut Session,
    insert: &ast::Insert,
    rows: &ParamRows,
) -> Result<Option<u64>> {
    let table = target_table(session, insert)?;
    let listed = implicit_columns(&table, insert);
    let insert = listed.as_ref().unwrap_or(insert);
    let Some(source) = &insert.source else {
        return Ok(None);
    };
    if insert.on.is_some()
        || insert.returning.is_some()
        || source.with.is_some()
        || source.order_by.is_some()
        || source.limit_clause.is_some()
    {
        return Ok(None);
    }
    let SetExpr::Values(values) = source.body.as_ref() else {
        return Ok(None);
    };
    let [row] = values.rows.as_slice() else {
        return Ok(None);
    };
    let targets = target_columns(&table, &insert.columns)?;
    let sets = rows.rows().map(|params| (row.content.as_slice(), params));
    let Some(batch) = build_literal_batch(&table, &targets, rows.len(), sets, raw_value)? else {
        return Ok(None);
    };
    let batch = write(session, &table, &targets, batch, &targets).await?;
    Ok(Some(batch.num_rows() as u64))
}

/// Builds a batch from rows of values, each with the parameters it reads,
/// each value converted by `raw` to a literal; None as soon as one value is
/// not a literal the column reads as text.
fn build_literal_batch<'r, T: 'r, P: ParamSet>(
    table: &TableDef,
    targets: &[usize],
    row_count: usize,
    rows: impl Iterator<Item = (&'r [T], P)>,
    raw: impl for<'v> Fn(&'v T, PgType) -> Option<RawValue<'v>>,
) -> Result<Option<RecordBatch>> {
    let mut builders: Vec<Option<ColumnBuilder>> = Vec::with_capacity(table.columns.len());
    for (index, column) in table.columns.iter().enumerate() {
        builders.push(if targets.contains(&index) {
            Some(ColumnBuilder::new(column.pg_type, row_count)?)
        } else {
            None
        });
    }
    for (row, params) in rows {
        if row.len() != targets.len() {
            return Err(Error::Syntax {
                message: if row.len() > targets.len() {
                    "INSERT has more expressions than target columns".to_owned()
                } else {
                    "INSERT has more target columns than expressions".to_owned()
                },
            });
        }
        for (value, &column_index) in row.iter().zip(targets) {
            let pg_type = table.columns[column_index].pg_type;
            let Some(value) = raw(value, pg_type) else {
                return Ok(None);
            };
            let Some(literal) = literal_of(&value, pg_type, &params) else {
                return Ok(None);
            };
            let Some(builder) = builders[column_index].as_mut() else {
                return Ok(None);
            };
            match literal {
                Literal::Null => builder.append_null(),
                Literal::Text(text) => builder.append_text(text)?,
                Literal::Owned(text) => builder.append_text(&text)?,
                Literal::Binary(sent, bytes) => {
                    tempora_types::binary::append_binary(builder, sent, bytes)?
                }
            }
        }
    }
    let schema = table.arrow_schema();
    let columns: Vec<ArrayRef> = builders
        .into_iter()
        .zip(schema.fields())
        .map(|(builder, field)| match builder {
            Some(mut builder) => builder.finish(),
            None => datafusion::arrow::array::new_null_array(field.data_type(), row_count),
        })
        .collect();
    Ok(Some(RecordBatch::try_new(schema, columns)?))
}

/// Plans the INSERT with DataFusion and runs its source, cast to the table's types.
async fn planned_rows(
    session: &Session,
    table: &TableDef,
    insert: &ast::Insert,
    params: &[Option<String>],
) -> Result<RecordBatch> {
    let mut plain = insert.clone();
    plain.returning = None;
    plain.on = None;
    plain.table_alias = None;
    let plan = session.plan(&Statement::Insert(plain)).await?;
    let plan = session.bind(plan, params)?;
    let LogicalPlan::Dml(dml) = plan else {
        return Err(Error::not_supported("this form of INSERT"));
    };
    let input = Arc::unwrap_or_clone(dml.input);
    check_assignment(table, &input)?;
    let frame = session.context().execute_logical_plan(input).await?;
    let batches = frame.collect().await?;
    let schema = table.arrow_schema();
    let mut conformed = Vec::with_capacity(batches.len());
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    datafusion::arrow::compute::cast(column, field.data_type())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        conformed.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(datafusion::arrow::compute::concat_batches(
        &schema, &conformed,
    )?)
}

/// PostgreSQL's assignment casts: an INSERT converts a value to its column's
/// type only between numeric types, between date and timestamp types, to
/// text, or from a string literal (type unknown until it meets the column).
/// DataFusion's insert planning casts anything it can (an integer to
/// boolean, a text column to integer); this refuses what PostgreSQL refuses.
fn check_assignment(table: &TableDef, input: &LogicalPlan) -> Result<()> {
    use datafusion::logical_expr::{Expr as DfExpr, ExprSchemable};
    let LogicalPlan::Projection(projection) = input else {
        return Ok(());
    };
    let values = match projection.input.as_ref() {
        LogicalPlan::Values(values) => Some(values),
        _ => None,
    };
    for (expr, field) in projection.expr.iter().zip(projection.schema.fields()) {
        let Some(column) = table.columns.iter().find(|c| c.name == *field.name()) else {
            continue;
        };
        // The values converted to the column: under a cast in the projection,
        // or (DataFusion pushes the casts down) under casts in VALUES rows.
        let mut sources: Vec<(&DfExpr, &datafusion::common::DFSchema)> = Vec::new();
        let expr = match expr {
            DfExpr::Alias(alias) => alias.expr.as_ref(),
            other => other,
        };
        match expr {
            DfExpr::Cast(cast) => sources.push((&cast.expr, projection.input.schema())),
            DfExpr::Column(c) => push_values_sources(values, c, &mut sources),
            _ => {}
        }
        for (source, schema) in sources {
            let Ok(source_type) = source.get_type(schema) else {
                continue;
            };
            let literal = matches!(source, DfExpr::Literal(..));
            if !assignable(&source_type, literal, column.pg_type) {
                let source_name = match source {
                    // An integer literal is integer in PostgreSQL when it fits.
                    DfExpr::Literal(ScalarValue::Int64(Some(v)), _)
                        if i32::try_from(*v).is_ok() =>
                    {
                        "integer".to_owned()
                    }
                    _ => PgType::of_arrow(&source_type)
                        .map(|t| t.to_string())
                        .unwrap_or_else(|_| source_type.to_string()),
                };
                return Err(Error::DatatypeMismatch {
                    message: format!(
                        "column \"{}\" is of type {} but expression is of type {source_name}",
                        column.name, column.pg_type
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The casted expressions of VALUES column `column`.
fn push_values_sources<'p>(
    values: Option<&'p datafusion::logical_expr::Values>,
    column: &datafusion::common::Column,
    sources: &mut Vec<(
        &'p datafusion::logical_expr::Expr,
        &'p datafusion::common::DFSchema,
    )>,
) {
    let Some(values) = values else {
        return;
    };
    let Ok(index) = values.schema.index_of_column(column) else {
        return;
    };
    for row in &values.values {
        if let Some(datafusion::logical_expr::Expr::Cast(cast)) = row.get(index) {
            sources.push((&cast.expr, values.schema.as_ref()));
        }
    }
}

/// Whether PostgreSQL assigns a value of `source` to a column of `target`.
pub(crate) fn assignable(source: &DataType, literal: bool, target: PgType) -> bool {
    let target_type = target.arrow_type();
    let temporal = |t: &DataType| matches!(t, DataType::Date32 | DataType::Timestamp(..));
    match source {
        DataType::Null => true,
        _ if matches!(target, PgType::Text | PgType::Varchar { .. }) => true,
        // A string literal is of type unknown until the column's input function reads it.
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => literal,
        s if s.is_numeric() => target_type.is_numeric(),
        s if temporal(s) => temporal(&target_type),
        s => *s == target_type,
    }
}

/// Evaluates the DEFAULT of every column the statement did not list.
pub(crate) async fn fill_defaults(
    session: &Session,
    table: &TableDef,
    targets: &[usize],
    batch: RecordBatch,
) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    if rows == 0 {
        return Ok(batch);
    }
    let mut columns = batch.columns().to_vec();
    for (index, column) in table.columns.iter().enumerate() {
        if targets.contains(&index) {
            continue;
        }
        let Some(default_sql) = &column.default_sql else {
            continue;
        };
        columns[index] = evaluate_default(session, default_sql, column.pg_type, rows).await?;
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// `SELECT CAST(<default> AS type) FROM generate_series(1, rows)`: one value
/// per row, so volatile defaults (nextval, random) differ per row as in PostgreSQL.
pub(crate) async fn evaluate_default(
    session: &Session,
    default_sql: &str,
    pg_type: PgType,
    rows: usize,
) -> Result<ArrayRef> {
    let sql = format!("SELECT {default_sql} FROM generate_series(1, {rows})");
    let statement = crate::session::parse(&sql)?
        .pop()
        .ok_or_else(|| Error::Syntax {
            message: format!("invalid default expression {default_sql}"),
        })?;
    let (_, batches) = session.collect(&statement, &[]).await?;
    let arrays: Vec<ArrayRef> = batches.iter().map(|b| b.column(0).clone()).collect();
    let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
    let values = datafusion::arrow::compute::concat(&refs)?;
    let values = datafusion::arrow::compute::cast(&values, &pg_type.arrow_type())?;
    if values.len() != rows {
        return Err(Error::InvalidParameter {
            message: format!(
                "default expression {default_sql} produced {} values for {rows} rows",
                values.len()
            ),
        });
    }
    Ok(values)
}

/// Enforces what casting alone does not: NOT NULL, varchar lengths, and the
/// text forms of uuid, json and jsonb (jsonb is stored normalised). Columns in
/// `parsed` came through `ColumnBuilder::append_text`, which already did the
/// text checks, so only NOT NULL is checked for them.
pub(crate) fn validate(
    table: &TableDef,
    batch: RecordBatch,
    parsed: &[usize],
) -> Result<RecordBatch> {
    let mut columns = batch.columns().to_vec();
    for (index, column) in table.columns.iter().enumerate() {
        let array = &columns[index];
        if column.not_null && array.null_count() > 0 {
            return Err(Error::NotNull {
                table: table.name.clone(),
                column: column.name.clone(),
            });
        }
        let needs_text_check = matches!(
            column.pg_type,
            PgType::Uuid | PgType::Json | PgType::Jsonb | PgType::Varchar { max_chars: Some(_) }
        );
        if needs_text_check && !parsed.contains(&index) && array.data_type() == &DataType::Utf8 {
            let strings = array.as_string::<i32>();
            let mut builder = ColumnBuilder::new(column.pg_type, strings.len())?;
            for value in strings.iter() {
                match value {
                    Some(text) => builder.append_text(text)?,
                    None => builder.append_null(),
                }
            }
            columns[index] = builder.finish();
        }
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Evaluates RETURNING over the rows just written.
pub(crate) async fn returning(
    session: &Session,
    table: &TableDef,
    batch: RecordBatch,
    items: &[ast::SelectItem],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    returning_as(session, table, &table.name, batch, items).await
}

/// Evaluates RETURNING over rows of `table` that the statement calls `alias`.
pub(crate) async fn returning_as(
    session: &Session,
    table: &TableDef,
    alias: &str,
    batch: RecordBatch,
    items: &[ast::SelectItem],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let context = SessionContext::new();
    for function in ["time_bucket"] {
        if let Ok(udf) = datafusion::execution::FunctionRegistry::udf(session.context(), function) {
            context.register_udf(ScalarUDF::clone(&udf));
        }
    }
    context.register_batch(alias, batch)?;
    let from = vec![ast::TableWithJoins {
        relation: ast::TableFactor::Table {
            name: ast::ObjectName::from(vec![ast::Ident::with_quote('"', alias.to_owned())]),
            alias: None,
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
    let query = query_of(select_of(items.to_vec(), from));
    let plan = context
        .state()
        .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
            Statement::Query(Box::new(query)),
        )))
        .await?;
    let frame = context.execute_logical_plan(plan).await?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    // Keep the PostgreSQL identity (uuid, jsonb) of returned table columns.
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(
            |field| match table.columns.iter().find(|c| &c.name == field.name()) {
                Some(column) if column.pg_type.arrow_type() == *field.data_type() => {
                    Arc::new(column.pg_type.arrow_field(field.name(), true))
                }
                _ => field.clone(),
            },
        )
        .collect();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    let batches = batches
        .into_iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// Parameter types and RETURNING columns of a prepared INSERT.
pub(crate) async fn describe(
    session: &mut Session,
    insert: &ast::Insert,
    declared: &[Option<PgType>],
) -> Result<(Vec<PgType>, Option<SchemaRef>)> {
    check_supported(insert)?;
    let table = target_table(session, insert)?;
    let listed = implicit_columns(&table, insert);
    let insert = listed.as_ref().unwrap_or(insert);
    let targets = target_columns(&table, &insert.columns)?;
    let mut types: Vec<Option<PgType>> = declared.to_vec();
    fn set(types: &mut Vec<Option<PgType>>, index: usize, pg_type: PgType) {
        if types.len() <= index {
            types.resize(index + 1, None);
        }
        if types[index].is_none() {
            types[index] = Some(pg_type);
        }
    }
    // Placeholders that stand alone in a VALUES position take that column's type.
    if let Some(source) = &insert.source
        && let SetExpr::Values(values) = source.body.as_ref()
    {
        for row in &values.rows {
            for (expr, &column) in row.content.iter().zip(&targets) {
                if let Expr::Value(value) = expr
                    && let Value::Placeholder(p) = &value.value
                    && let Ok(n) = p.trim_start_matches('$').parse::<usize>()
                    && n >= 1
                {
                    set(&mut types, n - 1, table.columns[column].pg_type);
                }
            }
        }
    }
    if types.iter().any(Option::is_none) || types.is_empty() {
        let mut plain = insert.clone();
        plain.returning = None;
        if let Ok(plan) = session.plan(&Statement::Insert(plain)).await {
            for (name, data_type) in plan.get_parameter_types()? {
                if let (Ok(n), Some(data_type)) =
                    (name.trim_start_matches('$').parse::<usize>(), data_type)
                    && n >= 1
                    && let Ok(pg_type) = PgType::of_arrow(&data_type)
                {
                    set(&mut types, n - 1, pg_type);
                }
            }
        }
    }
    let types = types
        .into_iter()
        .map(|t| t.unwrap_or(PgType::Text))
        .collect();
    let returning_schema = match &insert.returning {
        Some(items) => {
            let empty = RecordBatch::new_empty(table.arrow_schema());
            Some(returning(session, &table, empty, items).await?.0)
        }
        None => None,
    };
    Ok((types, returning_schema))
}
