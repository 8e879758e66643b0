//! Point changes: an UPDATE or DELETE whose WHERE names one row by a unique
//! key (`WHERE id = 5`, `WHERE device = 'a' AND time = '...'`).
//!
//! The store's key index finds the row and the store reads just that row,
//! so the statement scans no chunk. The scan query then runs over that one
//! row (bound as [`POINT_ROWS`]) without its WHERE, which the key lookup
//! has already decided. What is left of the query is a projection: the row
//! id, the columns and the SET expressions. DataFusion plans it; the
//! session keeps the planned expressions ([`PointPlans`]) and evaluates
//! them on the next row the same statement text fetches, since planning
//! costs more than the change itself. Only expressions that mean the same
//! on every run are kept: column references, literals, operators and
//! casts, never a function (`now()` is folded to a constant by planning).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use datafusion::sql::sqlparser::ast::{self, Expr, SelectItem, Statement};

use tempora_catalog::{ChunkId, ROWID_COLUMN, TableDef};
use tempora_types::PgType;
use tempora_types::text::ColumnBuilder;

use crate::dml::Target;
use crate::insert;
use crate::names::ident;
use crate::session::Session;
use crate::{Error, Result};

/// The name a point change binds the row it fetched to.
const POINT_ROWS: &str = "__tempora_point_rows";

/// Planned point projections a session keeps, at most this many.
const PLANS_KEPT: usize = 64;

/// A change to at most one row named by a unique key.
pub(crate) struct PointScan {
    /// The scan query reading the fetched row instead of the table.
    scan: Statement,
    index: String,
    /// The key's values, one row, in columns named as the table's.
    key: RecordBatch,
    /// Whether the planned projection may be kept and run again.
    reusable: bool,
    /// Whether the projection reads parameters, which planning folds in
    /// as constants: then a kept plan is only for the same values.
    reads_params: bool,
}

/// The point form of a scan, when its WHERE is exactly `column = value`
/// terms over the columns of one unique index, each value a literal or
/// parameter its column reads as PostgreSQL would compare it; None for
/// anything else (which the scan then reads as always).
pub(crate) fn scan(
    target: &Target,
    scan: &Statement,
    from: &[ast::TableWithJoins],
    selection: Option<&Expr>,
    params: &[Option<String>],
) -> Option<PointScan> {
    if !from.is_empty() {
        return None;
    }
    let mut terms = Vec::new();
    conjuncts(selection?, &mut terms);
    let mut values: Vec<(String, &Expr)> = Vec::new();
    for term in terms {
        let Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Eq,
            right,
        } = term
        else {
            return None;
        };
        let (column, value) = match (term_column(target, left), term_column(target, right)) {
            (Some(column), None) => (column, right.as_ref()),
            (None, Some(column)) => (column, left.as_ref()),
            _ => return None,
        };
        if values.iter().any(|(c, _)| *c == column) {
            return None;
        }
        values.push((column, value));
    }
    let table = &target.table;
    let index = table.unique_indexes().find(|index| {
        index.columns.len() == values.len()
            && index
                .columns
                .iter()
                .all(|c| values.iter().any(|(v, _)| v == c))
    })?;
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for name in &index.columns {
        let pg_type = table.columns[table.column_index(name)?].pg_type;
        let (_, value) = values.iter().find(|(c, _)| c == name)?;
        // A number compared with a text column is an error in PostgreSQL,
        // not a text key: leave it to the general path.
        if let Expr::Value(v) = value
            && matches!(v.value, ast::Value::Number(..))
            && !matches!(
                pg_type,
                PgType::Int2
                    | PgType::Int4
                    | PgType::Int8
                    | PgType::Float4
                    | PgType::Float8
                    | PgType::Numeric { .. }
            )
        {
            return None;
        }
        let text = insert::literal_text(value, pg_type, params)??;
        let mut builder = ColumnBuilder::new(pg_type, 1).ok()?;
        builder.append_text(&text).ok()?;
        fields.push(pg_type.arrow_field(name, true));
        columns.push(builder.finish());
    }
    let key = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).ok()?;
    let mut scan = scan.clone();
    let Statement::Query(query) = &mut scan else {
        return None;
    };
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let ast::TableFactor::Table { name, .. } = &mut select.from.first_mut()?.relation else {
        return None;
    };
    *name = ast::ObjectName::from(vec![ast::Ident::with_quote('"', POINT_ROWS)]);
    // The key lookup has decided the WHERE: the fetched row, if any, is
    // the one row whose key columns equal the values.
    select.selection = None;
    let reusable = select.projection.iter().all(|item| match item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
            same_on_every_run(expr)
        }
        _ => false,
    });
    let reads_params = select.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => reads_param(expr),
        _ => true,
    });
    Some(PointScan {
        scan,
        index: index.name.clone(),
        key,
        reusable,
        reads_params,
    })
}

