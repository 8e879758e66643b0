//! Whole columns in their wire form, for result rows.
//!
//! A result batch goes to the client row by row, but its values are encoded
//! column by column: [`WireColumn::encode`] looks at the column's Arrow type
//! once and then runs one tight loop over its values, where the per-value
//! functions ([`crate::binary::encode_value`], [`crate::text::format_value`])
//! would look it up again for every value. Types without a loop of their own
//! go through those functions value by value, so every type encodes exactly
//! as they define it; the tests check that the loops agree with them.

use datafusion::arrow::array::{Array, ArrowPrimitiveType, AsArray, PrimitiveArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};

use crate::datetime::{PG_EPOCH_DAYS, PG_EPOCH_MICROS};
use crate::{PgType, Result, binary, text};

/// The wire values of one column: their bytes one after another, and per
/// row the value's length, -1 for NULL (the layout of a DataRow field).
#[derive(Debug, Default)]
pub struct WireColumn {
    bytes: Vec<u8>,
    lengths: Vec<i32>,
    scratch: String,
}

impl WireColumn {
    pub fn new() -> Self {
        Self::default()
    }

    /// The values of `array` as `pg_type`, in binary or in text format;
    /// replaces what the column held, keeping its buffers.
    pub fn encode(&mut self, array: &dyn Array, pg_type: PgType, binary: bool) -> Result<()> {
        self.bytes.clear();
        self.lengths.clear();
        self.lengths.reserve(array.len());
        if array.data_type() == &DataType::Null {
            self.lengths.resize(array.len(), -1);
            return Ok(());
        }
        if binary {
            self.encode_binary(array, pg_type)
        } else {
            self.encode_text(array, pg_type)
        }
    }

    /// Bytes of all non-NULL values, in row order.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Per row, the length of its value in [`Self::bytes`], or -1 for NULL.
    pub fn lengths(&self) -> &[i32] {
        &self.lengths
    }

    fn encode_binary(&mut self, array: &dyn Array, pg_type: PgType) -> Result<()> {
        match (pg_type, array.data_type()) {
            (PgType::Int2, DataType::Int16) => {
                self.fixed(array.as_primitive::<Int16Type>(), i16::to_be_bytes)
            }
            (PgType::Int4, DataType::Int32) => {
                self.fixed(array.as_primitive::<Int32Type>(), i32::to_be_bytes)
            }
            (PgType::Int8, DataType::Int64) => {
                self.fixed(array.as_primitive::<Int64Type>(), i64::to_be_bytes)
            }
            (PgType::Float4, DataType::Float32) => {
                self.fixed(array.as_primitive::<Float32Type>(), f32::to_be_bytes)
            }
            (PgType::Float8, DataType::Float64) => {
                self.fixed(array.as_primitive::<Float64Type>(), f64::to_be_bytes)
            }
            (PgType::Date, DataType::Date32) => self
                .fixed(array.as_primitive::<Date32Type>(), |d| {
                    (d - PG_EPOCH_DAYS).to_be_bytes()
                }),
            (PgType::Timestamptz | PgType::Timestamp, DataType::Timestamp(unit, _)) => {
                let to_wire = |micros: i64| (micros - PG_EPOCH_MICROS).to_be_bytes();
                match unit {
                    TimeUnit::Microsecond => {
                        self.fixed(array.as_primitive::<TimestampMicrosecondType>(), to_wire)
                    }
                    TimeUnit::Millisecond => self
                        .fixed(array.as_primitive::<TimestampMillisecondType>(), |ms| {
                            to_wire(ms * 1_000)
                        }),
                    TimeUnit::Second => self
                        .fixed(array.as_primitive::<TimestampSecondType>(), |s| {
                            to_wire(s * 1_000_000)
                        }),
                    TimeUnit::Nanosecond => self
                        .fixed(array.as_primitive::<TimestampNanosecondType>(), |ns| {
                            to_wire(ns.div_euclid(1_000))
                        }),
                }
            }
            (PgType::Bool, DataType::Boolean) => {
                let values = array.as_boolean();
                for row in 0..values.len() {
                    if values.is_valid(row) {
                        self.bytes.push(values.value(row) as u8);
                        self.lengths.push(1);
                    } else {
                        self.lengths.push(-1);
                    }
                }
            }
            // Text-like types send their text as it is.
            (
                PgType::Text | PgType::Varchar { .. } | PgType::Name | PgType::Json,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View,
            ) => self.strings(array),
            _ => {
                for row in 0..array.len() {
                    let start = self.bytes.len();
                    if binary::encode_value(array, row, pg_type, &mut self.bytes)? {
                        self.lengths.push(wire_length(self.bytes.len() - start));
                    } else {
                        self.lengths.push(-1);
                    }
                }
            }
        }
        Ok(())
    }

