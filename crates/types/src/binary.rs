//! PostgreSQL's binary format for result values and parameters.
//!
//! Encoding writes one Arrow value in the byte layout PostgreSQL's `*send`
//! functions produce. Decoding turns a binary parameter into its text form,
//! which then goes through the same parser as text parameters, so both
//! formats share one validation path. [`append_binary`] skips the text
//! where the parameter's type is its column's own and the value is one the
//! text would carry unchanged; a property test holds it to the text path.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, IntervalMonthDayNanoType, IntervalUnit, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};

use crate::datetime::{
    PG_EPOCH_DAYS, PG_EPOCH_MICROS, format_date, format_interval, format_timestamp,
};
use crate::text::{ColumnBuilder, format_decimal, format_value, timestamp_micros};
use crate::{Error, PgType, Result};

fn invalid(pg_type: PgType) -> Error {
    Error::InvalidBinary {
        type_name: pg_type.to_string(),
    }
}

/// Appends the binary form of `array[row]` as `pg_type`. Returns false for NULL.
pub fn encode_value(
    array: &dyn Array,
    row: usize,
    pg_type: PgType,
    out: &mut Vec<u8>,
) -> Result<bool> {
    // A NullArray keeps no null buffer: its values are NULL by its type.
    if array.is_null(row) || array.data_type() == &DataType::Null {
        return Ok(false);
    }
    match (pg_type, array.data_type()) {
        (PgType::Bool, DataType::Boolean) => out.push(array.as_boolean().value(row) as u8),
        (PgType::Int2, _) | (PgType::Int4, _) | (PgType::Int8, _) | (PgType::Oid, _)
            if array.data_type().is_integer() =>
        {
            let value = integer_value(array, row)?;
            match pg_type {
                PgType::Int2 => out.extend_from_slice(&(value as i16).to_be_bytes()),
                PgType::Int4 => out.extend_from_slice(&(value as i32).to_be_bytes()),
                PgType::Oid => out.extend_from_slice(&(value as u32).to_be_bytes()),
                _ => out.extend_from_slice(&(value as i64).to_be_bytes()),
            }
        }
        (PgType::Char, _) => {
            let mut text = String::new();
            format_value(array, row, pg_type, &mut text)?;
            out.extend_from_slice(&text.as_bytes()[..text.len().min(1)]);
        }
        (PgType::Float4, DataType::Float32) => {
            out.extend_from_slice(&array.as_primitive::<Float32Type>().value(row).to_be_bytes())
        }
        (PgType::Float4, DataType::Float16) => {
            let value = array
                .as_primitive::<datafusion::arrow::datatypes::Float16Type>()
                .value(row);
            out.extend_from_slice(&f32::from(value).to_be_bytes())
        }
        (PgType::Float8, DataType::Float64) => {
            out.extend_from_slice(&array.as_primitive::<Float64Type>().value(row).to_be_bytes())
        }
        (PgType::Numeric { .. }, DataType::Decimal128(_, scale)) => encode_numeric(
            array.as_primitive::<Decimal128Type>().value(row),
            *scale,
            pg_type.trims_numeric_zeros(),
            out,
        ),
        (PgType::Timestamptz | PgType::Timestamp, DataType::Timestamp(unit, _)) => {
            let micros = timestamp_micros(array, row, unit);
            out.extend_from_slice(&(micros - PG_EPOCH_MICROS).to_be_bytes());
        }
        (PgType::Date, DataType::Date32) => {
            let days = array.as_primitive::<Date32Type>().value(row);
            out.extend_from_slice(&(days - PG_EPOCH_DAYS).to_be_bytes());
        }
        (PgType::Interval, DataType::Interval(IntervalUnit::MonthDayNano)) => {
            let interval = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            out.extend_from_slice(&(interval.nanoseconds / 1_000).to_be_bytes());
            out.extend_from_slice(&interval.days.to_be_bytes());
            out.extend_from_slice(&interval.months.to_be_bytes());
        }
        (PgType::Uuid, _) => {
            let mut text = String::new();
            format_value(array, row, pg_type, &mut text)?;
            let hex: String = text.chars().filter(|c| *c != '-').collect();
            for index in 0..16 {
                let byte = hex
                    .get(index * 2..index * 2 + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(|| invalid(pg_type))?;
                out.push(byte);
            }
        }
        (PgType::Jsonb, _) => {
            out.push(1);
            let mut text = String::new();
            format_value(array, row, pg_type, &mut text)?;
            out.extend_from_slice(text.as_bytes());
        }
        (PgType::Bytea, DataType::Binary) => {
            out.extend_from_slice(array.as_binary::<i32>().value(row))
        }
        (PgType::Bytea, DataType::LargeBinary) => {
            out.extend_from_slice(array.as_binary::<i64>().value(row))
        }
        (PgType::Bytea, DataType::BinaryView) => {
            out.extend_from_slice(array.as_binary_view().value(row))
        }
        (PgType::Bytea, DataType::FixedSizeBinary(_)) => {
            out.extend_from_slice(array.as_fixed_size_binary().value(row))
        }
        (_, DataType::List(_)) if pg_type.element().is_some() => {
            encode_array(array, row, pg_type, out)?
        }
        (PgType::Record, DataType::Struct(_)) => {
            // Field count, then per field its type OID and value.
            let record = array.as_struct();
            out.extend_from_slice(&(record.num_columns() as i32).to_be_bytes());
            for (index, column) in record.columns().iter().enumerate() {
                let field_type = PgType::of_field(record.fields()[index].as_ref())?;
                out.extend_from_slice(&(field_type.oid() as i32).to_be_bytes());
                let length_at = out.len();
                out.extend_from_slice(&(-1i32).to_be_bytes());
                if encode_value(column.as_ref(), row, field_type, out)? {
                    let length = (out.len() - length_at - 4) as i32;
                    out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
                }
            }
        }
        // Text-like types (text, varchar, json) and everything whose binary form is its text.
        _ => {
            let mut text = String::new();
            format_value(array, row, pg_type, &mut text)?;
            out.extend_from_slice(text.as_bytes());
        }
    }
    Ok(true)
}

fn integer_value(array: &dyn Array, row: usize) -> Result<i128> {
    Ok(match array.data_type() {
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row) as i128,
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row) as i128,
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row) as i128,
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row) as i128,
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row) as i128,
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row) as i128,
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row) as i128,
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row) as i128,
        other => {
            return Err(Error::UnsupportedArrowType {
                data_type: other.to_string(),
            });
        }
    })
}

