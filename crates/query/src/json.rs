//! jsonb operators: `->`, `->>`, `#>`, `#>>`, the containment and key
//! tests `@>`, `<@`, `?`, `?|`, `?&`, and `||` and `-` (whose functions are
//! in [`crate::json_build`]), planned into functions over the
//! stored (normalised) jsonb text; the functions `jsonb_typeof` and
//! `jsonb_array_length` (with their `json_` twins); and the set-returning
//! `jsonb_array_elements`, `jsonb_array_elements_text`, `jsonb_object_keys`
//! and `json_object_keys`, as lists the sql layer unnests.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DFSchema, DataFusionError, Result, exec_err};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use serde_json::Value;

use tempora_types::PgType;

use crate::expr_rules::text_argument;
use crate::json_build::{Edit, JsonEdit};

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
        let documents = text_argument(&args.args[0], rows)?;
        let documents = documents.as_string::<i32>();
        let keys = args.args[1].to_array(rows)?;
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        let as_text = matches!(self.access, Access::Text | Access::PathText);
        for row in 0..rows {
            if documents.is_null(row) || keys.is_null(row) {
                out.append_null();
                continue;
            }
            let document = parse_document(documents.value(row))?;
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

/// A jsonb test giving a boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Test {
    /// `@>`: the left document contains the right.
    Contains,
    /// `<@`: the left document is contained in the right.
    ContainedIn,
    /// `?`: the key (or array string) exists at the top level.
    KeyExists,
    /// `?|`: any of the keys exists.
    AnyKeyExists,
    /// `?&`: all of the keys exist.
    AllKeysExist,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonTest {
    test: Test,
    signature: Signature,
}

/// Whether jsonb `value` contains `wanted`, as PostgreSQL's `@>` decides:
/// an object contains an object whose every key it has with a contained
/// value; an array contains an array whose every element one of its own
/// contains; scalars contain equal scalars (numbers by value). At the top
/// level only (`top`), an array also contains a scalar equal to one of its
/// elements.
fn contains(value: &Value, wanted: &Value, top: bool) -> bool {
    match (value, wanted) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(key, w)| have.get(key).is_some_and(|h| contains(h, w, false))),
        (Value::Array(have), Value::Array(want)) => want
            .iter()
            .all(|w| have.iter().any(|h| contains(h, w, false))),
        (Value::Array(have), scalar) if top && !scalar.is_object() => have
            .iter()
            .any(|h| !h.is_array() && !h.is_object() && contains(h, scalar, false)),
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        (a, b) if !a.is_array() && !a.is_object() => a == b,
        _ => false,
    }
}

/// Whether `key` exists at the top level of `value` (`?`).
fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key),
        Value::Array(items) => items.iter().any(|item| item.as_str() == Some(key)),
        Value::String(s) => s == key,
        _ => false,
    }
}

/// A stored json or jsonb text, parsed.
fn parse_document(text: &str) -> Result<Value> {
    serde_json::from_str::<Value>(text).or_else(|_| exec_err!("invalid input syntax for type json"))
}