    fn encode_text(&mut self, array: &dyn Array, pg_type: PgType) -> Result<()> {
        match array.data_type() {
            // The text form of a string is the string, whatever its PgType.
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => self.strings(array),
            DataType::Boolean => {
                let values = array.as_boolean();
                for row in 0..values.len() {
                    if values.is_valid(row) {
                        self.bytes.push(if values.value(row) { b't' } else { b'f' });
                        self.lengths.push(1);
                    } else {
                        self.lengths.push(-1);
                    }
                }
            }
            _ => {
                for row in 0..array.len() {
                    self.scratch.clear();
                    if text::format_value(array, row, pg_type, &mut self.scratch)? {
                        self.bytes.extend_from_slice(self.scratch.as_bytes());
                        self.lengths.push(wire_length(self.scratch.len()));
                    } else {
                        self.lengths.push(-1);
                    }
                }
            }
        }
        Ok(())
    }

    /// The values of a fixed-width type, each turned into its N bytes.
    fn fixed<T: ArrowPrimitiveType, const N: usize>(
        &mut self,
        array: &PrimitiveArray<T>,
        to_wire: impl Fn(T::Native) -> [u8; N],
    ) {
        self.bytes.reserve(N * array.len());
        let values = array.values();
        match array.nulls().filter(|nulls| nulls.null_count() > 0) {
            None => {
                for value in values.iter() {
                    self.bytes.extend_from_slice(&to_wire(*value));
                }
                self.lengths.resize(values.len(), N as i32);
            }
            Some(nulls) => {
                for (row, value) in values.iter().enumerate() {
                    if nulls.is_valid(row) {
                        self.bytes.extend_from_slice(&to_wire(*value));
                        self.lengths.push(N as i32);
                    } else {
                        self.lengths.push(-1);
                    }
                }
            }
        }
    }

    fn strings(&mut self, array: &dyn Array) {
        let mut push = |value: Option<&str>| match value {
            Some(value) => {
                self.bytes.extend_from_slice(value.as_bytes());
                self.lengths.push(wire_length(value.len()));
            }
            None => self.lengths.push(-1),
        };
        match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().iter().for_each(&mut push),
            DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(&mut push),
            _ => array.as_string_view().iter().for_each(&mut push),
        }
    }
}

