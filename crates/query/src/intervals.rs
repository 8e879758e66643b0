//! Intervals compare as PostgreSQL compares them: by their length with a
//! month taken as 30 days and a day as 24 hours, so `'1 day' = '24 hours'`
//! and `'40 days' > '1 mon'`. Arrow orders an interval by its months, then
//! its days, then its nanoseconds, field by field. An analyzer rule, run
//! after type coercion, rewrites comparisons, BETWEEN and ORDER BY keys of
//! two intervals into the same on their lengths ([`IntervalLength`]).
//!
//! Not covered, yet: grouping, DISTINCT and joins on intervals (`'1 day'`
//! and `'24 hours'` stay two groups), min and max of intervals, and
//! expressions of nodes with several inputs (joins, unions).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Decimal128Array};
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNanoType, IntervalUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, exec_err};
use datafusion::logical_expr::expr::{Between, BinaryExpr, ScalarFunction, Sort as SortExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// Nanoseconds in PostgreSQL's day and month of an interval's length.
const DAY_NANOS: i128 = 86_400_000_000_000;
const MONTH_DAYS: i128 = 30;

/// An interval's length in nanoseconds (months of 30 days, days of 24
/// hours), as a numeric: what PostgreSQL's `interval_cmp` compares.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct IntervalLength {
    signature: Signature,
}

impl Default for IntervalLength {
    fn default() -> Self {
        Self {
            signature: Signature::exact(
                vec![DataType::Interval(IntervalUnit::MonthDayNano)],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for IntervalLength {
    fn name(&self) -> &str {
        "interval_length"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, 0))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let DataType::Interval(IntervalUnit::MonthDayNano) = input.data_type() else {
            return exec_err!("interval_length of {}", input.data_type());
        };
        let lengths: Decimal128Array = input
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .map(|value| {
                value.map(|v| {
                    (v.months as i128 * MONTH_DAYS + v.days as i128) * DAY_NANOS
                        + v.nanoseconds as i128
                })
            })
            .collect();
        let lengths = lengths.with_precision_and_scale(38, 0)?;
        Ok(ColumnarValue::Array(Arc::new(lengths) as ArrayRef))
    }
}

fn length_of(expr: Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::from(IntervalLength::default())),
        vec![expr],
    ))
}

fn is_interval(expr: &Expr, schema: &DFSchema) -> bool {
    matches!(
        expr.get_type(schema),
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    )
}

/// `a < b` of two intervals as `length(a) < length(b)`; BETWEEN likewise.
fn compare_lengths(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
            ) && is_interval(&left, schema)
                && is_interval(&right, schema) =>
        {
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(length_of(*left)),
                op,
                Box::new(length_of(*right)),
            ))))
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) if is_interval(&expr, schema)
            && is_interval(&low, schema)
            && is_interval(&high, schema) =>
        {
            Ok(Transformed::yes(Expr::Between(Between::new(
                Box::new(length_of(*expr)),
                negated,
                Box::new(length_of(*low)),
                Box::new(length_of(*high)),
            ))))
        }
        expr => Ok(Transformed::no(expr)),
    }
}

#[derive(Debug, Default)]
pub(crate) struct IntervalComparisons;

impl AnalyzerRule for IntervalComparisons {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|node| {
                let Some(schema) = crate::expr_rules::input_schema(&node) else {
                    return Ok(Transformed::no(node));
                };
                if let LogicalPlan::Sort(mut sort) = node {
                    // A sort's keys are not its output: sort by the lengths.
                    let mut changed = false;
                    sort.expr = sort
                        .expr
                        .into_iter()
                        .map(|key| {
                            if is_interval(&key.expr, &schema) {
                                changed = true;
                                SortExpr::new(length_of(key.expr), key.asc, key.nulls_first)
                            } else {
                                key
                            }
                        })
                        .collect();
                    let node = LogicalPlan::Sort(sort);
                    return Ok(if changed {
                        Transformed::yes(node)
                    } else {
                        Transformed::no(node)
                    });
                }
                crate::expr_rules::rewrite_node(node, &schema, &compare_lengths)
            })?
            .data)
    }

    fn name(&self) -> &str {
        "interval_comparisons"
    }
}
