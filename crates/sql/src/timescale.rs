//! TimescaleDB's API functions called with SELECT: `create_hypertable`,
//! `set_chunk_time_interval`, `show_chunks`, `drop_chunks`.
//!
//! They change the catalog, so they run here rather than as DataFusion
//! functions; arguments are bound by position and by name (`=>`) the way
//! PostgreSQL binds them, then evaluated as constant expressions.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem, SetExpr,
};

use tempora_catalog::{CHUNK_SCHEMA, ChunkDef, DEFAULT_SCHEMA, HypertableDef, TableDef};
use tempora_types::PgType;
use tempora_types::datetime::{MICROS_PER_DAY, interval_to_micros};

use crate::names::table_name_from_text;
use crate::session::{Output, Session};
use crate::{Error, Result};

const API_FUNCTIONS: [&str; 4] = [
    "create_hypertable",
    "set_chunk_time_interval",
    "show_chunks",
    "drop_chunks",
];

/// TimescaleDB's default chunk interval for time columns: 7 days.
const DEFAULT_CHUNK_INTERVAL_MICROS: i64 = 7 * MICROS_PER_DAY;

/// A recognised API call.
#[derive(Debug, Clone)]
pub(crate) struct ApiCall {
    pub(crate) name: String,
    args: Vec<FunctionArg>,
    /// `SELECT * FROM f(...)` rather than `SELECT f(...)`: composite results expand to columns.
    in_from: bool,
    /// The output column name (`SELECT create_hypertable(...) AS x`).
    alias: Option<String>,
}

impl ApiCall {
    /// The table the call is about: its first argument, when that is a
    /// string constant (the `relation` / `hypertable` argument).
    pub(crate) fn relation(&self) -> Option<String> {
        let expr = match self.args.first()? {
            FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(expr)) => expr,
            FunctionArg::Named {
                arg: ast::FunctionArgExpr::Expr(expr),
                ..
            } => expr,
            _ => return None,
        };
        crate::names::table_name_from_text(&text_argument(expr)?).ok()
    }
}

fn function_args(arguments: &FunctionArguments) -> Option<Vec<FunctionArg>> {
    match arguments {
        FunctionArguments::List(list) => Some(list.args.clone()),
        FunctionArguments::None => Some(Vec::new()),
        FunctionArguments::Subquery(_) => None,
    }
}

fn api_name(name: &ast::ObjectName) -> Option<String> {
    let text = name.to_string().to_ascii_lowercase();
    let text = text.trim_start_matches("public.");
    API_FUNCTIONS.contains(&text).then(|| text.to_owned())
}

/// Recognises `SELECT f(...)` and `SELECT * FROM f(...)` for the API functions.
pub(crate) fn api_call(query: &ast::Query) -> Option<ApiCall> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    if select.projection.len() != 1 || select.selection.is_some() {
        return None;
    }
    match (select.from.as_slice(), &select.projection[0]) {
        ([], SelectItem::UnnamedExpr(Expr::Function(function))) => Some(ApiCall {
            name: api_name(&function.name)?,
            args: function_args(&function.args)?,
            in_from: false,
            alias: None,
        }),
        (
            [],
            SelectItem::ExprWithAlias {
                expr: Expr::Function(function),
                alias,
            },
        ) => Some(ApiCall {
            name: api_name(&function.name)?,
            args: function_args(&function.args)?,
            in_from: false,
            alias: Some(crate::names::ident(alias)),
        }),
        ([from], SelectItem::Wildcard(_)) if from.joins.is_empty() => match &from.relation {
            ast::TableFactor::Table {
                name,
                args: Some(args),
                ..
            } => Some(ApiCall {
                name: api_name(name)?,
                args: args.args.clone(),
                in_from: true,
                alias: None,
            }),
            ast::TableFactor::Function { name, args, .. } => Some(ApiCall {
                name: api_name(name)?,
                args: args.clone(),
                in_from: true,
                alias: None,
            }),
            _ => None,
        },
        _ => None,
    }
}