/// PostgreSQL's numeric wire layout: ndigits, weight, sign, dscale, then
/// base-10000 digits. With `trim` (unconstrained numeric, printed without
/// trailing zeros), the display scale is that of the text form, so binary
/// and text clients see the same value.
fn encode_numeric(value: i128, scale: i8, trim: bool, out: &mut Vec<u8>) {
    let negative = value < 0;
    let mut text = String::new();
    format_decimal(value.abs(), scale, trim, &mut text);
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let dscale = frac_part.len() as i16;
    let int_part = int_part.trim_start_matches('0');
    // Left-pad the integer part and right-pad the fraction to whole groups of 4.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let padded_int = format!("{}{}", "0".repeat(int_pad), int_part);
    let padded_frac = format!("{}{}", frac_part, "0".repeat(frac_pad));
    let mut digits: Vec<i16> = padded_int
        .as_bytes()
        .chunks(4)
        .chain(padded_frac.as_bytes().chunks(4))
        .map(|group| {
            group
                .iter()
                .fold(0i16, |acc, b| acc * 10 + (b - b'0') as i16)
        })
        .collect();
    let mut weight = (padded_int.len() / 4) as i16 - 1;
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    let sign: u16 = if negative && !digits.is_empty() {
        0x4000
    } else {
        0
    };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for digit in digits {
        out.extend_from_slice(&digit.to_be_bytes());
    }
}

fn encode_array(array: &dyn Array, row: usize, pg_type: PgType, out: &mut Vec<u8>) -> Result<()> {
    let list = array.as_list::<i32>();
    let values = list.value(row);
    let item_type = pg_type.element().unwrap_or(PgType::Text);
    let values = if item_type == PgType::Float8 && values.data_type() != &DataType::Float64 {
        datafusion::arrow::compute::cast(&values, &DataType::Float64)
            .map_err(|_| invalid(pg_type))?
    } else {
        values
    };
    let has_nulls = values.null_count() > 0;
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&(has_nulls as i32).to_be_bytes());
    out.extend_from_slice(&(item_type.oid() as i32).to_be_bytes());
    out.extend_from_slice(&(values.len() as i32).to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for index in 0..values.len() {
        let length_at = out.len();
        out.extend_from_slice(&(-1i32).to_be_bytes());
        if encode_value(values.as_ref(), index, item_type, out)? {
            let length = (out.len() - length_at - 4) as i32;
            out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        }
    }
    Ok(())
}

