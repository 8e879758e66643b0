//! PostgreSQL's cast semantics where DataFusion's differ: a float cast to an
//! integer rounds to the nearest integer, ties to even (PostgreSQL uses
//! `rint`), and a numeric cast to an integer rounds half away from zero,
//! where Arrow truncates both. An analyzer rule inserts the rounding before
//! every such cast, after DataFusion's type coercion has run.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Decimal128Array, Float32Array, Float64Array};
use datafusion::arrow::datatypes::{
    DECIMAL128_MAX_PRECISION, DataType, Decimal128Type, Float32Type, Float64Type,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, exec_err};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// `rint`: round to nearest, ties to even, keeping the float type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundTiesEven {
    signature: Signature,
}

impl ScalarUDFImpl for RoundTiesEven {
    fn name(&self) -> &str {
        "rint"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let output: ArrayRef = match input.data_type() {
            DataType::Float64 => Arc::new(
                input
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(f64::round_ties_even))
                    .collect::<Float64Array>(),
            ),
            DataType::Float32 => Arc::new(
                input
                    .as_primitive::<Float32Type>()
                    .iter()
                    .map(|v| v.map(f32::round_ties_even))
                    .collect::<Float32Array>(),
            ),
            other => return exec_err!("rint of {other}"),
        };
        Ok(ColumnarValue::Array(output))
    }
}

fn rint() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(RoundTiesEven {
        signature: Signature::uniform(
            1,
            vec![DataType::Float32, DataType::Float64],
            Volatility::Immutable,
        ),
    }))
}

/// A numeric rounded to a whole number, half away from zero (numeric's
/// rounding), keeping its scale; one more digit of precision for the carry.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundNumeric {
    signature: Signature,
}

impl ScalarUDFImpl for RoundNumeric {
    fn name(&self) -> &str {
        "numeric_round"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::Decimal128(precision, scale) => Ok(DataType::Decimal128(
                (*precision + 1).min(DECIMAL128_MAX_PRECISION),
                *scale,
            )),
            other => exec_err!("numeric_round of {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let DataType::Decimal128(_, scale) = input.data_type() else {
            return exec_err!("numeric_round of {}", input.data_type());
        };
        let DataType::Decimal128(precision, _) = args.return_field.data_type() else {
            return exec_err!("numeric_round returns {}", args.return_field.data_type());
        };
        let unit = 10i128
            .checked_pow((*scale).max(0) as u32)
            .unwrap_or(i128::MAX);
        let rounded: Decimal128Array = input
            .as_primitive::<Decimal128Type>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    let (whole, rest) = (v / unit, v % unit);
                    let whole = if rest.unsigned_abs() * 2 >= unit.unsigned_abs() {
                        whole + v.signum()
                    } else {
                        whole
                    };
                    whole.saturating_mul(unit)
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(
            rounded.with_precision_and_scale(*precision, *scale)?,
        )))
    }
}

fn numeric_round() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(RoundNumeric {
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

fn round_before_integer_casts(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    if let Expr::Cast(Cast { expr: inner, field }) = &expr
        && field.data_type().is_integer()
        && let Ok(source) = inner.get_type(schema)
    {
        let function = match source {
            DataType::Float32 | DataType::Float64 => rint(),
            DataType::Decimal128(_, scale) if scale > 0 => numeric_round(),
            _ => return Ok(Transformed::no(expr)),
        };
        let rounded =
            Expr::ScalarFunction(ScalarFunction::new_udf(function, vec![(**inner).clone()]));
        return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(
            Box::new(rounded),
            field.clone(),
        ))));
    }
    Ok(Transformed::no(expr))
}

#[derive(Debug, Default)]
pub struct PostgresCasts;

impl AnalyzerRule for PostgresCasts {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|node| {
                let schema = match node.inputs().as_slice() {
                    [input] => input.schema().as_ref().clone(),
                    [] => DFSchema::empty(),
                    // Joins and unions: their expressions see several inputs; leave them.
                    _ => return Ok(Transformed::no(node)),
                };
                // Keep output column names: the rewrite must not rename `x::int`.
                let names = NamePreserver::new(&node);
                node.map_expressions(|expr| {
                    let name = names.save(&expr);
                    Ok(expr
                        .transform_up(|e| round_before_integer_casts(e, &schema))?
                        .update_data(|e| name.restore(e)))
                })
            })?
            .data)
    }

    fn name(&self) -> &str {
        "postgres_casts"
    }
}
