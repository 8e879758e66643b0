//! Subqueries that DataFusion cannot turn into joins.
//!
//! DataFusion decorrelates a scalar subquery when its outer references are
//! equalities in its WHERE clause, and turns IN and EXISTS into joins only
//! in a WHERE clause; PostgreSQL runs any subquery anywhere, and clients'
//! catalog queries use the other kinds too (SQLAlchemy's column reflection
//! builds a JSON object from the outer row inside one; Grafana asks
//! `CASE WHEN x IN (SELECT ...)` in a select list).
//! [`RunCorrelatedSubqueries`], the last optimizer rule, replaces every
//! scalar, IN and EXISTS subquery still in the plan by a call of
//! [`CorrelatedSubquery`], which runs the subquery once for each distinct
//! set of outer values (once if it has none), with those values in place of
//! the outer references, as PostgreSQL's subplans do. Slower than a join,
//! but correct where there is no join to make.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DataFusionError, Result, ScalarValue};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::expr::{Exists, InSubquery, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Subquery, Volatility,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use parking_lot::Mutex;

/// Replaces the scalar subqueries left after decorrelation.
#[derive(Debug, Default)]
pub(crate) struct RunCorrelatedSubqueries;

impl OptimizerRule for RunCorrelatedSubqueries {
    fn name(&self) -> &str {
        "tempora_run_correlated_subqueries"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        replace_subqueries(plan, |_| true)
    }
}

/// The analyzer's part: scalar subqueries whose outer references DataFusion
/// would try and fail to pull up (outer values in the select list, or in
/// conditions other than `inner = outer`) run per outer row from the
/// start; the others are left for DataFusion to decorrelate into joins.
#[derive(Debug, Default)]
pub(crate) struct RunUndecorrelatableSubqueries;

impl datafusion::optimizer::AnalyzerRule for RunUndecorrelatableSubqueries {
    fn name(&self) -> &str {
        "tempora_run_undecorrelatable_subqueries"
    }

    fn analyze(
        &self,
        plan: LogicalPlan,
        _config: &datafusion::common::config::ConfigOptions,
    ) -> Result<LogicalPlan> {
        Ok(replace_subqueries(plan, |e| match e {
            Expr::ScalarSubquery(subquery) => !decorrelatable(&subquery.subquery),
            _ => false,
        })?
        .data)
    }
}

/// Whether every outer reference of a subquery plan is one side of an
/// equality in a filter, the form DataFusion turns into a join.
fn decorrelatable(plan: &LogicalPlan) -> bool {
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        let exprs = node.expressions();
        for expr in &exprs {
            if !expr.contains_outer() {
                continue;
            }
            let simple = matches!(node, LogicalPlan::Filter(_))
                && datafusion::logical_expr::utils::split_conjunction(expr)
                    .into_iter()
                    .all(|conjunct| {
                        !conjunct.contains_outer()
                            || matches!(conjunct, Expr::BinaryExpr(b)
                                if b.op == datafusion::logical_expr::Operator::Eq
                                    && (matches!(b.left.as_ref(), Expr::OuterReferenceColumn(..))
                                        != matches!(b.right.as_ref(), Expr::OuterReferenceColumn(..)))
                                    && !(b.left.contains_outer() && b.right.contains_outer()))
                    });
            if !simple {
                ok = false;
                return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
            }
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    ok
}

/// Replaces the subqueries `select` picks by calls that run them.
fn replace_subqueries(
    plan: LogicalPlan,
    select: impl Fn(&Expr) -> bool,
) -> Result<Transformed<LogicalPlan>> {
    plan.transform_up(|node| {
        let names = NamePreserver::new(&node);
        node.map_expressions(|expr| {
            let name = names.save(&expr);
            let rewritten = expr.transform_up(|e| {
                if !select(&e) {
                    return Ok(Transformed::no(e));
                }
                let (kind, subquery, tested) = match e {
                    Expr::ScalarSubquery(subquery) if !subquery.outer_ref_columns.is_empty() => {
                        (Kind::Scalar, subquery, None)
                    }
                    Expr::InSubquery(InSubquery {
                        expr,
                        subquery,
                        negated,
                    }) => (Kind::In { negated }, subquery, Some(*expr)),
                    Expr::Exists(Exists { subquery, negated }) => {
                        (Kind::Exists { negated }, subquery, None)
                    }
                    other => return Ok(Transformed::no(other)),
                };
                Ok(Transformed::yes(call(kind, subquery, tested)?))
            })?;
            Ok(rewritten.update_data(|e| name.restore(e)))
        })
    })
}

/// What a subquery computes for its outer row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// Its one value (NULL without rows; 21000 with two).
    Scalar,
    /// Whether the tested value is among its values, by SQL's rules.
    In { negated: bool },
    /// Whether it has rows.
    Exists { negated: bool },
}