/// Binds call arguments to parameter names: positional first, then `name => value`.
fn bind_args(call: &ApiCall, parameters: &[&str]) -> Result<Vec<Option<Expr>>> {
    let mut bound: Vec<Option<Expr>> = vec![None; parameters.len()];
    let mut position = 0;
    let mut named_seen = false;
    for arg in &call.args {
        let (name, expr) = match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => {
                if named_seen {
                    return Err(Error::Syntax {
                        message: "positional argument cannot follow named argument".to_owned(),
                    });
                }
                (None, expr.clone())
            }
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(expr),
                ..
            } => (Some(crate::names::ident(name)), expr.clone()),
            FunctionArg::ExprNamed {
                name: Expr::Identifier(name),
                arg: FunctionArgExpr::Expr(expr),
                ..
            } => (Some(crate::names::ident(name)), expr.clone()),
            other => {
                return Err(Error::Syntax {
                    message: format!("invalid argument {other} to {}", call.name),
                });
            }
        };
        let index = match name {
            None => {
                let index = position;
                position += 1;
                if index >= parameters.len() {
                    return Err(Error::UndefinedFunction {
                        signature: format!("{} with {} arguments", call.name, call.args.len()),
                    });
                }
                index
            }
            Some(name) => {
                named_seen = true;
                parameters.iter().position(|p| *p == name).ok_or_else(|| {
                    Error::UndefinedFunction {
                        signature: format!("{}(..., {name} => ...)", call.name),
                    }
                })?
            }
        };
        if bound[index].is_some() {
            return Err(Error::Syntax {
                message: format!(
                    "argument \"{}\" specified more than once",
                    parameters[index]
                ),
            });
        }
        bound[index] = Some(expr);
    }
    Ok(bound)
}

/// A string argument given as a literal, possibly cast (`'t'::regclass`).
fn text_argument(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(value) => match &value.value {
            ast::Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        Expr::Cast { expr, .. } => text_argument(expr),
        Expr::Nested(expr) => text_argument(expr),
        _ => None,
    }
}

async fn bool_argument(
    session: &Session,
    expr: &Option<Expr>,
    params: &[Option<String>],
) -> Result<bool> {
    match expr {
        None => Ok(false),
        Some(expr) => match session.evaluate(expr, params).await? {
            ScalarValue::Boolean(Some(b)) => Ok(b),
            ScalarValue::Utf8(Some(s)) => Ok(tempora_types::text::parse_bool(&s)?),
            other => Err(Error::DatatypeMismatch {
                message: format!("argument must be boolean, not {}", other.data_type()),
            }),
        },
    }
}

fn table_argument(session: &Session, expr: &Option<Expr>, function: &str) -> Result<Arc<TableDef>> {
    let expr = expr.as_ref().ok_or_else(|| Error::InvalidParameter {
        message: format!("{function}: relation cannot be NULL"),
    })?;
    let name = text_argument(expr).ok_or_else(|| Error::DatatypeMismatch {
        message: format!("{function}: relation must be a table name string"),
    })?;
    let name = table_name_from_text(&name)?;
    session.table(&name)
}

/// A chunk interval argument in the dimension's units.
async fn interval_argument(
    session: &Session,
    expr: &Expr,
    integer_time: bool,
    params: &[Option<String>],
) -> Result<i64> {
    let value = session.evaluate(expr, params).await?;
    let micros = match value {
        ScalarValue::IntervalMonthDayNano(Some(interval)) if !integer_time => {
            interval_to_micros(interval)
        }
        ScalarValue::Int16(Some(v)) => v as i64,
        ScalarValue::Int32(Some(v)) => v as i64,
        ScalarValue::Int64(Some(v)) => v,
        ScalarValue::IntervalMonthDayNano(Some(_)) => {
            return Err(Error::InvalidParameter {
                message: "invalid interval type for integer dimension: use an integer chunk_time_interval".to_owned(),
            });
        }
        other => {
            return Err(Error::InvalidParameter {
                message: format!("invalid chunk_time_interval: {other}"),
            });
        }
    };
    if micros <= 0 {
        return Err(Error::InvalidParameter {
            message: "invalid interval: must be between 1 and 9223372036854775807".to_owned(),
        });
    }
    Ok(micros)
}

pub(crate) async fn execute(
    session: &mut Session,
    call: ApiCall,
    params: &[Option<String>],
) -> Result<Output> {
    match call.name.as_str() {
        "create_hypertable" => create_hypertable(session, &call, params).await,
        "set_chunk_time_interval" => set_chunk_time_interval(session, &call, params).await,
        "show_chunks" => chunks_matching(session, &call, params, false).await,
        "drop_chunks" => chunks_matching(session, &call, params, true).await,
        other => Err(Error::UndefinedFunction {
            signature: format!("{other}()"),
        }),
    }
}

