//! Making json and jsonb of SQL values: `to_json`, `to_jsonb`,
//! `json_build_object`, `jsonb_build_object`, `json_build_array`,
//! `jsonb_build_array`, the aggregates `json_agg` and `jsonb_agg`, and the
//! jsonb operators `||` (concatenate) and `-` (remove).
//!
//! A value becomes JSON as PostgreSQL's `to_json` makes it: numbers and
//! booleans as themselves (a float that is not finite as a string), json and
//! jsonb as their documents, timestamps and dates in ISO 8601
//! (`"2024-01-01T10:00:00+00:00"`), arrays as JSON arrays, anything else as
//! the string of its text form. json results keep PostgreSQL's spacing
//! (`{"a" : 1}`); jsonb results are normalised as stored jsonb is.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, ListArray, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use serde_json::Value;
use tempora_types::PgType;
use tempora_types::json::{normalize_jsonb, write_jsonb, write_string};
use tempora_types::text::format_value;

use crate::error::{Error, from_types};

fn invalid(message: impl Into<String>) -> DataFusionError {
    Error::InvalidParameter {
        message: message.into(),
    }
    .into()
}

/// The PgType of a value of `field`; of an array's elements for a list.
fn pg_type_of(field: &Field) -> Result<PgType> {
    PgType::of_field(field).map_err(from_types)
}

/// Writes row `row` of `array` (of type `pg_type`) as JSON, as `to_json`
/// makes it.
pub(crate) fn write_json(
    array: &dyn Array,
    row: usize,
    pg_type: PgType,
    out: &mut String,
) -> Result<()> {
    if array.is_null(row) || array.data_type() == &DataType::Null {
        out.push_str("null");
        return Ok(());
    }
    if let DataType::List(element) = array.data_type() {
        let values = array.as_list::<i32>().value(row);
        let element_type = pg_type_of(element)?;
        out.push('[');
        for index in 0..values.len() {
            if index > 0 {
                out.push(',');
            }
            write_json(values.as_ref(), index, element_type, out)?;
        }
        out.push(']');
        return Ok(());
    }
    let mut text = String::new();
    format_value(array, row, pg_type, &mut text).map_err(from_types)?;
    match pg_type {
        PgType::Bool => out.push_str(if text == "t" { "true" } else { "false" }),
        PgType::Int2 | PgType::Int4 | PgType::Int8 | PgType::Oid => out.push_str(&text),
        PgType::Float4 | PgType::Float8 | PgType::Numeric { .. } => {
            // NaN and the infinities are no JSON numbers.
            if text.bytes().any(|b| b.is_ascii_alphabetic() && b != b'e') {
                write_string(&text, out);
            } else {
                out.push_str(&text);
            }
        }
        PgType::Json | PgType::Jsonb => out.push_str(&text),
        PgType::Timestamptz | PgType::Timestamp | PgType::Date => {
            write_string(&iso_datetime(&text), out)
        }
        _ => write_string(&text, out),
    }
    Ok(())
}

/// PostgreSQL's text of a timestamp in ISO 8601 (`2024-01-01 10:00:00+00`
/// is `2024-01-01T10:00:00+00:00`); `infinity` stays as it is.
fn iso_datetime(text: &str) -> String {
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return text.to_owned();
    }
    let mut iso = text.replacen(' ', "T", 1);
    // A zone offset of whole hours gains its minutes.
    let bytes = iso.as_bytes();
    if bytes.len() > 3 {
        let sign = bytes[bytes.len() - 3];
        if (sign == b'+' || sign == b'-') && iso.contains('T') {
            iso.push_str(":00");
        }
    }
    iso
}

/// The JSON of each of `arrays`' row `row`.
fn fragments(arrays: &[ArrayRef], types: &[PgType], row: usize) -> Result<Vec<String>> {
    arrays
        .iter()
        .zip(types)
        .map(|(array, pg_type)| {
            let mut out = String::new();
            write_json(array.as_ref(), row, *pg_type, &mut out)?;
            Ok(out)
        })
        .collect()
}

