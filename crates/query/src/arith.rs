//! PostgreSQL's integer arithmetic: a sum, difference or product that does
//! not fit its type is an error (22003, "bigint out of range"), where
//! DataFusion's wraps around (`9223372036854775807 + 1` gave
//! `-9223372036854775808`). An analyzer rule rewrites `+`, `-` and `*` of
//! two integers of one type, after DataFusion's type coercion has made
//! them one type, into the checked form of PostgreSQL's operator function
//! (`int8pl` and the like, as EXPLAIN shows it).

use std::sync::Arc;

use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result, exec_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// `+`, `-` or `*` of two integers of one type, failing on overflow.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedArithmetic {
    signature: Signature,
    op: Operator,
    /// PostgreSQL's name of the type, for the error ("integer").
    type_name: &'static str,
    /// PostgreSQL's name of the operator's function ("int4pl").
    name: String,
}

impl ScalarUDFImpl for CheckedArithmetic {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let left = args.args[0].to_array(args.number_rows)?;
        let right = args.args[1].to_array(args.number_rows)?;
        let result = match self.op {
            Operator::Plus => numeric::add(&left, &right),
            Operator::Minus => numeric::sub(&left, &right),
            Operator::Multiply => numeric::mul(&left, &right),
            other => return exec_err!("{} of operator {other}", self.name),
        };
        match result {
            Ok(array) => Ok(ColumnarValue::Array(array)),
            Err(ArrowError::ArithmeticOverflow(_)) => Err(DataFusionError::External(Box::new(
                tempora_types::Error::OutOfRange {
                    message: format!("{} out of range", self.type_name),
                },
            ))),
            Err(error) => Err(error.into()),
        }
    }
}

/// The checked function for `op` over integers of type `data_type`, if
/// PostgreSQL checks that operator on that type.
fn checked(op: Operator, data_type: &DataType) -> Option<Arc<ScalarUDF>> {
    let (prefix, type_name) = match data_type {
        DataType::Int16 => ("int2", "smallint"),
        DataType::Int32 => ("int4", "integer"),
        DataType::Int64 => ("int8", "bigint"),
        _ => return None,
    };
    let suffix = match op {
        Operator::Plus => "pl",
        Operator::Minus => "mi",
        Operator::Multiply => "mul",
        _ => return None,
    };
    Some(Arc::new(ScalarUDF::from(CheckedArithmetic {
        signature: Signature::any(2, Volatility::Immutable),
        op,
        type_name,
        name: format!("{prefix}{suffix}"),
    })))
}

fn check_integer_arithmetic(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    if let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr
        && let Ok(left_type) = left.get_type(schema)
        && let Ok(right_type) = right.get_type(schema)
        && left_type == right_type
        && let Some(function) = checked(*op, &left_type)
    {
        let call = Expr::ScalarFunction(ScalarFunction::new_udf(
            function,
            vec![(**left).clone(), (**right).clone()],
        ));
        return Ok(Transformed::yes(call));
    }
    Ok(Transformed::no(expr))
}

#[derive(Debug, Default)]
pub(crate) struct IntegerOverflow;

impl AnalyzerRule for IntegerOverflow {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::expr_rules::rewrite_plan(plan, check_integer_arithmetic)
    }

    fn name(&self) -> &str {
        "integer_overflow"
    }
}
