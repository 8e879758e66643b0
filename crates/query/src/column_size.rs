//! `pg_column_size(value)`: the bytes PostgreSQL would store the value in
//! (seed 001 sums it over a jsonb column), by the rules of
//! [`tempora_types::storage_size`]. It is PostgreSQL's figure, not
//! tempora's: tempora's columns are compressed column-wise, so a value
//! alone has no size of its own here.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, not_impl_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use tempora_types::PgType;
use tempora_types::storage_size::{jsonb_data_size, numeric_data_size, stored_varlena};
use tempora_types::text::format_value;

use crate::error::from_types;

#[derive(Debug, PartialEq, Eq, Hash)]
struct ColumnSize {
    signature: Signature,
}

pub(crate) fn pg_column_size() -> ScalarUDF {
    ScalarUDF::from(ColumnSize {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// The width of a fixed-width type, None for a varlena.
fn fixed_width(pg_type: PgType) -> Option<i32> {
    Some(match pg_type {
        PgType::Bool | PgType::Char => 1,
        PgType::Int2 => 2,
        PgType::Int4 | PgType::Float4 | PgType::Date | PgType::Oid => 4,
        PgType::Int8 | PgType::Float8 | PgType::Timestamp | PgType::Timestamptz => 8,
        PgType::Interval | PgType::Uuid => 16,
        PgType::Name => 64,
        _ => return None,
    })
}

/// The bytes of a string or binary value, whichever Arrow layout holds it.
fn bytes_at(array: &dyn Array, row: usize) -> Result<&[u8]> {
    Ok(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).as_bytes(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).as_bytes(),
        DataType::Utf8View => array.as_string_view().value(row).as_bytes(),
        DataType::Binary => array.as_binary::<i32>().value(row),
        DataType::LargeBinary => array.as_binary::<i64>().value(row),
        DataType::BinaryView => array.as_binary_view().value(row),
        other => return exec_err!("pg_column_size cannot read a {other} value"),
    })
}

impl ScalarUDFImpl for ColumnSize {
    fn name(&self) -> &str {
        "pg_column_size"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (Some(field), Some(value)) = (args.arg_fields.first(), args.args.first()) else {
            return exec_err!("function pg_column_size takes one argument");
        };
        let array = value.to_array(args.number_rows)?;
        if field.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Array(Arc::new(Int32Array::new_null(
                array.len(),
            ))));
        }
        let pg_type = PgType::of_field(field).map_err(from_types)?;
        let size = |row: usize| -> Result<Option<i32>> {
            if array.is_null(row) {
                return Ok(None);
            }
            if let Some(width) = fixed_width(pg_type) {
                return Ok(Some(width));
            }
            let data = match pg_type {
                PgType::Bytea => bytes_at(array.as_ref(), row)?.len(),
                PgType::Text | PgType::Varchar { .. } | PgType::Json => {
                    bytes_at(array.as_ref(), row)?.len()
                }
                PgType::Jsonb => {
                    let text = String::from_utf8_lossy(bytes_at(array.as_ref(), row)?);
                    match serde_json::from_str(&text) {
                        Ok(value) => jsonb_data_size(&value),
                        Err(_) => return exec_err!("invalid jsonb value {text:?}"),
                    }
                }
                PgType::Numeric { .. } => {
                    let mut text = String::new();
                    format_value(array.as_ref(), row, pg_type, &mut text).map_err(from_types)?;
                    match numeric_data_size(&text) {
                        Some(size) => size,
                        None => return exec_err!("invalid numeric value {text:?}"),
                    }
                }
                other => return not_impl_err!("pg_column_size of type {other} is not supported"),
            };
            Ok(Some(stored_varlena(data) as i32))
        };
        let sizes = (0..array.len()).map(size).collect::<Result<Int32Array>>()?;
        Ok(ColumnarValue::Array(Arc::new(sizes)))
    }
}
