//! jsonb operators: `->`, `->>`, `#>`, `#>>`, planned into functions over the
//! stored (normalised) jsonb text.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DFSchema, Result, exec_err};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use serde_json::Value;

use tempora_types::PgType;

/// How a json operator reads its right operand and what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Access {
    /// `->`: a field or element, as jsonb.
    Json,
    /// `->>`: a field or element, as text.
    Text,
    /// `#>`: a path (text[]) as jsonb.
    PathJson,
    /// `#>>`: a path as text.
    PathText,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonGet {
    access: Access,
    name: &'static str,
    signature: Signature,
}

impl JsonGet {
    fn new(access: Access) -> Self {
        let name = match access {
            Access::Json => "jsonb_get",
            Access::Text => "jsonb_get_text",
            Access::PathJson => "jsonb_get_path",
            Access::PathText => "jsonb_get_path_text",
        };
        JsonGet {
            access,
            name,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

fn step<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => {
            let index: i64 = key.parse().ok()?;
            let index = if index < 0 {
                items.len() as i64 + index
            } else {
                index
            };
            items.get(usize::try_from(index).ok()?)
        }
        _ => None,
    }
}

fn render(value: &Value, as_text: bool, out: &mut StringBuilder) {
    match value {
        Value::Null if as_text => out.append_null(),
        Value::String(s) if as_text => out.append_value(s),
        other => {
            let mut text = String::new();
            tempora_types::json::write_jsonb(other, &mut text);
            out.append_value(text);
        }
    }
}

/// The keys of a path operand: `'{a,b}'` text or a text array.
fn path_keys(array: &ArrayRef, row: usize) -> Option<Vec<String>> {
    match array.data_type() {
        DataType::Utf8 => {
            let text = array.as_string::<i32>().value(row).trim();
            let inner = text.strip_prefix('{')?.strip_suffix('}')?;
            Some(
                inner
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            let strings = datafusion::arrow::compute::cast(&list, &DataType::Utf8).ok()?;
            let strings = strings.as_string::<i32>();
            Some(
                (0..strings.len())
                    .map(|i| strings.value(i).to_owned())
                    .collect(),
            )
        }
        _ => None,
    }
}

impl ScalarUDFImpl for JsonGet {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let _ = args;
        Ok(Arc::new(match self.access {
            Access::Json | Access::PathJson => PgType::Jsonb.arrow_field(self.name, true),
            Access::Text | Access::PathText => Field::new(self.name, DataType::Utf8, true),
        }))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let documents = args.args[0].to_array(rows)?;
        let documents = datafusion::arrow::compute::cast(&documents, &DataType::Utf8)?;
        let documents = documents.as_string::<i32>();
        let keys = args.args[1].to_array(rows)?;
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        let as_text = matches!(self.access, Access::Text | Access::PathText);
        for row in 0..rows {
            if documents.is_null(row) || keys.is_null(row) {
                out.append_null();
                continue;
            }
            let Ok(document) = serde_json::from_str::<Value>(documents.value(row)) else {
                return exec_err!("invalid input syntax for type json");
            };
            let path: Vec<String> = match self.access {
                Access::Json | Access::Text => {
                    let key =
                        datafusion::arrow::compute::cast(&keys.slice(row, 1), &DataType::Utf8)?;
                    vec![key.as_string::<i32>().value(0).to_owned()]
                }
                Access::PathJson | Access::PathText => match path_keys(&keys, row) {
                    Some(keys) => keys,
                    None => return exec_err!("malformed array literal for json path"),
                },
            };
            let mut current = Some(&document);
            for key in &path {
                current = current.and_then(|v| step(v, key));
            }
            match current {
                Some(value) => render(value, as_text, &mut out),
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// Plans PostgreSQL's json operators.
#[derive(Debug, Default)]
pub struct JsonOperators;

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        _schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let access = match expr.op {
            BinaryOperator::Arrow => Access::Json,
            BinaryOperator::LongArrow => Access::Text,
            BinaryOperator::HashArrow => Access::PathJson,
            BinaryOperator::HashLongArrow => Access::PathText,
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let udf = Arc::new(ScalarUDF::from(JsonGet::new(access)));
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            datafusion::logical_expr::expr::ScalarFunction::new_udf(
                udf,
                vec![expr.left, expr.right],
            ),
        )))
    }
}