/// The column a WHERE term names, given the target's alias.
fn term_column(target: &Target, expr: &Expr) -> Option<String> {
    let name = match expr {
        Expr::Identifier(i) => ident(i),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [qualifier, column] if ident(qualifier) == target.alias => ident(column),
            _ => return None,
        },
        _ => return None,
    };
    target.table.column_index(&name).map(|_| name)
}

fn conjuncts<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other),
    }
}

/// Whether planning `expr` gives the same expression whenever it runs:
/// columns, literals, operators and casts to non-temporal types. A cast of
/// text to a time (`'now'::timestamptz`) and every function are not.
fn same_on_every_run(expr: &Expr) -> bool {
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Value(_) => true,
        Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => same_on_every_run(inner),
        Expr::BinaryOp { left, right, .. } => same_on_every_run(left) && same_on_every_run(right),
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } => {
            let name = data_type.to_string().to_ascii_lowercase();
            !["time", "date", "interval"]
                .iter()
                .any(|word| name.contains(word))
                && same_on_every_run(inner)
        }
        _ => false,
    }
}

/// Whether `expr` (one [`same_on_every_run`] accepts) reads a parameter.
fn reads_param(expr: &Expr) -> bool {
    match expr {
        Expr::Value(v) => matches!(v.value, ast::Value::Placeholder(_)),
        Expr::Nested(inner)
        | Expr::UnaryOp { expr: inner, .. }
        | Expr::Cast { expr: inner, .. } => reads_param(inner),
        Expr::BinaryOp { left, right, .. } => reads_param(left) || reads_param(right),
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => false,
        _ => true,
    }
}

/// Reads the row a point scan names, through the store's key index, and
/// runs the scan's projection over it; with the row's chunk, if it found one.
pub(crate) async fn read(
    session: &mut Session,
    table: &TableDef,
    point: &PointScan,
    params: &[Option<String>],
) -> Result<(SchemaRef, Vec<RecordBatch>, Option<ChunkId>)> {
    let storage = table.storage_schema();
    let cache_key = point.reusable.then(|| {
        let params: &[Option<String>] = if point.reads_params { params } else { &[] };
        format!("{}\0{params:?}\0{:?}", point.scan, storage.fields())
    });
    let kept = cache_key
        .as_ref()
        .and_then(|key| session.point_plans.plans.get(key))
        .cloned();
    // A kept projection says which columns it reads: only those are
    // fetched (a DELETE reads the key and time columns, not the row).
    let columns = kept.as_ref().map(|projection| {
        let mut columns: Vec<usize> = projection
            .input
            .fields()
            .iter()
            .filter_map(|field| storage.index_of(field.name()).ok())
            .collect();
        columns.sort_unstable();
        columns
    });
    // A projection reading only the key and the row id (a DELETE's, when
    // the key is the table's one unique key) needs no read of the row:
    // the lookup returns a row live as of the latest commit, and a commit
    // deleting it meanwhile makes this one conflict and read again.
    let from_key = kept
        .as_ref()
        .and_then(|projection| key_row_schema(&projection.input, &point.key));
    let store = session.engine().store().clone();
    let (table_id, index, key) = (table.id, point.index.clone(), point.key.clone());
    let found = crate::blocking::run(
        "key lookup",
        move || -> tempora_storage::Result<Option<(RecordBatch, ChunkId)>> {
            let holder = store.lookup_keys(table_id, &index, &key)?;
            let Some(row) = holder.first().copied().flatten() else {
                return Ok(None);
            };
            let rows = match from_key {
                Some(schema) => key_row(schema, &key, row.rowid)?,
                None => store.fetch_rows(table_id, row.chunk, &[row.rowid], columns.as_deref())?,
            };
            Ok(Some((rows, row.chunk)))
        },
    )
    .await??;
    let (rows, chunk) = match found {
        // The row may be gone since the key lookup (deleted meanwhile).
        Some((rows, chunk)) if rows.num_rows() > 0 => (rows, Some(chunk)),
        _ => (RecordBatch::new_empty(storage), None),
    };
    if let Some(projection) = kept {
        let projected = projection.apply(&rows)?;
        return Ok((projected.schema(), vec![projected], chunk));
    }
    session.reads.bind_rows(POINT_ROWS, rows.clone());
    let plan = session.physical_plan(&point.scan, params).await;
    session.reads.unbind_rows(POINT_ROWS);
    let plan = plan?;
    match Projection::of(&plan) {
        Some(projection) => {
            let projected = projection.apply(&rows)?;
            if let Some(key) = cache_key {
                let plans = &mut session.point_plans.plans;
                if plans.len() >= PLANS_KEPT {
                    plans.clear();
                }
                plans.insert(key, Arc::new(projection));
            }
            Ok((projected.schema(), vec![projected], chunk))
        }
        // A plan of another shape runs as planned, the row bound again.
        None => {
            session.reads.bind_rows(POINT_ROWS, rows);
            let batches = session.run_plan(plan.clone()).await;
            session.reads.unbind_rows(POINT_ROWS);
            Ok((plan.schema(), batches?, chunk))
        }
    }
}