/// `by_range('time', interval)`: the new form's dimension.
fn by_range(expr: &Expr) -> Option<(Option<String>, Option<Expr>)> {
    let Expr::Function(function) = expr else {
        return None;
    };
    if !function.name.to_string().eq_ignore_ascii_case("by_range") {
        return None;
    }
    let args = function_args(&function.args)?;
    let mut column = None;
    let mut interval = None;
    for (index, arg) in args.iter().enumerate() {
        let (name, expr) = match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => (None, e),
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(e),
                ..
            } => (Some(name.value.to_lowercase()), e),
            _ => return None,
        };
        match (name.as_deref(), index) {
            (Some("column_name"), _) | (None, 0) => column = text_argument(expr),
            (Some("partition_interval"), _) | (None, 1) => interval = Some(expr.clone()),
            _ => return None,
        }
    }
    Some((column, interval))
}

async fn create_hypertable(
    session: &mut Session,
    call: &ApiCall,
    params: &[Option<String>],
) -> Result<Output> {
    const OLD: [&str; 14] = [
        "relation",
        "time_column_name",
        "partitioning_column",
        "number_partitions",
        "associated_schema_name",
        "associated_table_prefix",
        "chunk_time_interval",
        "create_default_indexes",
        "if_not_exists",
        "partitioning_func",
        "migrate_data",
        "chunk_target_size",
        "chunk_sizing_func",
        "time_partitioning_func",
    ];
    const NEW: [&str; 5] = [
        "relation",
        "dimension",
        "create_default_indexes",
        "if_not_exists",
        "migrate_data",
    ];
    let second = call.args.get(1).and_then(|arg| match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
        FunctionArg::Named {
            arg: FunctionArgExpr::Expr(e),
            ..
        } => Some(e),
        _ => None,
    });
    let new_form = second.and_then(by_range).is_some();
    let (table, column_name, interval_expr, if_not_exists, migrate_data) =
        if new_form {
            let bound = bind_args(call, &NEW)?;
            let table = table_argument(session, &bound[0], "create_hypertable")?;
            let (column, interval) = bound[1].as_ref().and_then(by_range).ok_or_else(|| {
                Error::InvalidParameter {
                message:
                    "create_hypertable: dimension must be by_range(column_name, partition_interval)"
                        .to_owned(),
            }
            })?;
            let column = column.ok_or_else(|| Error::InvalidParameter {
                message: "by_range: column_name must be a string".to_owned(),
            })?;
            (
                table,
                column,
                interval,
                bool_argument(session, &bound[3], params).await?,
                bool_argument(session, &bound[4], params).await?,
            )
        } else {
            let bound = bind_args(call, &OLD)?;
            let table = table_argument(session, &bound[0], "create_hypertable")?;
            let column = bound[1].as_ref().and_then(text_argument).ok_or_else(|| {
                Error::InvalidParameter {
                    message: "create_hypertable: time_column_name must be a column name string"
                        .to_owned(),
                }
            })?;
            if bound[2].is_some() || bound[3].is_some() {
                return Err(Error::not_supported(
                    "space partitioning (partitioning_column, number_partitions)",
                ));
            }
            for (index, name) in [
                (9, "partitioning_func"),
                (11, "chunk_target_size"),
                (12, "chunk_sizing_func"),
                (13, "time_partitioning_func"),
            ] {
                if bound[index].is_some() {
                    return Err(Error::not_supported(format!(
                        "create_hypertable argument {name}"
                    )));
                }
            }
            (
                table,
                column,
                bound[6].clone(),
                bool_argument(session, &bound[8], params).await?,
                bool_argument(session, &bound[10], params).await?,
            )
        };
    let column_name = column_name.trim_matches('"').to_owned();

    if let Some(existing) = &table.hypertable {
        if if_not_exists {
            session.notice(format!(
                "table \"{}\" is already a hypertable, skipping",
                table.name
            ));
            return create_result(call, new_form, existing.hypertable_id, &table.name, false);
        }
        return Err(Error::AlreadyHypertable {
            name: table.name.clone(),
        });
    }
    let column_index = table
        .column_index(&column_name)
        .ok_or_else(|| Error::UndefinedColumn {
            table: table.name.clone(),
            column: column_name.clone(),
        })?;
    let time_type = table.columns[column_index].pg_type;
    let integer_time = time_type.is_integer();
    if !(integer_time
        || matches!(
            time_type,
            PgType::Timestamptz | PgType::Timestamp | PgType::Date
        ))
    {
        return Err(Error::DatatypeMismatch {
            message: format!("invalid type for dimension \"{column_name}\""),
        });
    }
    let chunk_interval = match &interval_expr {
        Some(expr) => interval_argument(session, expr, integer_time, params).await?,
        None if integer_time => {
            return Err(Error::InvalidParameter {
                message: "integer dimensions require an explicit interval".to_owned(),
            });
        }
        None => DEFAULT_CHUNK_INTERVAL_MICROS,
    };
    let store = session.engine().store().clone();
    if !migrate_data && store.row_count(table.id) > 0 {
        return Err(Error::TableNotEmpty {
            name: table.name.clone(),
        });
    }
    let hypertable_id = store
        .catalog()
        .transact(|txn| Ok(txn.allocate_hypertable_id()))?;
    let mut new_table = (*table).clone();
    // The time column of a hypertable is NOT NULL, as TimescaleDB makes it.
    new_table.columns[column_index].not_null = true;
    new_table.hypertable = Some(HypertableDef {
        hypertable_id,
        time_column: column_name,
        chunk_interval,
        integer_time,
    });
    let mark = session.ddl_mark();
    let result = tokio::task::spawn_blocking(move || store.redefine_table(new_table, mark))
        .await
        .map_err(|e| Error::not_supported(format!("create_hypertable task failed: {e}")))?;
    if let Err(tempora_storage::Error::NullTime { column }) = &result {
        return Err(Error::NotNull {
            table: table.name.clone(),
            column: column.clone(),
        });
    }
    result?;
    create_result(call, new_form, hypertable_id, &table.name, true)
}