/// A value's length as the wire's i32. Arrow's own offsets keep a string
/// under 2 GiB, and so does every encoding of a single value.
fn wire_length(length: usize) -> i32 {
    i32::try_from(length).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Float32Array, Float64Array, Int16Array, Int32Array,
        Int64Array, LargeStringArray, NullArray, StringArray, StringViewArray,
        TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
        TimestampSecondArray,
    };
    use proptest::prelude::*;

    use super::*;

    /// The wire values of a column as the per-value functions give them.
    fn value_by_value(array: &dyn Array, pg_type: PgType, binary: bool) -> Vec<Option<Vec<u8>>> {
        (0..array.len())
            .map(|row| {
                if binary {
                    let mut out = Vec::new();
                    binary::encode_value(array, row, pg_type, &mut out)
                        .unwrap()
                        .then_some(out)
                } else {
                    let mut out = String::new();
                    text::format_value(array, row, pg_type, &mut out)
                        .unwrap()
                        .then_some(out.into_bytes())
                }
            })
            .collect()
    }

    fn column_at_once(array: &dyn Array, pg_type: PgType, binary: bool) -> Vec<Option<Vec<u8>>> {
        let mut column = WireColumn::new();
        // A column is reused from batch to batch: encode something first.
        column
            .encode(&Int32Array::from(vec![Some(7), None]), PgType::Int4, binary)
            .unwrap();
        column.encode(array, pg_type, binary).unwrap();
        assert_eq!(column.lengths().len(), array.len());
        let mut at = 0;
        column
            .lengths()
            .iter()
            .map(|&length| {
                (length >= 0).then(|| {
                    let value = column.bytes()[at..at + length as usize].to_vec();
                    at += length as usize;
                    value
                })
            })
            .collect()
    }

    fn assert_agrees(array: ArrayRef, pg_type: PgType) {
        for binary in [false, true] {
            // Sliced too: a batch's arrays may start inside their buffers.
            for array in [
                array.clone(),
                array.slice(array.len().min(1), array.len() / 2),
            ] {
                assert_eq!(
                    column_at_once(array.as_ref(), pg_type, binary),
                    value_by_value(array.as_ref(), pg_type, binary),
                    "{pg_type} as {:?}, binary {binary}",
                    array.data_type()
                );
            }
        }
    }

    fn arrays(
        values: &[Option<i64>],
        floats: &[Option<f64>],
        strings: &[Option<String>],
    ) -> Vec<(ArrayRef, PgType)> {
        let utc = crate::UTC_ZONE;
        let micros = values
            .iter()
            .map(|v| v.map(|v| v % 9_000_000_000_000_000 / 32))
            .collect::<Vec<_>>();
        vec![
            (
                Arc::new(Int16Array::from_iter(
                    values.iter().map(|v| v.map(|v| v as i16)),
                )),
                PgType::Int2,
            ),
            (
                Arc::new(Int32Array::from_iter(
                    values.iter().map(|v| v.map(|v| v as i32)),
                )),
                PgType::Int4,
            ),
            (
                Arc::new(Int64Array::from_iter(values.iter().copied())),
                PgType::Int8,
            ),
            // Widened on the way out, as `SELECT smallint_col::bigint` is not.
            (
                Arc::new(Int32Array::from_iter(
                    values.iter().map(|v| v.map(|v| v as i32)),
                )),
                PgType::Int8,
            ),
            (
                Arc::new(Float32Array::from_iter(
                    floats.iter().map(|v| v.map(|v| v as f32)),
                )),
                PgType::Float4,
            ),
            (
                Arc::new(Float64Array::from_iter(floats.iter().copied())),
                PgType::Float8,
            ),
            (
                Arc::new(Date32Array::from_iter(
                    values.iter().map(|v| v.map(|v| (v % 2_000_000) as i32)),
                )),
                PgType::Date,
            ),
            (
                Arc::new(
                    TimestampMicrosecondArray::from_iter(micros.iter().copied()).with_timezone(utc),
                ),
                PgType::Timestamptz,
            ),
            (
                Arc::new(TimestampMicrosecondArray::from_iter(micros.iter().copied())),
                PgType::Timestamp,
            ),
            (
                Arc::new(
                    TimestampMillisecondArray::from_iter(
                        micros.iter().map(|v| v.map(|v| v / 1_000)),
                    )
                    .with_timezone(utc),
                ),
                PgType::Timestamptz,
            ),
            (
                Arc::new(TimestampSecondArray::from_iter(
                    micros.iter().map(|v| v.map(|v| v / 1_000_000)),
                )),
                PgType::Timestamp,
            ),
            (
                Arc::new(
                    TimestampNanosecondArray::from_iter(micros.iter().copied()).with_timezone(utc),
                ),
                PgType::Timestamptz,
            ),
            (
                Arc::new(BooleanArray::from_iter(
                    values.iter().map(|v| v.map(|v| v % 2 == 0)),
                )),
                PgType::Bool,
            ),
            (
                Arc::new(StringArray::from_iter(strings.iter().cloned())),
                PgType::Text,
            ),
            (
                Arc::new(LargeStringArray::from_iter(strings.iter().cloned())),
                PgType::Varchar { max_chars: Some(9) },
            ),
            (
                Arc::new(StringViewArray::from_iter(strings.iter().cloned())),
                PgType::Name,
            ),
            // Types that go value by value: uuid and jsonb keep their own forms.
            (
                Arc::new(StringArray::from_iter(strings.iter().map(|s| {
                    s.as_ref()
                        .map(|_| "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_string())
                }))),
                PgType::Uuid,
            ),
            (
                Arc::new(StringArray::from_iter(strings.iter().map(|s| {
                    s.as_ref()
                        .map(|s| serde_json::json!({ "s": s }).to_string())
                }))),
                PgType::Jsonb,
            ),
            (Arc::new(NullArray::new(values.len())), PgType::Text),
        ]
    }

    proptest! {
        #[test]
        fn columns_encode_as_their_values_do(
            values in prop::collection::vec(prop::option::weighted(0.8, any::<i64>()), 0..40),
            floats in prop::collection::vec(prop::option::weighted(0.8, prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0),
            ]), 0..40),
            strings in prop::collection::vec(prop::option::weighted(0.8, "[a-z0-9 éü]{0,12}"), 0..40),
        ) {
            for (array, pg_type) in arrays(&values, &floats, &strings) {
                assert_agrees(array, pg_type);
            }
        }
    }

    #[test]
    fn a_column_without_nulls_keeps_every_length() {
        let mut column = WireColumn::new();
        column
            .encode(&Float64Array::from(vec![1.5, -2.0]), PgType::Float8, true)
            .unwrap();
        assert_eq!(column.lengths(), &[8, 8]);
        assert_eq!(&column.bytes()[..8], &1.5f64.to_be_bytes());
        column
            .encode(
                &StringArray::from(vec![Some("dev"), None, Some("")]),
                PgType::Text,
                false,
            )
            .unwrap();
        assert_eq!(column.lengths(), &[3, -1, 0]);
        assert_eq!(column.bytes(), b"dev");
    }
}