fn take<const N: usize>(bytes: &[u8], pg_type: PgType) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| invalid(pg_type))
}

fn datetime_out_of_range() -> Error {
    Error::DatetimeOutOfRange {
        input: "timestamp out of range".to_owned(),
    }
}

/// The instants from 0001-01-01 to 9999-12-31 (microseconds since 1970):
/// where the text form of a timestamp reads back as the same value.
const PLAIN_MICROS: std::ops::RangeInclusive<i64> =
    -62_135_596_800_000_000..=253_402_300_799_999_999;

/// The days of [`PLAIN_MICROS`], since 1970.
const PLAIN_DAYS: std::ops::RangeInclusive<i32> = -719_162..=2_932_896;

/// Appends binary parameter `bytes`, sent as `pg_type`, to `builder`, as
/// appending its text (`decode_to_text`) would.
pub fn append_binary(builder: &mut ColumnBuilder, pg_type: PgType, bytes: &[u8]) -> Result<()> {
    if append_exact(builder, pg_type, bytes) {
        return Ok(());
    }
    let utf8 = |bytes| std::str::from_utf8(bytes).map_err(|_| invalid(pg_type));
    match pg_type {
        // Text is sent as itself: no copy of it.
        PgType::Text | PgType::Varchar { .. } | PgType::Json | PgType::Name | PgType::Char => {
            builder.append_text(utf8(bytes)?)
        }
        PgType::Jsonb => match bytes.split_first() {
            Some((1, rest)) => builder.append_text(utf8(rest)?),
            _ => Err(invalid(pg_type)),
        },
        _ => builder.append_text(&decode_to_text(pg_type, bytes)?),
    }
}

/// Appends a binary parameter of the builder's own type straight to it;
/// false, appending nothing, where the text path must decide.
fn append_exact(builder: &mut ColumnBuilder, pg_type: PgType, bytes: &[u8]) -> bool {
    match (builder, pg_type) {
        (ColumnBuilder::Bool(b), PgType::Bool) => match bytes {
            [byte] => b.append_value(*byte != 0),
            _ => return false,
        },
        (ColumnBuilder::Int2(b), PgType::Int2) => match bytes.try_into() {
            Ok(raw) => b.append_value(i16::from_be_bytes(raw)),
            Err(_) => return false,
        },
        (ColumnBuilder::Int4(b), PgType::Int4) => match bytes.try_into() {
            Ok(raw) => b.append_value(i32::from_be_bytes(raw)),
            Err(_) => return false,
        },
        (ColumnBuilder::Int8(b), PgType::Int8) => match bytes.try_into() {
            Ok(raw) => b.append_value(i64::from_be_bytes(raw)),
            Err(_) => return false,
        },
        (ColumnBuilder::Float4(b), PgType::Float4) => match bytes.try_into() {
            Ok(raw) => b.append_value(f32::from_be_bytes(raw)),
            Err(_) => return false,
        },
        (ColumnBuilder::Float8(b), PgType::Float8) => match bytes.try_into() {
            Ok(raw) => b.append_value(f64::from_be_bytes(raw)),
            Err(_) => return false,
        },
        (
            ColumnBuilder::Timestamp { builder, with_zone },
            PgType::Timestamptz | PgType::Timestamp,
        ) if *with_zone == (pg_type == PgType::Timestamptz) => {
            let micros = bytes
                .try_into()
                .ok()
                .and_then(|raw| i64::from_be_bytes(raw).checked_add(PG_EPOCH_MICROS));
            match micros {
                Some(micros) if PLAIN_MICROS.contains(&micros) => builder.append_value(micros),
                _ => return false,
            }
        }
        (ColumnBuilder::Date(b), PgType::Date) => {
            let days = bytes
                .try_into()
                .ok()
                .and_then(|raw| i32::from_be_bytes(raw).checked_add(PG_EPOCH_DAYS));
            match days {
                Some(days) if PLAIN_DAYS.contains(&days) => b.append_value(days),
                _ => return false,
            }
        }
        _ => return false,
    }
    true
}