/// A document as jsonb's stored form.
fn as_jsonb(json: &str) -> Result<String> {
    normalize_jsonb(json).map_err(from_types)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Build {
    Object,
    Array,
    /// `to_json`: the one argument itself.
    Value,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuild {
    name: &'static str,
    build: Build,
    jsonb: bool,
    signature: Signature,
}

impl JsonBuild {
    fn result_type(&self) -> PgType {
        if self.jsonb {
            PgType::Jsonb
        } else {
            PgType::Json
        }
    }

    fn build(&self, arrays: &[ArrayRef], types: &[PgType], row: usize) -> Result<String> {
        let values = fragments(arrays, types, row)?;
        let json = match self.build {
            Build::Value => values
                .into_iter()
                .next()
                .unwrap_or_else(|| "null".to_owned()),
            Build::Array => format!("[{}]", values.join(", ")),
            Build::Object => {
                if !values.len().is_multiple_of(2) {
                    return Err(invalid("argument list must have even number of elements"));
                }
                let mut members = Vec::with_capacity(values.len() / 2);
                for (pair, index) in values.chunks(2).zip((0..).step_by(2)) {
                    let key_array = &arrays[index];
                    if key_array.is_null(row) || key_array.data_type() == &DataType::Null {
                        return Err(invalid(format!(
                            "argument {}: key must not be null",
                            index + 1
                        )));
                    }
                    let mut key = String::new();
                    format_value(key_array.as_ref(), row, types[index], &mut key)
                        .map_err(from_types)?;
                    let mut member = String::new();
                    write_string(&key, &mut member);
                    member.push_str(" : ");
                    member.push_str(&pair[1]);
                    members.push(member);
                }
                format!("{{{}}}", members.join(", "))
            }
        };
        if self.jsonb {
            as_jsonb(&json)
        } else {
            Ok(json)
        }
    }
}

impl ScalarUDFImpl for JsonBuild {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        Ok(Arc::new(self.result_type().arrow_field(self.name, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<_>>()?;
        let types: Vec<PgType> = args
            .arg_fields
            .iter()
            .map(|f| pg_type_of(f))
            .collect::<Result<_>>()?;
        let mut out = StringBuilder::new();
        for row in 0..rows {
            // to_json of NULL is NULL; the builders make JSON nulls of them.
            if self.build == Build::Value && arrays.first().is_some_and(|a| a.is_null(row)) {
                out.append_null();
                continue;
            }
            out.append_value(self.build(&arrays, &types, row)?);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

pub(crate) fn functions() -> Vec<ScalarUDF> {
    let variadic = || {
        Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Stable,
        )
    };
    [
        ("json_build_object", Build::Object, false),
        ("jsonb_build_object", Build::Object, true),
        ("json_build_array", Build::Array, false),
        ("jsonb_build_array", Build::Array, true),
        ("to_json", Build::Value, false),
        ("to_jsonb", Build::Value, true),
    ]
    .into_iter()
    .map(|(name, build, jsonb)| {
        let signature = match build {
            Build::Value => Signature::any(1, Volatility::Stable),
            _ => variadic(),
        };
        ScalarUDF::from(JsonBuild {
            name,
            build,
            jsonb,
            signature,
        })
    })
    .collect()
}

/// `json_agg(x)` and `jsonb_agg(x)`: the values of a group as a JSON array.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonAgg {
    name: &'static str,
    jsonb: bool,
    signature: Signature,
}

pub(crate) fn aggregates() -> Vec<AggregateUDF> {
    [("json_agg", false), ("jsonb_agg", true)]
        .into_iter()
        .map(|(name, jsonb)| {
            AggregateUDF::from(JsonAgg {
                name,
                jsonb,
                signature: Signature::any(1, Volatility::Stable),
            })
        })
        .collect()
}

impl AggregateUDFImpl for JsonAgg {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field(&self, _arg_fields: &[FieldRef]) -> Result<FieldRef> {
        let pg_type = if self.jsonb {
            PgType::Jsonb
        } else {
            PgType::Json
        };
        Ok(Arc::new(pg_type.arrow_field(self.name, true)))
    }
    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let list = |suffix: &str, element: DataType| {
            Arc::new(Field::new_list(
                format!("{}_{suffix}", args.name),
                Field::new_list_field(element, true),
                true,
            ))
        };
        Ok(vec![
            list("values", DataType::Utf8),
            list("order", DataType::Binary),
        ])
    }
    /// `json_agg(x ORDER BY y)`: DataFusion hands the accumulator the
    /// ordering columns after the argument; it sorts by them itself.
    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let order = match args.order_bys {
            [] => None,
            sort => {
                let fields = sort
                    .iter()
                    .map(|s| {
                        Ok(SortField::new_with_options(
                            s.expr.data_type(args.schema)?,
                            s.options,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(RowConverter::new(fields)?)
            }
        };
        Ok(Box::new(JsonAggAccumulator {
            pg_type: pg_type_of(&args.expr_fields[0])?,
            jsonb: self.jsonb,
            order,
            values: Vec::new(),
        }))
    }
}

/// The JSON of a group's values, each with its ordering key (the ORDER BY
/// columns in Arrow's row format, which sorts as they do) when there is one.
#[derive(Debug)]
struct JsonAggAccumulator {
    pg_type: PgType,
    jsonb: bool,
    order: Option<RowConverter>,
    values: Vec<(String, Vec<u8>)>,
}

fn list_of(values: ArrayRef) -> ScalarValue {
    let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    let offsets = datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]);
    ScalarValue::List(Arc::new(ListArray::new(field, offsets, values, None)))
}

impl Accumulator for JsonAggAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let array = &values[0];
        let keys = match &self.order {
            Some(converter) => Some(converter.convert_columns(&values[1..])?),
            None => None,
        };
        for row in 0..array.len() {
            let mut out = String::new();
            write_json(array.as_ref(), row, self.pg_type, &mut out)?;
            let key = keys
                .as_ref()
                .map_or_else(Vec::new, |k| k.row(row).as_ref().to_vec());
            self.values.push((out, key));
        }
        Ok(())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (texts, keys) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..texts.len() {
            if texts.is_null(row) {
                continue;
            }
            let (text_list, key_list) = (texts.value(row), keys.value(row));
            let (text_list, key_list) = (text_list.as_string::<i32>(), key_list.as_binary::<i32>());
            for i in 0..text_list.len() {
                self.values
                    .push((text_list.value(i).to_owned(), key_list.value(i).to_vec()));
            }
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let texts: ArrayRef = Arc::new(StringArray::from_iter_values(
            self.values.iter().map(|(t, _)| t),
        ));
        let keys: ArrayRef = Arc::new(BinaryArray::from_iter_values(
            self.values.iter().map(|(_, k)| k),
        ));
        Ok(vec![list_of(texts), list_of(keys)])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.values.is_empty() {
            return Ok(ScalarValue::Utf8(None));
        }
        if self.order.is_some() {
            // Stable: rows with equal keys keep the order they came in.
            self.values.sort_by(|a, b| a.1.cmp(&b.1));
        }
        let texts: Vec<&str> = self.values.iter().map(|(t, _)| t.as_str()).collect();
        let json = format!("[{}]", texts.join(", "));
        let json = if self.jsonb { as_jsonb(&json)? } else { json };
        Ok(ScalarValue::Utf8(Some(json)))
    }
    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .values
                .iter()
                .map(|(t, k)| t.capacity() + k.capacity() + 48)
                .sum::<usize>()
    }
}

/// The jsonb operators that make a new document: `||` and `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Edit {
    Concat,
    Remove,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct JsonEdit {
    edit: Edit,
    signature: Signature,
}

impl JsonEdit {
    pub(crate) fn udf(edit: Edit) -> ScalarUDF {
        ScalarUDF::from(JsonEdit {
            edit,
            signature: Signature::any(2, Volatility::Immutable),
        })
    }
}

/// `left || right`: objects merge (the right's keys win); otherwise both
/// sides, a non-array as an array of itself, are concatenated.
fn concat(left: Value, right: Value) -> Value {
    match (left, right) {
        (Value::Object(mut left), Value::Object(right)) => {
            left.extend(right);
            Value::Object(left)
        }
        (left, right) => {
            let as_items = |v: Value| match v {
                Value::Array(items) => items,
                other => vec![other],
            };
            let mut items = as_items(left);
            items.extend(as_items(right));
            Value::Array(items)
        }
    }
}

/// `document - key` (a key of an object, or equal strings of an array) or
/// `document - index` (an element of an array, negative from its end).
fn remove(document: Value, operand: &ScalarValue) -> Result<Value> {
    if let ScalarValue::List(keys) = operand {
        // `document - text[]`: each key in turn.
        let keys = datafusion::arrow::compute::cast(keys.values(), &DataType::Utf8)?;
        let keys = keys.as_string::<i32>();
        return (0..keys.len())
            .filter(|i| keys.is_valid(*i))
            .try_fold(document, |document, i| {
                remove(document, &ScalarValue::Utf8(Some(keys.value(i).to_owned())))
            });
    }
    let key = match operand {
        ScalarValue::Utf8(Some(key))
        | ScalarValue::LargeUtf8(Some(key))
        | ScalarValue::Utf8View(Some(key)) => Some(key.clone()),
        _ => None,
    };
    let index = match operand {
        ScalarValue::Int8(Some(i)) => Some(i64::from(*i)),
        ScalarValue::Int16(Some(i)) => Some(i64::from(*i)),
        ScalarValue::Int32(Some(i)) => Some(i64::from(*i)),
        ScalarValue::Int64(Some(i)) => Some(*i),
        _ => None,
    };
    match (document, index, key) {
        (_, None, None) => Err(invalid(format!(
            "cannot delete a {} from jsonb",
            operand.data_type()
        ))),
        (Value::Array(mut items), Some(index), _) => {
            let position = if index < 0 {
                items.len() as i64 + index
            } else {
                index
            };
            if let Ok(position) = usize::try_from(position)
                && position < items.len()
            {
                items.remove(position);
            }
            Ok(Value::Array(items))
        }
        (Value::Object(_), Some(_), _) => {
            Err(invalid("cannot delete from object using integer index"))
        }
        (Value::Object(mut members), None, Some(key)) => {
            members.shift_remove(&key);
            Ok(Value::Object(members))
        }
        (Value::Array(items), None, Some(key)) => Ok(Value::Array(
            items
                .into_iter()
                .filter(|item| item.as_str() != Some(key.as_str()))
                .collect(),
        )),
        _ => Err(invalid("cannot delete from scalar")),
    }
}

fn parse_jsonb(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|_| {
        from_types(tempora_types::Error::InvalidText {
            type_name: "json".to_owned(),
            input: text.to_owned(),
        })
    })
}

impl ScalarUDFImpl for JsonEdit {
    fn name(&self) -> &str {
        match self.edit {
            Edit::Concat => "jsonb_concat",
            Edit::Remove => "jsonb_delete",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        Ok(Arc::new(PgType::Jsonb.arrow_field(self.name(), true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [left, right] = args.args.as_slice() else {
            return exec_err!("{} takes two operands", self.name());
        };
        let (left, right) = (left.to_array(rows)?, right.to_array(rows)?);
        let right_type = pg_type_of(&args.arg_fields[1])?;
        let mut out = StringBuilder::new();
        for row in 0..rows {
            if left.is_null(row) || right.is_null(row) {
                out.append_null();
                continue;
            }
            let mut left_text = String::new();
            format_value(left.as_ref(), row, PgType::Jsonb, &mut left_text).map_err(from_types)?;
            let document = parse_jsonb(&left_text)?;
            let result = match self.edit {
                Edit::Concat => {
                    let mut right_text = String::new();
                    format_value(right.as_ref(), row, right_type, &mut right_text)
                        .map_err(from_types)?;
                    concat(document, parse_jsonb(&right_text)?)
                }
                Edit::Remove => {
                    let operand = ScalarValue::try_from_array(right.as_ref(), row)?;
                    remove(document, &operand)?
                }
            };
            let mut text = String::new();
            write_jsonb(&result, &mut text);
            out.append_value(text);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_in_iso_8601() {
        assert_eq!(
            iso_datetime("2024-01-01 10:00:00+00"),
            "2024-01-01T10:00:00+00:00"
        );
        assert_eq!(
            iso_datetime("2024-01-01 10:00:00.5+05:30"),
            "2024-01-01T10:00:00.5+05:30"
        );
        assert_eq!(iso_datetime("2024-01-01 10:00:00"), "2024-01-01T10:00:00");
        assert_eq!(iso_datetime("2024-01-01"), "2024-01-01");
        assert_eq!(iso_datetime("infinity"), "infinity");
    }

    #[test]
    fn concatenation_merges_objects_and_appends_otherwise() {
        let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert_eq!(
            concat(json(r#"{"a":1,"b":2}"#), json(r#"{"a":3}"#)),
            json(r#"{"a":3,"b":2}"#)
        );
        assert_eq!(
            concat(json("[1]"), json(r#"{"a":1}"#)),
            json(r#"[1,{"a":1}]"#)
        );
        assert_eq!(concat(json("1"), json("[2]")), json("[1,2]"));
        assert_eq!(concat(json("1"), json("2")), json("[1,2]"));
    }

    #[test]
    fn removal_takes_keys_strings_and_indexes() {
        let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        let key = |k: &str| ScalarValue::Utf8(Some(k.to_owned()));
        assert_eq!(
            remove(json(r#"{"a":1,"b":2}"#), &key("a")).unwrap(),
            json(r#"{"b":2}"#)
        );
        assert_eq!(
            remove(json(r#"["a","b","a"]"#), &key("a")).unwrap(),
            json(r#"["b"]"#)
        );
        assert_eq!(
            remove(json("[1,2,3]"), &ScalarValue::Int64(Some(-1))).unwrap(),
            json("[1,2]")
        );
        assert_eq!(
            remove(json("[1,2,3]"), &ScalarValue::Int64(Some(7))).unwrap(),
            json("[1,2,3]")
        );
        assert!(remove(json(r#"{"a":1}"#), &ScalarValue::Int32(Some(0))).is_err());
        assert!(remove(json("1"), &key("a")).is_err());
    }
}