/// The columns a call returns, for Describe in the extended protocol.
pub(crate) fn result_schema(call: &ApiCall) -> SchemaRef {
    let new_form = call.name == "create_hypertable"
        && call.args.get(1).is_some_and(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
            | FunctionArg::Named {
                arg: FunctionArgExpr::Expr(e),
                ..
            } => by_range(e).is_some(),
            _ => false,
        });
    if call.name == "create_hypertable" && call.in_from {
        return create_schema(new_form);
    }
    crate::session::text_schema(&call.alias.clone().unwrap_or_else(|| call.name.clone()))
}

fn create_schema(new_form: bool) -> SchemaRef {
    let mut fields = vec![PgType::Int4.arrow_field("hypertable_id", true)];
    if !new_form {
        fields.push(PgType::Text.arrow_field("schema_name", true));
        fields.push(PgType::Text.arrow_field("table_name", true));
    }
    fields.push(PgType::Bool.arrow_field("created", true));
    Arc::new(Schema::new(fields))
}

/// `(hypertable_id, schema_name, table_name, created)` for the old form,
/// `(hypertable_id, created)` for `by_range`, as a record or expanded columns.
fn create_result(
    call: &ApiCall,
    new_form: bool,
    hypertable_id: u32,
    table: &str,
    created: bool,
) -> Result<Output> {
    if call.in_from {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(Int32Array::from(vec![hypertable_id as i32]))];
        if !new_form {
            columns.push(Arc::new(StringArray::from(vec![DEFAULT_SCHEMA])));
            columns.push(Arc::new(StringArray::from(vec![table])));
        }
        columns.push(Arc::new(BooleanArray::from(vec![created])));
        let schema = create_schema(new_form);
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        return Ok(Output::Batches {
            schema,
            batches: vec![batch],
            tag: "SELECT".to_owned(),
        });
    }
    let created = if created { "t" } else { "f" };
    let record = if new_form {
        format!("({hypertable_id},{created})")
    } else {
        format!("({hypertable_id},{DEFAULT_SCHEMA},{table},{created})")
    };
    single_text(call, record)
}

fn single_text(call: &ApiCall, value: String) -> Result<Output> {
    let name = call.alias.clone().unwrap_or_else(|| call.name.clone());
    crate::session::text_rows(&name, vec![value], "SELECT")
}

async fn set_chunk_time_interval(
    session: &mut Session,
    call: &ApiCall,
    params: &[Option<String>],
) -> Result<Output> {
    let bound = bind_args(
        call,
        &["hypertable", "chunk_time_interval", "dimension_name"],
    )?;
    let table = table_argument(session, &bound[0], "set_chunk_time_interval")?;
    let Some(hypertable) = &table.hypertable else {
        return Err(Error::NotHypertable {
            name: table.name.clone(),
        });
    };
    let expr = bound[1].as_ref().ok_or_else(|| Error::InvalidParameter {
        message: "set_chunk_time_interval: chunk_time_interval cannot be NULL".to_owned(),
    })?;
    let interval = interval_argument(session, expr, hypertable.integer_time, params).await?;
    session.catalog_transact(|txn| {
        let mut updated = (*table).clone();
        if let Some(h) = updated.hypertable.as_mut() {
            h.chunk_interval = interval;
        }
        txn.put_table(updated);
        Ok(())
    })?;
    single_text(call, String::new())
}