/// Decodes a binary parameter into the text form PostgreSQL would print for it.
pub fn decode_to_text(pg_type: PgType, bytes: &[u8]) -> Result<String> {
    Ok(match pg_type {
        PgType::Bool => match bytes {
            [0] => "f".to_owned(),
            [_] => "t".to_owned(),
            _ => return Err(invalid(pg_type)),
        },
        PgType::Int2 => i16::from_be_bytes(take(bytes, pg_type)?).to_string(),
        PgType::Int4 => i32::from_be_bytes(take(bytes, pg_type)?).to_string(),
        PgType::Int8 => i64::from_be_bytes(take(bytes, pg_type)?).to_string(),
        PgType::Float4 => {
            let value = f32::from_be_bytes(take(bytes, pg_type)?);
            let mut out = String::new();
            crate::text::format_float(value as f64, 17, &mut out);
            out
        }
        PgType::Float8 => {
            let value = f64::from_be_bytes(take(bytes, pg_type)?);
            let mut out = String::new();
            crate::text::format_float(value, 17, &mut out);
            out
        }
        PgType::Numeric { .. } => decode_numeric(bytes).ok_or_else(|| invalid(pg_type))?,
        PgType::Timestamptz | PgType::Timestamp => {
            let micros = i64::from_be_bytes(take(bytes, pg_type)?)
                .checked_add(PG_EPOCH_MICROS)
                .ok_or_else(datetime_out_of_range)?;
            let mut out = String::new();
            format_timestamp(micros, pg_type == PgType::Timestamptz, &mut out)?;
            out
        }
        PgType::Date => {
            let days = i32::from_be_bytes(take(bytes, pg_type)?)
                .checked_add(PG_EPOCH_DAYS)
                .ok_or_else(datetime_out_of_range)?;
            let mut out = String::new();
            format_date(days, &mut out)?;
            out
        }
        PgType::Interval => {
            if bytes.len() != 16 {
                return Err(invalid(pg_type));
            }
            let micros = i64::from_be_bytes(take(&bytes[0..8], pg_type)?);
            let days = i32::from_be_bytes(take(&bytes[8..12], pg_type)?);
            let months = i32::from_be_bytes(take(&bytes[12..16], pg_type)?);
            let mut out = String::new();
            format_interval(
                datafusion::arrow::datatypes::IntervalMonthDayNano {
                    months,
                    days,
                    nanoseconds: micros * 1_000,
                },
                &mut out,
            );
            out
        }
        PgType::Uuid => {
            let raw: [u8; 16] = take(bytes, pg_type)?;
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            )
        }
        PgType::Jsonb => match bytes.split_first() {
            Some((1, rest)) => String::from_utf8(rest.to_vec()).map_err(|_| invalid(pg_type))?,
            _ => return Err(invalid(pg_type)),
        },
        PgType::Bytea => {
            let mut out = String::from("\\x");
            for b in bytes {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
        PgType::Text | PgType::Varchar { .. } | PgType::Json | PgType::Name | PgType::Char => {
            String::from_utf8(bytes.to_vec()).map_err(|_| invalid(pg_type))?
        }
        PgType::Oid => u32::from_be_bytes(take(bytes, pg_type)?).to_string(),
        PgType::Int8Array
        | PgType::TextArray
        | PgType::Float8Array
        | PgType::Int2Array
        | PgType::Int4Array
        | PgType::BoolArray
        | PgType::Int2Vector
        | PgType::OidVector
        | PgType::OidArray
        | PgType::NameArray
        | PgType::CharArray => decode_array(pg_type, bytes).ok_or_else(|| invalid(pg_type))?,
        PgType::Record => return Err(invalid(pg_type)),
    })
}

/// A one-dimensional array in binary (ndim, has-null flag, element OID,
/// then length and lower bound per dimension, then the elements, each with
/// its length) as its text form `{a,b}`. Elements are read as the array's
/// element type, whatever OID the client sent for them.
fn decode_array(pg_type: PgType, bytes: &[u8]) -> Option<String> {
    let element = pg_type.element()?;
    let read_i32 = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let dimensions = read_i32(0)?;
    if dimensions == 0 {
        return Some(if pg_type.is_vector() {
            String::new()
        } else {
            "{}".to_owned()
        });
    }
    if dimensions != 1 {
        return None;
    }
    let count = usize::try_from(read_i32(12)?).ok()?;
    let mut at = 20;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let length = read_i32(at)?;
        at += 4;
        if length < 0 {
            items.push("NULL".to_owned());
            continue;
        }
        let value = bytes.get(at..at + length as usize)?;
        at += length as usize;
        let text = decode_to_text(element, value).ok()?;
        items.push(crate::text::quote_array_item(&text));
    }
    Some(if pg_type.is_vector() {
        items.join(" ")
    } else {
        format!("{{{}}}", items.join(","))
    })
}

