//! Date/time arithmetic PostgreSQL has and DataFusion lacks:
//! `timestamptz - timestamptz` (an interval in days and time) and
//! `number * interval` / `interval * number` / `interval / number`; and
//! `date ± interval`, a timestamp in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, IntervalMonthDayNanoBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, IntervalMonthDayNano, IntervalUnit};
use datafusion::common::{DFSchema, Result, exec_err};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use tempora_types::datetime::MICROS_PER_DAY;
use tempora_types::text::timestamp_micros;

fn timestamp_type() -> DataType {
    DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None)
}

fn interval_type() -> DataType {
    DataType::Interval(IntervalUnit::MonthDayNano)
}

/// `a - b` of two timestamps: PostgreSQL's interval of whole days plus time.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampDifference {
    signature: Signature,
}

impl ScalarUDFImpl for TimestampDifference {
    fn name(&self) -> &str {
        "timestamp_difference"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(interval_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let left = args.args[0].to_array(rows)?;
        let right = args.args[1].to_array(rows)?;
        let (DataType::Timestamp(left_unit, _), DataType::Timestamp(right_unit, _)) =
            (left.data_type(), right.data_type())
        else {
            return exec_err!("timestamp difference of non-timestamps");
        };
        let mut out = IntervalMonthDayNanoBuilder::with_capacity(rows);
        for row in 0..rows {
            if left.is_null(row) || right.is_null(row) {
                out.append_null();
                continue;
            }
            let Some(micros) = timestamp_micros(left.as_ref(), row, left_unit)
                .checked_sub(timestamp_micros(right.as_ref(), row, right_unit))
            else {
                return exec_err!("interval out of range");
            };
            out.append_value(IntervalMonthDayNano {
                months: 0,
                days: (micros / MICROS_PER_DAY) as i32,
                nanoseconds: (micros % MICROS_PER_DAY) * 1_000,
            });
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `interval * factor`, with PostgreSQL's cascade of fractional months into
/// days (30 per month) and fractional days into time.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalScale {
    signature: Signature,
}

pub fn scale_interval(interval: IntervalMonthDayNano, factor: f64) -> IntervalMonthDayNano {
    let months = interval.months as f64 * factor;
    let whole_months = months.trunc();
    let days = interval.days as f64 * factor + (months - whole_months) * 30.0;
    let whole_days = days.trunc();
    let micros = (interval.nanoseconds / 1_000) as f64 * factor
        + (days - whole_days) * MICROS_PER_DAY as f64;
    IntervalMonthDayNano {
        months: whole_months as i32,
        days: whole_days as i32,
        nanoseconds: (micros.round() as i64).saturating_mul(1_000),
    }
}

impl ScalarUDFImpl for IntervalScale {
    fn name(&self) -> &str {
        "interval_scale"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(interval_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let intervals = cast(&args.args[0].to_array(rows)?, &interval_type())?;
        let intervals =
            intervals.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
        let factors = cast(&args.args[1].to_array(rows)?, &DataType::Float64)?;
        let factors = factors.as_primitive::<Float64Type>();
        let mut out = IntervalMonthDayNanoBuilder::with_capacity(rows);
        for row in 0..rows {
            if intervals.is_null(row) || factors.is_null(row) {
                out.append_null();
            } else {
                out.append_value(scale_interval(intervals.value(row), factors.value(row)));
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn udf(implementation: impl ScalarUDFImpl + 'static) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(implementation))
}

/// Plans the operators above when DataFusion's own would fail.
#[derive(Debug, Default)]
pub struct TemporalOperators;

impl ExprPlanner for TemporalOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let (Ok(left), Ok(right)) = (expr.left.get_type(schema), expr.right.get_type(schema))
        else {
            return Ok(PlannerResult::Original(expr));
        };
        let call = |implementation: Arc<ScalarUDF>, args: Vec<Expr>| {
            Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                implementation,
                args,
            ))
        };
        let numeric = |t: &DataType| t.is_numeric();
        let is_interval = |t: &DataType| matches!(t, DataType::Interval(_));
        let planned = match (&expr.op, &left, &right) {
            (BinaryOperator::Minus, DataType::Timestamp(_, _), DataType::Timestamp(_, _)) => call(
                udf(TimestampDifference {
                    signature: Signature::any(2, Volatility::Immutable),
                }),
                vec![expr.left, expr.right],
            ),
            (BinaryOperator::Multiply, l, r) if is_interval(l) && numeric(r) => call(
                udf(IntervalScale {
                    signature: Signature::any(2, Volatility::Immutable),
                }),
                vec![expr.left, expr.right],
            ),
            (BinaryOperator::Multiply, l, r) if numeric(l) && is_interval(r) => call(
                udf(IntervalScale {
                    signature: Signature::any(2, Volatility::Immutable),
                }),
                vec![expr.right, expr.left],
            ),
            (BinaryOperator::Divide, l, r) if is_interval(l) && numeric(r) => call(
                udf(IntervalScale {
                    signature: Signature::any(2, Volatility::Immutable),
                }),
                vec![
                    expr.left,
                    Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
                        Box::new(datafusion::logical_expr::lit(1.0f64)),
                        datafusion::logical_expr::Operator::Divide,
                        Box::new(datafusion::logical_expr::cast(
                            expr.right,
                            DataType::Float64,
                        )),
                    )),
                ],
            ),
            // A date and an interval make a timestamp in PostgreSQL (the
            // date at midnight); DataFusion kept a date, dropping the time.
            (BinaryOperator::Plus | BinaryOperator::Minus, DataType::Date32, r)
                if is_interval(r) =>
            {
                return Ok(PlannerResult::Original(RawBinaryExpr {
                    left: datafusion::logical_expr::cast(expr.left, timestamp_type()),
                    ..expr
                }));
            }
            (BinaryOperator::Plus, l, DataType::Date32) if is_interval(l) => {
                return Ok(PlannerResult::Original(RawBinaryExpr {
                    right: datafusion::logical_expr::cast(expr.right, timestamp_type()),
                    ..expr
                }));
            }
            _ => return Ok(PlannerResult::Original(expr)),
        };
        Ok(PlannerResult::Planned(planned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_scale_like_postgres() {
        let minute = IntervalMonthDayNano {
            months: 0,
            days: 0,
            nanoseconds: 60_000_000_000,
        };
        assert_eq!(scale_interval(minute, 1.5).nanoseconds, 90_000_000_000);
        let month = IntervalMonthDayNano {
            months: 1,
            days: 0,
            nanoseconds: 0,
        };
        let half = scale_interval(month, 0.5);
        assert_eq!((half.months, half.days), (0, 15));
    }
}