impl ScalarUDFImpl for JsonTest {
    fn name(&self) -> &str {
        match self.test {
            Test::Contains => "jsonb_contains",
            Test::ContainedIn => "jsonb_contained",
            Test::KeyExists => "jsonb_exists",
            Test::AnyKeyExists => "jsonb_exists_any",
            Test::AllKeysExist => "jsonb_exists_all",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let documents = text_argument(&args.args[0], rows)?;
        let documents = documents.as_string::<i32>();
        let right = args.args[1].to_array(rows)?;
        let right_text = match right.data_type() {
            DataType::List(_) => None,
            _ => Some(text_argument(&args.args[1], rows)?),
        };
        let mut out = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            if documents.is_null(row) || right.is_null(row) {
                out.append_null();
                continue;
            }
            let document = parse_document(documents.value(row))?;
            let text = right_text.as_ref().map(|t| t.as_string::<i32>().value(row));
            let result = match self.test {
                Test::Contains | Test::ContainedIn => {
                    let Some(text) = text else {
                        return exec_err!("jsonb containment of a non-jsonb value");
                    };
                    let other = parse_document(text)?;
                    if self.test == Test::Contains {
                        contains(&document, &other, true)
                    } else {
                        contains(&other, &document, true)
                    }
                }
                Test::KeyExists => match text {
                    Some(key) => has_key(&document, key),
                    None => return exec_err!("jsonb ? takes a text key"),
                },
                Test::AnyKeyExists | Test::AllKeysExist => {
                    let Some(keys) = path_keys(&right, row) else {
                        return exec_err!("malformed array literal for jsonb keys");
                    };
                    if self.test == Test::AnyKeyExists {
                        keys.iter().any(|key| has_key(&document, key))
                    } else {
                        keys.iter().all(|key| has_key(&document, key))
                    }
                }
            };
            out.append_value(result);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// A function of one json document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Inspect {
    /// `jsonb_typeof`: object, array, string, number, boolean or null.
    TypeOf,
    /// `jsonb_array_length`: the elements of an array (22023 otherwise).
    ArrayLength,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonInspect {
    inspect: Inspect,
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for JsonInspect {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.inspect {
            Inspect::TypeOf => DataType::Utf8,
            Inspect::ArrayLength => DataType::Int32,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let documents = text_argument(&args.args[0], rows)?;
        let documents = documents.as_string::<i32>();
        let output: ArrayRef = match self.inspect {
            Inspect::TypeOf => {
                let mut out = StringBuilder::with_capacity(rows, rows * 6);
                for row in 0..rows {
                    if documents.is_null(row) {
                        out.append_null();
                        continue;
                    }
                    out.append_value(match parse_document(documents.value(row))? {
                        Value::Object(_) => "object",
                        Value::Array(_) => "array",
                        Value::String(_) => "string",
                        Value::Number(_) => "number",
                        Value::Bool(_) => "boolean",
                        Value::Null => "null",
                    });
                }
                Arc::new(out.finish())
            }
            Inspect::ArrayLength => {
                let mut out = Int32Builder::with_capacity(rows);
                for row in 0..rows {
                    if documents.is_null(row) {
                        out.append_null();
                        continue;
                    }
                    let not_array = match parse_document(documents.value(row))? {
                        Value::Array(items) => {
                            out.append_value(items.len() as i32);
                            continue;
                        }
                        Value::Object(_) => "a non-array",
                        _ => "a scalar",
                    };
                    return Err(DataFusionError::External(Box::new(
                        crate::error::Error::InvalidParameter {
                            message: format!("cannot get array length of {not_array}"),
                        },
                    )));
                }
                Arc::new(out.finish())
            }
        };
        Ok(ColumnarValue::Array(output))
    }
}

/// What a set-returning jsonb function yields for a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Elements {
    /// `jsonb_array_elements`: an array's elements, as jsonb.
    Values,
    /// `jsonb_array_elements_text`: an array's elements, as text.
    Texts,
    /// `jsonb_object_keys` (true) and `json_object_keys`: an object's keys.
    Keys { jsonb: bool },
}

/// The set-returning jsonb functions, as a list per document: the sql
/// layer unnests a select item calling one into rows, as PostgreSQL
/// returns them.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonElements {
    elements: Elements,
    name: &'static str,
    signature: Signature,
}

impl JsonElements {
    fn element_field(&self) -> Field {
        match self.elements {
            Elements::Values => PgType::Jsonb.arrow_field("item", true),
            Elements::Texts | Elements::Keys { .. } => Field::new("item", DataType::Utf8, true),
        }
    }
}

impl ScalarUDFImpl for JsonElements {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(self.element_field())))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let documents = text_argument(&args.args[0], rows)?;
        let documents = documents.as_string::<i32>();
        let field = Arc::new(self.element_field());
        let mut out =
            datafusion::arrow::array::ListBuilder::new(StringBuilder::new()).with_field(field);
        for row in 0..rows {
            if documents.is_null(row) {
                out.append_null();
                continue;
            }
            let refused = match (self.elements, parse_document(documents.value(row))?) {
                (Elements::Values | Elements::Texts, Value::Array(items)) => {
                    for item in &items {
                        match item {
                            Value::Null if self.elements == Elements::Texts => {
                                out.values().append_null()
                            }
                            Value::String(s) if self.elements == Elements::Texts => {
                                out.values().append_value(s)
                            }
                            other => {
                                let mut text = String::new();
                                tempora_types::json::write_jsonb(other, &mut text);
                                out.values().append_value(text);
                            }
                        }
                    }
                    out.append(true);
                    continue;
                }
                (Elements::Keys { jsonb }, Value::Object(members)) => {
                    // A json's keys as written; a jsonb's in its order, by
                    // length then bytes (an untyped literal is not stored
                    // in that order yet).
                    let mut keys: Vec<&String> = members.keys().collect();
                    if jsonb {
                        keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
                    }
                    for key in keys {
                        out.values().append_value(key);
                    }
                    out.append(true);
                    continue;
                }
                (Elements::Values | Elements::Texts, Value::Object(_)) => {
                    "cannot extract elements from an object".to_owned()
                }
                (Elements::Values | Elements::Texts, _) => {
                    "cannot extract elements from a scalar".to_owned()
                }
                (Elements::Keys { .. }, Value::Array(_)) => {
                    format!("cannot call {} on an array", self.name)
                }
                (Elements::Keys { .. }, _) => format!("cannot call {} on a scalar", self.name),
            };
            return Err(DataFusionError::External(Box::new(
                crate::error::Error::InvalidParameter { message: refused },
            )));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `jsonb_typeof`, `jsonb_array_length` and their `json_` forms.
pub fn functions() -> Vec<ScalarUDF> {
    [
        (Inspect::TypeOf, "jsonb_typeof"),
        (Inspect::TypeOf, "json_typeof"),
        (Inspect::ArrayLength, "jsonb_array_length"),
        (Inspect::ArrayLength, "json_array_length"),
    ]
    .into_iter()
    .map(|(inspect, name)| {
        ScalarUDF::from(JsonInspect {
            inspect,
            name,
            signature: Signature::any(1, Volatility::Immutable),
        })
    })
    .chain(
        [
            (Elements::Values, "jsonb_array_elements"),
            (Elements::Texts, "jsonb_array_elements_text"),
            (Elements::Keys { jsonb: true }, "jsonb_object_keys"),
            (Elements::Keys { jsonb: false }, "json_object_keys"),
        ]
        .into_iter()
        .map(|(elements, name)| {
            ScalarUDF::from(JsonElements {
                elements,
                name,
                signature: Signature::any(1, Volatility::Immutable),
            })
        }),
    )
    .collect()
}

/// Plans PostgreSQL's json operators.
#[derive(Debug, Default)]
pub struct JsonOperators;

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let test = match expr.op {
            BinaryOperator::AtArrow => Some(Test::Contains),
            BinaryOperator::ArrowAt => Some(Test::ContainedIn),
            BinaryOperator::Question => Some(Test::KeyExists),
            BinaryOperator::QuestionPipe => Some(Test::AnyKeyExists),
            BinaryOperator::QuestionAnd => Some(Test::AllKeysExist),
            _ => None,
        };
        // `@>` and `<@` of arrays are array containment, DataFusion's own.
        let over_arrays = matches!(
            expr.left.get_type(schema),
            Ok(DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..))
        );
        if let Some(test) = test
            && !over_arrays
        {
            let udf = Arc::new(ScalarUDF::from(JsonTest {
                test,
                signature: Signature::any(2, Volatility::Immutable),
            }));
            return Ok(PlannerResult::Planned(Expr::ScalarFunction(
                datafusion::logical_expr::expr::ScalarFunction::new_udf(
                    udf,
                    vec![expr.left, expr.right],
                ),
            )));
        }
        // `||` and `-` of a jsonb make a new document (`||` with a jsonb on
        // either side: PostgreSQL types an untyped literal beside it as one).
        let is_jsonb = |e: &Expr| {
            e.to_field(schema)
                .ok()
                .and_then(|(_, field)| PgType::of_field(&field).ok())
                == Some(PgType::Jsonb)
        };
        let edit = match expr.op {
            BinaryOperator::StringConcat if is_jsonb(&expr.left) || is_jsonb(&expr.right) => {
                Some(Edit::Concat)
            }
            BinaryOperator::Minus if is_jsonb(&expr.left) => Some(Edit::Remove),
            _ => None,
        };
        if let Some(edit) = edit {
            return Ok(PlannerResult::Planned(Expr::ScalarFunction(
                datafusion::logical_expr::expr::ScalarFunction::new_udf(
                    Arc::new(JsonEdit::udf(edit)),
                    vec![expr.left, expr.right],
                ),
            )));
        }
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
