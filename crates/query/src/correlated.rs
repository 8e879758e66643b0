//! Correlated scalar subqueries that DataFusion cannot turn into joins.
//!
//! DataFusion decorrelates a scalar subquery when its outer references are
//! equalities in its WHERE clause; PostgreSQL runs any correlated subquery,
//! and clients' catalog queries use the other kinds too (SQLAlchemy's
//! column reflection builds a JSON object from the outer row inside one).
//! [`RunCorrelatedSubqueries`], the last optimizer rule, replaces every
//! scalar subquery still in the plan by a call of [`CorrelatedSubquery`],
//! which runs the subquery once for each distinct set of outer values, with
//! those values in place of the outer references, as PostgreSQL's subplans
//! do. Slower than a join, but correct where there is no join to make.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DataFusionError, Result, ScalarValue};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, expr::ScalarFunction,
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
        plan.transform_up(|node| {
            let names = NamePreserver::new(&node);
            node.map_expressions(|expr| {
                let name = names.save(&expr);
                let rewritten = expr.transform_up(|e| match e {
                    Expr::ScalarSubquery(subquery) if !subquery.outer_ref_columns.is_empty() => {
                        let outer: Vec<Column> = subquery
                            .outer_ref_columns
                            .iter()
                            .filter_map(|c| match c {
                                Expr::OuterReferenceColumn(_, column) => Some(column.clone()),
                                _ => None,
                            })
                            .collect();
                        let field = subquery
                            .subquery
                            .schema()
                            .fields()
                            .first()
                            .cloned()
                            .ok_or_else(|| {
                                DataFusionError::Plan("subquery has no column".to_owned())
                            })?;
                        let function = CorrelatedSubquery {
                            plan: subquery.subquery.clone(),
                            outer: outer.clone(),
                            field: Arc::new(field.as_ref().clone().with_nullable(true)),
                            signature: Signature::variadic_any(Volatility::Volatile),
                            cache: Mutex::new(HashMap::new()),
                        };
                        Ok(Transformed::yes(Expr::ScalarFunction(
                            ScalarFunction::new_udf(
                                Arc::new(ScalarUDF::from(function)),
                                outer.into_iter().map(Expr::Column).collect(),
                            ),
                        )))
                    }
                    other => Ok(Transformed::no(other)),
                })?;
                Ok(rewritten.update_data(|e| name.restore(e)))
            })
        })
    }
}

/// A correlated scalar subquery, run per distinct outer row.
struct CorrelatedSubquery {
    plan: Arc<LogicalPlan>,
    outer: Vec<Column>,
    field: FieldRef,
    signature: Signature,
    /// Results by outer values, for the life of the statement.
    cache: Mutex<HashMap<Vec<ScalarValue>, ScalarValue>>,
}

impl std::fmt::Debug for CorrelatedSubquery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CorrelatedSubquery({:?})", self.outer)
    }
}

impl PartialEq for CorrelatedSubquery {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.plan, &other.plan)
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
        let mut rows = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            rows.push(
                arrays
                    .iter()
                    .map(|a| ScalarValue::try_from_array(a, row))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        let missing: Vec<Vec<ScalarValue>> = {
            let cache = self.cache.lock();
            let mut missing: Vec<Vec<ScalarValue>> = rows
                .iter()
                .filter(|r| !cache.contains_key(*r))
                .cloned()
                .collect();
            missing.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            missing.dedup();
            missing
        };
        if !missing.is_empty() {
            let results = self.run(&missing)?;
            let mut cache = self.cache.lock();
            cache.extend(missing.into_iter().zip(results));
        }
        let cache = self.cache.lock();
        let values: Vec<ScalarValue> = rows
            .iter()
            .map(|r| {
                cache
                    .get(r)
                    .cloned()
                    .map_or_else(|| ScalarValue::try_from(self.field.data_type()), Ok)
            })
            .collect::<Result<_>>()?;
        if values.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(self.field.data_type()),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
    }
}

impl CorrelatedSubquery {
    /// The subquery's value for each set of outer values. The subqueries run
    /// on a thread of their own with its own runtime, as this is called from
    /// inside a running query.
    fn run(&self, outer_rows: &[Vec<ScalarValue>]) -> Result<Vec<ScalarValue>> {
        let plans = outer_rows
            .iter()
            .map(|values| self.bind(values))
            .collect::<Result<Vec<_>>>()?;
        let field = self.field.clone();
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
                            let mut found = batches
                                .iter()
                                .filter(|b| b.num_rows() > 0)
                                .flat_map(|b| (0..b.num_rows()).map(move |r| (b, r)));
                            let value = match found.next() {
                                None => ScalarValue::try_from(field.data_type())?,
                                Some((batch, row)) => {
                                    if found.next().is_some() {
                                        return Err(DataFusionError::External(Box::new(
                                            crate::error::Error::SubqueryRows,
                                        )));
                                    }
                                    ScalarValue::try_from_array(batch.column(0).as_ref(), row)?
                                }
                            };
                            results.push(value);
                        }
                        Ok(results)
                    })
                })
                .join()
                .map_err(|_| DataFusionError::Internal("correlated subquery panicked".to_owned()))?
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