/// The schema of the row a projection reading `input` gets from the key
/// alone: `input` itself, if each of its columns is the row id or a column
/// of `key` of the same type.
fn key_row_schema(input: &SchemaRef, key: &RecordBatch) -> Option<SchemaRef> {
    input
        .fields()
        .iter()
        .all(|field| {
            if field.name() == ROWID_COLUMN {
                return field.data_type() == &DataType::Int64;
            }
            key.column_by_name(field.name())
                .is_some_and(|column| column.data_type() == field.data_type())
        })
        .then(|| input.clone())
}

/// The row a key names, in `schema` (see [`key_row_schema`]).
fn key_row(
    schema: SchemaRef,
    key: &RecordBatch,
    rowid: i64,
) -> tempora_storage::Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match key.column_by_name(field.name()) {
            Some(column) if field.name() != ROWID_COLUMN => column.clone(),
            _ => Arc::new(Int64Array::from(vec![rowid])) as ArrayRef,
        })
        .collect();
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The point projections a session has planned, by statement text,
/// parameters (when the projection reads them) and storage schema.
#[derive(Default)]
pub(crate) struct PointPlans {
    plans: HashMap<String, Arc<Projection>>,
}

/// A planned point scan: expressions over the fetched row's columns.
struct Projection {
    /// The columns the expressions read, by name, in their order.
    input: SchemaRef,
    /// The output columns' expressions; None when the output is `input`.
    exprs: Option<Vec<Arc<dyn PhysicalExpr>>>,
    output: SchemaRef,
}

impl Projection {
    /// The projection a physical plan is, if it is one over a scan of the
    /// bound row (or that scan alone).
    fn of(plan: &Arc<dyn ExecutionPlan>) -> Option<Projection> {
        if plan.children().is_empty() {
            return Some(Projection {
                input: plan.schema(),
                exprs: None,
                output: plan.schema(),
            });
        }
        let projection = plan.downcast_ref::<ProjectionExec>()?;
        if !projection.input().children().is_empty() {
            return None;
        }
        Some(Projection {
            input: projection.input().schema(),
            exprs: Some(projection.expr().iter().map(|e| e.expr.clone()).collect()),
            output: plan.schema(),
        })
    }

    fn apply(&self, rows: &RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .input
            .fields()
            .iter()
            .map(|field| {
                rows.column_by_name(field.name()).cloned().ok_or_else(|| {
                    Error::not_supported(format!("point scan without column {}", field.name()))
                })
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let input = RecordBatch::try_new(self.input.clone(), columns)?;
        let Some(exprs) = &self.exprs else {
            return Ok(input);
        };
        let columns = exprs
            .iter()
            .map(|expr| expr.evaluate(&input)?.into_array(input.num_rows()))
            .collect::<datafusion::error::Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(self.output.clone(), columns)?)
    }
}