fn decode_numeric(bytes: &[u8]) -> Option<String> {
    let read_i16 = |at: usize| -> Option<i16> {
        Some(i16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    };
    let ndigits = read_i16(0)? as usize;
    let weight = read_i16(2)? as i32;
    let sign = read_i16(4)? as u16;
    let dscale = read_i16(6)? as usize;
    if sign == 0xC000 {
        return Some("NaN".to_owned());
    }
    let digits: Vec<i16> = (0..ndigits)
        .map(|i| read_i16(8 + i * 2))
        .collect::<Option<Vec<_>>>()?;
    let mut int_part = String::new();
    let mut frac_part = String::new();
    for (index, digit) in digits.iter().enumerate() {
        let position = weight - index as i32;
        let group = format!("{digit:04}");
        if position >= 0 {
            int_part.push_str(&group);
        } else {
            // Groups between the decimal point and this one are zero.
            while (frac_part.len() as i32) < (-position - 1) * 4 {
                frac_part.push_str("0000");
            }
            frac_part.push_str(&group);
        }
    }
    // Integer groups after the last stored digit are zero.
    let stored_int_groups = digits.len().min((weight + 1).max(0) as usize);
    for _ in stored_int_groups as i32..(weight + 1) {
        int_part.push_str("0000");
    }
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    while frac_part.len() < dscale {
        frac_part.push('0');
    }
    frac_part.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Some(if frac_part.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Decimal128Array;
    use proptest::prelude::*;

    fn numeric_round_trip(value: i128, scale: i8) -> String {
        let array = Decimal128Array::from(vec![value])
            .with_precision_and_scale(38, scale)
            .unwrap();
        let mut out = Vec::new();
        encode_value(
            &array,
            0,
            PgType::Numeric {
                precision: Some(38),
                scale: Some(scale),
            },
            &mut out,
        )
        .unwrap();
        decode_numeric(&out).unwrap()
    }

    #[test]
    fn binary_arrays_decode_to_their_text_form() {
        let mut bytes = Vec::new();
        for word in [1i32, 1, 26, 3, 1] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        for value in [Some(16_384u32), None, Some(7)] {
            match value {
                Some(v) => {
                    bytes.extend_from_slice(&4i32.to_be_bytes());
                    bytes.extend_from_slice(&v.to_be_bytes());
                }
                None => bytes.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        assert_eq!(
            decode_to_text(PgType::OidArray, &bytes).unwrap(),
            "{16384,NULL,7}"
        );
        assert!(decode_to_text(PgType::OidArray, &bytes[..10]).is_err());
        let empty = [0u8; 12];
        assert_eq!(decode_to_text(PgType::TextArray, &empty).unwrap(), "{}");
    }

    #[test]
    fn unconstrained_numeric_sends_the_scale_it_prints() {
        let array = Decimal128Array::from(vec![25_000_000_000i128, 20_000_000_000])
            .with_precision_and_scale(38, 10)
            .unwrap();
        let unconstrained = PgType::Numeric {
            precision: None,
            scale: None,
        };
        for (row, expected) in [(0, "2.5"), (1, "2")] {
            let mut out = Vec::new();
            encode_value(&array, row, unconstrained, &mut out).unwrap();
            assert_eq!(decode_numeric(&out).unwrap(), expected);
            let dscale = i16::from_be_bytes([out[6], out[7]]);
            assert_eq!(
                dscale as usize,
                expected.split('.').nth(1).map_or(0, str::len)
            );
        }
    }

    #[test]
    fn numeric_binary_round_trips() {
        assert_eq!(numeric_round_trip(12345, 2), "123.45");
        assert_eq!(numeric_round_trip(-5, 3), "-0.005");
        assert_eq!(numeric_round_trip(0, 2), "0.00");
        assert_eq!(numeric_round_trip(100000000, 0), "100000000");
    }

    /// What `append_binary` gives, against appending the decoded text:
    /// the same array, or an error both ways.
    fn binary_matches_text(column: PgType, sent: PgType, bytes: &[u8]) -> Result<(), String> {
        let mut direct = ColumnBuilder::new(column, 1).unwrap();
        let mut text = ColumnBuilder::new(column, 1).unwrap();
        let direct_result = append_binary(&mut direct, sent, bytes);
        let text_result = decode_to_text(sent, bytes).and_then(|t| text.append_text(&t));
        match (direct_result, text_result) {
            (Ok(()), Ok(())) => {
                let (a, b) = (direct.finish(), text.finish());
                if a.to_data() == b.to_data() {
                    Ok(())
                } else {
                    Err(format!("{column} from {sent} {bytes:?}: {a:?} != {b:?}"))
                }
            }
            (Err(_), Err(_)) => Ok(()),
            (a, b) => Err(format!("{column} from {sent} {bytes:?}: {a:?} vs {b:?}")),
        }
    }

    #[test]
    fn binary_edges_append_as_their_text() {
        let cases: Vec<(PgType, PgType, Vec<u8>)> = vec![
            (PgType::Bool, PgType::Bool, vec![2]),
            (PgType::Bool, PgType::Bool, vec![]),
            (PgType::Int4, PgType::Int4, vec![0, 0, 1]),
            (PgType::Int8, PgType::Int4, 7i32.to_be_bytes().to_vec()),
            (
                PgType::Float8,
                PgType::Float8,
                f64::INFINITY.to_be_bytes().to_vec(),
            ),
            (
                PgType::Float8,
                PgType::Float8,
                f64::NAN.to_be_bytes().to_vec(),
            ),
            (
                PgType::Float8,
                PgType::Float8,
                (-0.0f64).to_be_bytes().to_vec(),
            ),
            (
                PgType::Float4,
                PgType::Float4,
                f32::MIN_POSITIVE.to_be_bytes().to_vec(),
            ),
            (
                PgType::Timestamptz,
                PgType::Timestamptz,
                i64::MAX.to_be_bytes().to_vec(),
            ),
            (
                PgType::Timestamptz,
                PgType::Timestamptz,
                i64::MIN.to_be_bytes().to_vec(),
            ),
            (
                PgType::Timestamp,
                PgType::Timestamptz,
                0i64.to_be_bytes().to_vec(),
            ),
            (PgType::Date, PgType::Date, i32::MAX.to_be_bytes().to_vec()),
            (
                PgType::Jsonb,
                PgType::Jsonb,
                b"\x01{\"b\": 1, \"a\": [2]}".to_vec(),
            ),
            (PgType::Jsonb, PgType::Jsonb, b"\x02{}".to_vec()),
            (PgType::Jsonb, PgType::Text, b"{\"a\":1}".to_vec()),
            (
                PgType::Varchar { max_chars: Some(2) },
                PgType::Text,
                b"abc".to_vec(),
            ),
            (PgType::Text, PgType::Text, vec![0xff]),
            (PgType::Int4, PgType::Text, b" 12 ".to_vec()),
        ];
        for (column, sent, bytes) in cases {
            binary_matches_text(column, sent, &bytes).unwrap();
        }
    }

    proptest! {
        #[test]
        fn binary_values_append_as_their_text(
            int in any::<i64>(),
            float in any::<f64>(),
            micros in prop_oneof![any::<i64>(), -63_000_000_000_000_000i64..254_000_000_000_000_000],
            days in prop_oneof![any::<i32>(), -800_000i32..3_000_000],
            byte in any::<u8>(),
        ) {
            let cases = [
                (PgType::Bool, PgType::Bool, vec![byte]),
                (PgType::Int2, PgType::Int2, (int as i16).to_be_bytes().to_vec()),
                (PgType::Int4, PgType::Int4, (int as i32).to_be_bytes().to_vec()),
                (PgType::Int8, PgType::Int8, int.to_be_bytes().to_vec()),
                (PgType::Float4, PgType::Float4, (float as f32).to_be_bytes().to_vec()),
                (PgType::Float8, PgType::Float8, float.to_be_bytes().to_vec()),
                (PgType::Timestamptz, PgType::Timestamptz, micros.to_be_bytes().to_vec()),
                (PgType::Timestamp, PgType::Timestamp, micros.to_be_bytes().to_vec()),
                (PgType::Date, PgType::Date, days.to_be_bytes().to_vec()),
            ];
            for (column, sent, bytes) in cases {
                prop_assert!(binary_matches_text(column, sent, &bytes).is_ok(), "{:?}", binary_matches_text(column, sent, &bytes));
            }
        }

        #[test]
        fn numeric_binary_matches_text(value in any::<i64>(), scale in 0i8..12) {
            let mut text = String::new();
            format_decimal(value as i128, scale, false, &mut text);
            prop_assert_eq!(numeric_round_trip(value as i128, scale), text);
        }
    }
}