/// The call that runs `subquery`: arguments are the tested value (IN) and
/// then the outer columns it references.
fn call(kind: Kind, subquery: Subquery, tested: Option<Expr>) -> Result<Expr> {
    let outer: Vec<Column> = subquery
        .outer_ref_columns
        .iter()
        .filter_map(|c| match c {
            Expr::OuterReferenceColumn(_, column) => Some(column.clone()),
            _ => None,
        })
        .collect();
    let field = match kind {
        Kind::Scalar => {
            let field = subquery
                .subquery
                .schema()
                .fields()
                .first()
                .cloned()
                .ok_or_else(|| DataFusionError::Plan("subquery has no column".to_owned()))?;
            Arc::new(field.as_ref().clone().with_nullable(true))
        }
        Kind::In { .. } | Kind::Exists { .. } => Arc::new(
            datafusion::arrow::datatypes::Field::new("", DataType::Boolean, true),
        ),
    };
    let function = CorrelatedSubquery {
        kind,
        plan: subquery.subquery.clone(),
        outer: outer.clone(),
        field,
        signature: Signature::variadic_any(Volatility::Volatile),
        cache: Mutex::new(HashMap::new()),
    };
    let mut args: Vec<Expr> = tested.into_iter().collect();
    args.extend(outer.into_iter().map(Expr::Column));
    if args.is_empty() {
        // A call needs an argument to know how many rows it answers for.
        args.push(Expr::Literal(ScalarValue::Boolean(Some(true)), None));
    }
    Ok(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::from(function)),
        args,
    )))
}

/// A subquery, run per distinct set of outer values.
struct CorrelatedSubquery {
    kind: Kind,
    plan: Arc<LogicalPlan>,
    outer: Vec<Column>,
    field: FieldRef,
    signature: Signature,
    /// The subquery's first column by outer values, for the life of the
    /// statement.
    cache: Mutex<HashMap<Vec<ScalarValue>, Arc<Vec<ScalarValue>>>>,
}

impl std::fmt::Debug for CorrelatedSubquery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CorrelatedSubquery({:?})", self.outer)
    }
}

impl PartialEq for CorrelatedSubquery {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.plan, &other.plan)
    }
}
impl Eq for CorrelatedSubquery {}
impl std::hash::Hash for CorrelatedSubquery {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.plan).hash(state);
    }
}