/// A chunk boundary argument (`older_than`, `newer_than`) in dimension units.
async fn boundary(
    session: &Session,
    expr: &Expr,
    hypertable: &HypertableDef,
    params: &[Option<String>],
) -> Result<i64> {
    let value = session.evaluate(expr, params).await?;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or_default()
    };
    let integer = |v: i64| -> Result<i64> {
        if hypertable.integer_time {
            Ok(v)
        } else {
            Err(Error::InvalidParameter {
                message: "invalid time argument type \"integer\": use an interval or a timestamp"
                    .to_owned(),
            })
        }
    };
    match value {
        ScalarValue::IntervalMonthDayNano(Some(interval)) if !hypertable.integer_time => {
            Ok(now() - interval_to_micros(interval))
        }
        ScalarValue::TimestampMicrosecond(Some(v), _) => Ok(v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Ok(v.div_euclid(1_000)),
        ScalarValue::TimestampMillisecond(Some(v), _) => Ok(v * 1_000),
        ScalarValue::TimestampSecond(Some(v), _) => Ok(v * 1_000_000),
        ScalarValue::Date32(Some(days)) => Ok(days as i64 * MICROS_PER_DAY),
        ScalarValue::Utf8(Some(text)) => Ok(tempora_types::datetime::parse_timestamptz(&text)?),
        ScalarValue::Int16(Some(v)) => integer(v as i64),
        ScalarValue::Int32(Some(v)) => integer(v as i64),
        ScalarValue::Int64(Some(v)) => integer(v),
        other => Err(Error::InvalidParameter {
            message: format!("invalid time argument: {other}"),
        }),
    }
}

async fn chunks_matching(
    session: &mut Session,
    call: &ApiCall,
    params: &[Option<String>],
    drop: bool,
) -> Result<Output> {
    let parameters: &[&str] = if drop {
        &[
            "relation",
            "older_than",
            "newer_than",
            "verbose",
            "created_before",
            "created_after",
        ]
    } else {
        &[
            "relation",
            "older_than",
            "newer_than",
            "created_before",
            "created_after",
        ]
    };
    let bound = bind_args(call, parameters)?;
    let function = call.name.as_str();
    let table = table_argument(session, &bound[0], function)?;
    let Some(hypertable) = table.hypertable.clone() else {
        return Err(Error::NotHypertable {
            name: table.name.clone(),
        });
    };
    let created_index = if drop { 4 } else { 3 };
    if bound[created_index].is_some() || bound[created_index + 1].is_some() {
        return Err(Error::not_supported(format!(
            "{function} by creation time (created_before, created_after)"
        )));
    }
    let older_than = match &bound[1] {
        Some(expr) => Some(boundary(session, expr, &hypertable, params).await?),
        None => None,
    };
    let newer_than = match &bound[2] {
        Some(expr) => Some(boundary(session, expr, &hypertable, params).await?),
        None => None,
    };
    if drop && older_than.is_none() && newer_than.is_none() {
        return Err(Error::InvalidParameter {
            message: "invalid time range for dropping chunks: at least one of older_than and newer_than must be provided".to_owned(),
        });
    }
    let store = session.engine().store().clone();
    let mut chunks: Vec<Arc<ChunkDef>> = store
        .catalog()
        .snapshot()
        .chunks_of(table.id)
        .into_iter()
        .filter(|c| {
            older_than.is_none_or(|t| c.range_end <= t)
                && newer_than.is_none_or(|t| c.range_start >= t)
        })
        .collect();
    // TimescaleDB lists chunks in creation order.
    chunks.sort_by_key(|c| c.id);
    let names: Vec<String> = chunks
        .iter()
        .map(|c| format!("{CHUNK_SCHEMA}.{}", c.table_name(hypertable.hypertable_id)))
        .collect();
    if drop && !chunks.is_empty() {
        let ids: Vec<u64> = chunks.iter().map(|c| c.id).collect();
        let mark = session.ddl_mark();
        tokio::task::spawn_blocking(move || store.drop_chunks(&ids, mark))
            .await
            .map_err(|e| Error::not_supported(format!("drop_chunks task failed: {e}")))??;
    }
    let name = call.alias.clone().unwrap_or_else(|| call.name.clone());
    crate::session::text_rows(&name, names, "SELECT")
}