impl ScalarUDFImpl for CorrelatedSubquery {
    fn name(&self) -> &str {
        "__tempora_correlated_subquery"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.field.data_type().clone())
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        Ok(self.field.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        // The outer values follow the tested value of IN.
        let skip = usize::from(matches!(self.kind, Kind::In { .. }));
        let mut keys = Vec::with_capacity(args.number_rows);
        let mut tested = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            let key = arrays
                .iter()
                .skip(skip)
                .take(self.outer.len())
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<Result<Vec<_>>>()?;
            keys.push(key);
            if skip == 1 {
                tested.push(ScalarValue::try_from_array(&arrays[0], row)?);
            }
        }
        let missing: Vec<Vec<ScalarValue>> = {
            let cache = self.cache.lock();
            let mut missing: Vec<Vec<ScalarValue>> = keys
                .iter()
                .filter(|k| !cache.contains_key(*k))
                .cloned()
                .collect();
            missing.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            missing.dedup();
            missing
        };
        if !missing.is_empty() {
            let results = self.run(&missing)?;
            let mut cache = self.cache.lock();
            cache.extend(missing.into_iter().zip(results.into_iter().map(Arc::new)));
        }
        let cache = self.cache.lock();
        let mut values = Vec::with_capacity(keys.len());
        for (row, key) in keys.iter().enumerate() {
            let found = cache.get(key).cloned().unwrap_or_default();
            values.push(match self.kind {
                Kind::Scalar => match found.as_slice() {
                    [] => ScalarValue::try_from(self.field.data_type())?,
                    [value] => value.clone(),
                    _ => {
                        return Err(DataFusionError::External(Box::new(
                            crate::error::Error::SubqueryRows,
                        )));
                    }
                },
                Kind::Exists { negated } => ScalarValue::Boolean(Some(found.is_empty() == negated)),
                Kind::In { negated } => {
                    let value = &tested[row];
                    let answer = in_list(value, &found);
                    ScalarValue::Boolean(answer.map(|a| a != negated))
                }
            });
        }
        if values.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(self.field.data_type()),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
    }
}

/// SQL's `value IN (values)`: true if equal to one, NULL if not and either
/// side has a NULL, else false. Values of different types are compared
/// after casting `value` to the list's type.
fn in_list(value: &ScalarValue, values: &[ScalarValue]) -> Option<bool> {
    if value.is_null() {
        return if values.is_empty() { Some(false) } else { None };
    }
    let mut saw_null = false;
    for candidate in values {
        if candidate.is_null() {
            saw_null = true;
            continue;
        }
        let comparable = if candidate.data_type() == value.data_type() {
            value.clone()
        } else {
            match value.cast_to(&candidate.data_type()) {
                Ok(cast) => cast,
                Err(_) => continue,
            }
        };
        if &comparable == candidate {
            return Some(true);
        }
    }
    if saw_null { None } else { Some(false) }
}

impl CorrelatedSubquery {
    /// The subquery's first column for each set of outer values. The
    /// subqueries run on a thread of their own with its own runtime, as
    /// this is called from inside a running query.
    fn run(&self, outer_rows: &[Vec<ScalarValue>]) -> Result<Vec<Vec<ScalarValue>>> {
        let plans = outer_rows
            .iter()
            .map(|values| self.bind(values))
            .collect::<Result<Vec<_>>>()?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    runtime.block_on(async move {
                        let state = SessionStateBuilder::new().with_default_features().build();
                        let mut results = Vec::with_capacity(plans.len());
                        for plan in plans {
                            let physical = state.create_physical_plan(&plan).await?;
                            let batches =
                                datafusion::physical_plan::collect(physical, state.task_ctx())
                                    .await?;
                            let mut values = Vec::new();
                            for batch in &batches {
                                for row in 0..batch.num_rows() {
                                    values.push(ScalarValue::try_from_array(
                                        batch.column(0).as_ref(),
                                        row,
                                    )?);
                                }
                            }
                            results.push(values);
                        }
                        Ok(results)
                    })
                })
                .join()
                .map_err(|_| DataFusionError::Internal("subquery panicked".to_owned()))?
        })
    }

    /// The subquery with the outer references replaced by `values`.
    fn bind(&self, values: &[ScalarValue]) -> Result<LogicalPlan> {
        let lookup: HashMap<&Column, &ScalarValue> = self.outer.iter().zip(values).collect();
        let replace = |e: Expr| -> Result<Transformed<Expr>> {
            match e {
                Expr::OuterReferenceColumn(field, column) => match lookup.get(&column) {
                    Some(value) => Ok(Transformed::yes(Expr::Literal(
                        (*value).clone().cast_to(field.data_type())?,
                        None,
                    ))),
                    None => Ok(Transformed::no(Expr::OuterReferenceColumn(field, column))),
                },
                other => Ok(Transformed::no(other)),
            }
        };
        let plan = self
            .plan
            .as_ref()
            .clone()
            .transform_up_with_subqueries(|node| node.map_expressions(|e| e.transform_up(replace)))?
            .data;
        plan.recompute_schema()
    }
}
