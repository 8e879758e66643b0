//! PostgreSQL's text format: parsing into Arrow builders, printing Arrow values.
//!
//! [`ColumnBuilder`] is the one place text becomes typed data (COPY, text
//! parameters, literals in the insert fast path); [`TextFormatter`] is the one
//! place typed data becomes text (DataRow text format, COPY TO).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    IntervalMonthDayNanoBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, IntervalMonthDayNanoType, IntervalUnit, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};

use crate::datetime::{self, format_date, format_interval, format_timestamp};
use crate::{Error, PgType, Result, UTC_ZONE, json};

fn invalid(type_name: &str, input: &str) -> Error {
    Error::InvalidText {
        type_name: type_name.to_owned(),
        input: input.to_owned(),
    }
}

/// Parses PostgreSQL boolean text (`t`, `true`, `yes`, `on`, `1`, and their opposites).
pub fn parse_bool(input: &str) -> Result<bool> {
    match input.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Ok(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Ok(false),
        _ => Err(invalid("boolean", input)),
    }
}

fn parse_integer(input: &str, type_name: &str, min: i64, max: i64) -> Result<i64> {
    let trimmed = input.trim();
    let value: i128 = trimmed.parse().map_err(|_| {
        // A well-formed integer too long for i128 is still an out-of-range value.
        let digits = trimmed.trim_start_matches(['-', '+']);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            Error::OutOfRange {
                message: format!("value \"{input}\" is out of range for type {type_name}"),
            }
        } else {
            invalid(type_name, input)
        }
    })?;
    if value < min as i128 || value > max as i128 {
        return Err(Error::OutOfRange {
            message: format!("value \"{input}\" is out of range for type {type_name}"),
        });
    }
    Ok(value as i64)
}

pub fn parse_int2(input: &str) -> Result<i16> {
    parse_integer(input, "smallint", i16::MIN as i64, i16::MAX as i64).map(|v| v as i16)
}
pub fn parse_int4(input: &str) -> Result<i32> {
    parse_integer(input, "integer", i32::MIN as i64, i32::MAX as i64).map(|v| v as i32)
}
pub fn parse_int8(input: &str) -> Result<i64> {
    parse_integer(input, "bigint", i64::MIN, i64::MAX)
}

/// Parses float text, accepting PostgreSQL's `NaN`, `Infinity`, `-Infinity`.
pub fn parse_float8(input: &str) -> Result<f64> {
    let trimmed = input.trim();
    // Only the special values start with a letter after the sign; numbers
    // skip the comparisons.
    let unsigned = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if unsigned.starts_with(|c: char| c.is_ascii_alphabetic()) {
        let special = |words: &[&str]| words.iter().any(|w| trimmed.eq_ignore_ascii_case(w));
        if special(&["nan"]) {
            return Ok(f64::NAN);
        }
        if special(&["infinity", "+infinity", "inf", "+inf"]) {
            return Ok(f64::INFINITY);
        }
        if special(&["-infinity", "-inf"]) {
            return Ok(f64::NEG_INFINITY);
        }
    }
    let value: f64 = trimmed
        .parse()
        .map_err(|_| invalid("double precision", input))?;
    // Too large, or so small it reads as zero though a digit is not (as
    // PostgreSQL's strtod-based input refuses both; subnormals are kept).
    let underflow = value == 0.0
        && trimmed
            .split(['e', 'E'])
            .next()
            .is_some_and(|mantissa| mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    if value.is_infinite() || underflow {
        return Err(Error::OutOfRange {
            message: format!("\"{trimmed}\" is out of range for type double precision"),
        });
    }
    Ok(value)
}

pub fn parse_float4(input: &str) -> Result<f32> {
    let out_of_range = || Error::OutOfRange {
        message: format!("\"{}\" is out of range for type real", input.trim()),
    };
    let value = parse_float8(input).map_err(|error| match error {
        Error::OutOfRange { .. } => out_of_range(),
        _ => invalid("real", input),
    })?;
    let narrowed = value as f32;
    if value != 0.0 && narrowed == 0.0 {
        return Err(out_of_range());
    }
    if value.is_finite() && narrowed.is_infinite() {
        return Err(Error::OutOfRange {
            message: format!("\"{}\" is out of range for type real", input.trim()),
        });
    }
    Ok(narrowed)
}

/// Parses numeric text into an i128 scaled by `scale`, rounding half away from zero,
/// and checks it fits `precision` digits.
pub fn parse_numeric(input: &str, precision: u8, scale: i8) -> Result<i128> {
    let trimmed = input.trim();
    let err = || invalid("numeric", input);
    let (negative, body) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(pos) => (
            &body[..pos],
            body[pos + 1..].parse::<i32>().map_err(|_| err())?,
        ),
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(pos) => (&mantissa[..pos], &mantissa[pos + 1..]),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err());
    }
    // digits * 10^(exponent - frac_len) is the value; rescale to `scale`.
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let shift = exponent as i64 - frac_part.len() as i64 + scale as i64;
    let overflow = || Error::OutOfRange {
        message: "numeric field overflow".to_owned(),
    };
    let mut value: i128 = 0;
    let (kept, dropped) = if shift >= 0 {
        (digits, "")
    } else {
        let cut = digits.len().saturating_sub((-shift) as usize);
        digits.split_at(cut)
    };
    for b in kept.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add((b - b'0') as i128))
            .ok_or_else(overflow)?;
    }
    if shift > 0 {
        for _ in 0..shift {
            value = value.checked_mul(10).ok_or_else(overflow)?;
        }
    }
    // Round half away from zero on the first dropped digit; digits dropped entirely
    // (shift beyond the digit count) round to zero unless the first is >= 5.
    let first_dropped = if shift < 0 && (-shift) as usize > digits.len() {
        None
    } else {
        dropped.bytes().next()
    };
    if first_dropped.is_some_and(|b| b >= b'5') {
        value = value.checked_add(1).ok_or_else(overflow)?;
    }
    let limit = 10_i128.checked_pow(precision as u32).unwrap_or(i128::MAX);
    if value >= limit {
        return Err(Error::OutOfRange {
            message: format!(
                "numeric field overflow: a field with precision {precision}, scale {scale} must round to an absolute value less than 10^{}",
                precision as i32 - scale as i32
            ),
        });
    }
    Ok(if negative { -value } else { value })
}

/// Validates and canonicalises a uuid (lowercase, hyphenated).
pub fn parse_uuid(input: &str) -> Result<String> {
    let trimmed = input.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(trimmed);
    let hex: String = inner.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("uuid", input));
    }
    let hex = hex.to_ascii_lowercase();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Parses bytea text: `\x` hex format or the escape format.
pub fn parse_bytea(input: &str) -> Result<Vec<u8>> {
    if let Some(hex) = input.strip_prefix("\\x") {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err(invalid("bytea", input));
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let text = std::str::from_utf8(pair).map_err(|_| invalid("bytea", input))?;
                u8::from_str_radix(text, 16).map_err(|_| invalid("bytea", input))
            })
            .collect();
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' {
            if bytes.get(index + 1) == Some(&b'\\') {
                out.push(b'\\');
                index += 2;
            } else if index + 3 < bytes.len()
                && bytes[index + 1..index + 4]
                    .iter()
                    .all(|b| (b'0'..=b'7').contains(b))
            {
                let octal = std::str::from_utf8(&bytes[index + 1..index + 4])
                    .map_err(|_| invalid("bytea", input))?;
                out.push(u8::from_str_radix(octal, 8).map_err(|_| invalid("bytea", input))?);
                index += 4;
            } else {
                return Err(invalid("bytea", input));
            }
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    Ok(out)
}

/// Builds one Arrow column of a PgType from text values.
pub enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int2(Int16Builder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Float4(Float32Builder),
    Float8(Float64Builder),
    Numeric {
        builder: Decimal128Builder,
        precision: u8,
        scale: i8,
    },
    Text {
        builder: StringBuilder,
        pg_type: PgType,
    },
    Bytea(BinaryBuilder),
    Timestamp {
        builder: TimestampMicrosecondBuilder,
        with_zone: bool,
    },
    Date(Date32Builder),
    Interval(IntervalMonthDayNanoBuilder),
    Oid(UInt32Builder),
    /// A one-dimensional array: each row's elements, read from `{a,b}`.
    List {
        element: PgType,
        pg_type: PgType,
        rows: Vec<Option<Vec<Option<String>>>>,
    },
}

impl ColumnBuilder {
    pub fn new(pg_type: PgType, capacity: usize) -> Result<Self> {
        Ok(match pg_type {
            PgType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            PgType::Int2 => ColumnBuilder::Int2(Int16Builder::with_capacity(capacity)),
            PgType::Int4 => ColumnBuilder::Int4(Int32Builder::with_capacity(capacity)),
            PgType::Int8 => ColumnBuilder::Int8(Int64Builder::with_capacity(capacity)),
            PgType::Float4 => ColumnBuilder::Float4(Float32Builder::with_capacity(capacity)),
            PgType::Float8 => ColumnBuilder::Float8(Float64Builder::with_capacity(capacity)),
            PgType::Numeric { .. } => {
                let DataType::Decimal128(precision, scale) = pg_type.arrow_type() else {
                    unreachable!("numeric is always Decimal128")
                };
                ColumnBuilder::Numeric {
                    builder: Decimal128Builder::with_capacity(capacity)
                        .with_precision_and_scale(precision, scale)
                        .map_err(|e| Error::OutOfRange {
                            message: e.to_string(),
                        })?,
                    precision,
                    scale,
                }
            }
            PgType::Text
            | PgType::Varchar { .. }
            | PgType::Uuid
            | PgType::Json
            | PgType::Jsonb
            | PgType::Name
            | PgType::Char => ColumnBuilder::Text {
                builder: StringBuilder::with_capacity(capacity, capacity * 16),
                pg_type,
            },
            PgType::Bytea => {
                ColumnBuilder::Bytea(BinaryBuilder::with_capacity(capacity, capacity * 16))
            }
            PgType::Timestamptz => ColumnBuilder::Timestamp {
                builder: TimestampMicrosecondBuilder::with_capacity(capacity)
                    .with_timezone(UTC_ZONE),
                with_zone: true,
            },
            PgType::Timestamp => ColumnBuilder::Timestamp {
                builder: TimestampMicrosecondBuilder::with_capacity(capacity),
                with_zone: false,
            },
            PgType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(capacity)),
            PgType::Interval => {
                ColumnBuilder::Interval(IntervalMonthDayNanoBuilder::with_capacity(capacity))
            }
            PgType::Oid => ColumnBuilder::Oid(UInt32Builder::with_capacity(capacity)),
            PgType::Record => {
                return Err(Error::UnsupportedArrowType {
                    data_type: "record input".to_owned(),
                });
            }
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
            | PgType::CharArray => ColumnBuilder::List {
                element: pg_type.element().unwrap_or(PgType::Text),
                pg_type,
                rows: Vec::with_capacity(capacity),
            },
        })
    }

    pub fn append_null(&mut self) {
        match self {
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int2(b) => b.append_null(),
            ColumnBuilder::Int4(b) => b.append_null(),
            ColumnBuilder::Int8(b) => b.append_null(),
            ColumnBuilder::Float4(b) => b.append_null(),
            ColumnBuilder::Float8(b) => b.append_null(),
            ColumnBuilder::Numeric { builder, .. } => builder.append_null(),
            ColumnBuilder::Text { builder, .. } => builder.append_null(),
            ColumnBuilder::Bytea(b) => b.append_null(),
            ColumnBuilder::Timestamp { builder, .. } => builder.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Interval(b) => b.append_null(),
            ColumnBuilder::Oid(b) => b.append_null(),
            ColumnBuilder::List { rows, .. } => rows.push(None),
        }
    }

    /// Parses `text` as a value of the column's type and appends it.
    pub fn append_text(&mut self, text: &str) -> Result<()> {
        match self {
            ColumnBuilder::Bool(b) => b.append_value(parse_bool(text)?),
            ColumnBuilder::Int2(b) => b.append_value(parse_int2(text)?),
            ColumnBuilder::Int4(b) => b.append_value(parse_int4(text)?),
            ColumnBuilder::Int8(b) => b.append_value(parse_int8(text)?),
            ColumnBuilder::Float4(b) => b.append_value(parse_float4(text)?),
            ColumnBuilder::Float8(b) => b.append_value(parse_float8(text)?),
            ColumnBuilder::Numeric {
                builder,
                precision,
                scale,
            } => builder.append_value(parse_numeric(text, *precision, *scale)?),
            ColumnBuilder::Text { builder, pg_type } => match pg_type {
                PgType::Varchar {
                    max_chars: Some(max_chars),
                } => {
                    if text.chars().count() > *max_chars as usize {
                        return Err(Error::StringTooLong {
                            max_chars: *max_chars,
                        });
                    }
                    builder.append_value(text)
                }
                PgType::Uuid => builder.append_value(parse_uuid(text)?),
                PgType::Json => {
                    json::parse_json(text)?;
                    builder.append_value(text)
                }
                PgType::Jsonb => builder.append_value(json::normalize_jsonb(text)?),
                // PostgreSQL truncates a name to 63 bytes and a "char" to one.
                PgType::Name => builder.append_value(truncate_bytes(text, 63)),
                PgType::Char => builder.append_value(truncate_bytes(text, 1)),
                _ => builder.append_value(text),
            },
            ColumnBuilder::Bytea(b) => b.append_value(parse_bytea(text)?),
            ColumnBuilder::Timestamp { builder, with_zone } => {
                let micros = if *with_zone {
                    datetime::parse_timestamptz(text)?
                } else {
                    datetime::parse_timestamp(text)?
                };
                builder.append_value(micros)
            }
            ColumnBuilder::Date(b) => b.append_value(datetime::parse_date(text)?),
            ColumnBuilder::Interval(b) => b.append_value(datetime::parse_interval(text)?),
            ColumnBuilder::Oid(b) => b.append_value(parse_oid(text)?),
            ColumnBuilder::List { pg_type, rows, .. } => {
                rows.push(Some(parse_array(text, *pg_type)?))
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int2(b) => Arc::new(b.finish()),
            ColumnBuilder::Int4(b) => Arc::new(b.finish()),
            ColumnBuilder::Int8(b) => Arc::new(b.finish()),
            ColumnBuilder::Float4(b) => Arc::new(b.finish()),
            ColumnBuilder::Float8(b) => Arc::new(b.finish()),
            ColumnBuilder::Numeric { builder, .. } => Arc::new(builder.finish()),
            ColumnBuilder::Text { builder, .. } => Arc::new(builder.finish()),
            ColumnBuilder::Bytea(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp { builder, .. } => Arc::new(builder.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Interval(b) => Arc::new(b.finish()),
            ColumnBuilder::Oid(b) => Arc::new(b.finish()),
            ColumnBuilder::List { element, rows, .. } => {
                // Elements were checked as they were read.
                finish_list(*element, std::mem::take(rows)).unwrap_or_else(|_| {
                    datafusion::arrow::array::new_empty_array(&PgType::TextArray.arrow_type())
                })
            }
        }
    }
}

/// The elements of a one-dimensional array's text form (`{1,2}`,
/// `{"a b",NULL}`; `int2vector`'s `1 2`), each checked against its type.
pub fn parse_array(input: &str, pg_type: PgType) -> Result<Vec<Option<String>>> {
    let element = pg_type.element().unwrap_or(PgType::Text);
    let malformed = || Error::InvalidText {
        type_name: pg_type.to_string(),
        input: input.to_owned(),
    };
    let trimmed = input.trim();
    let elements: Vec<Option<String>> = if pg_type.is_vector() {
        trimmed
            .split_ascii_whitespace()
            .map(|e| Some(e.to_owned()))
            .collect()
    } else {
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(malformed)?;
        let mut elements = Vec::new();
        let mut chars = inner.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                if !elements.is_empty() {
                    return Err(malformed());
                }
                break;
            }
            let mut value = String::new();
            let quoted = chars.peek() == Some(&'"');
            if quoted {
                chars.next();
                loop {
                    match chars.next() {
                        Some('\\') => value.push(chars.next().ok_or_else(malformed)?),
                        Some('"') => break,
                        Some(c) => value.push(c),
                        None => return Err(malformed()),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    if c == '{' || c == '"' {
                        // Nested arrays: tempora has one-dimensional arrays only.
                        return Err(malformed());
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_owned();
            }
            elements.push(if !quoted && value.eq_ignore_ascii_case("null") {
                None
            } else {
                Some(value)
            });
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                Some(',') => continue,
                None => break,
                Some(_) => return Err(malformed()),
            }
        }
        elements
    };
    // Check every element now, so that a bad one is this input's error.
    let mut check = ColumnBuilder::new(element, 1)?;
    for value in elements.iter().flatten() {
        check.append_text(value)?;
    }
    Ok(elements)
}

fn finish_list(element: PgType, rows: Vec<Option<Vec<Option<String>>>>) -> Result<ArrayRef> {
    use datafusion::arrow::array::ListArray;
    use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
    let mut values = ColumnBuilder::new(element, rows.len())?;
    let mut lengths = Vec::with_capacity(rows.len());
    let mut valid = Vec::with_capacity(rows.len());
    for row in &rows {
        match row {
            Some(elements) => {
                for value in elements {
                    match value {
                        Some(v) => values.append_text(v)?,
                        None => values.append_null(),
                    }
                }
                lengths.push(elements.len());
                valid.push(true);
            }
            None => {
                lengths.push(0);
                valid.push(false);
            }
        }
    }
    let field = Arc::new(datafusion::arrow::datatypes::Field::new_list_field(
        element.arrow_type(),
        true,
    ));
    Ok(Arc::new(ListArray::new(
        field,
        OffsetBuffer::from_lengths(lengths),
        values.finish(),
        Some(NullBuffer::from(valid)),
    )))
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn truncate_bytes(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// PostgreSQL's `oid` input: an unsigned 32-bit number, or a negative one
/// down to -2147483648, which wraps as in PostgreSQL.
pub fn parse_oid(text: &str) -> Result<u32> {
    let trimmed = text.trim();
    let value: i64 = trimmed.parse().map_err(|_| invalid("oid", text))?;
    if value < i32::MIN as i64 || value > u32::MAX as i64 {
        return Err(Error::OutOfRange {
            message: format!("value \"{text}\" is out of range for type oid"),
        });
    }
    Ok(value as u32)
}

/// Formats a float8 as PostgreSQL 12+ does: the shortest text that reads back
/// exactly, in exponent form when the decimal exponent is < -4 or >= `max_plain_exponent`.
pub fn format_float(value: f64, max_plain_exponent: i32, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if value == 0.0 {
        out.push_str(if value.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .map(|(m, e)| (m, e.parse::<i32>().unwrap_or(0)))
        .unwrap_or((scientific.as_str(), 0));
    if exponent < -4 || exponent >= max_plain_exponent {
        out.push_str(mantissa);
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let abs = exponent.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
    } else {
        out.push_str(&value.to_string());
    }
}

fn format_float4(value: f32, out: &mut String) {
    if value.is_nan() || value.is_infinite() || value == 0.0 {
        format_float(value as f64, 6, out);
        return;
    }
    // Shortest digits for the f32 itself, then the same layout rule with FLT_DIG = 6.
    let scientific = format!("{value:e}");
    let exponent = scientific
        .split_once('e')
        .and_then(|(_, e)| e.parse::<i32>().ok())
        .unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let (mantissa, _) = scientific.split_once('e').unwrap_or((&scientific, ""));
        out.push_str(mantissa);
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let abs = exponent.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
    } else {
        out.push_str(&value.to_string());
    }
}

/// Formats a scaled decimal as numeric text; `trim` drops trailing fractional zeros.
pub fn format_decimal(value: i128, scale: i8, trim: bool, out: &mut String) {
    if scale <= 0 {
        out.push_str(&value.to_string());
        for _ in 0..(-scale) {
            out.push('0');
        }
        return;
    }
    let negative = value < 0;
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let (int_part, frac_part) = if digits.len() > scale {
        let split = digits.len() - scale;
        (digits[..split].to_owned(), digits[split..].to_owned())
    } else {
        ("0".to_owned(), format!("{digits:0>scale$}"))
    };
    let frac_part = if trim {
        frac_part.trim_end_matches('0').to_owned()
    } else {
        frac_part
    };
    if negative {
        out.push('-');
    }
    out.push_str(&int_part);
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(&frac_part);
    }
}

fn format_bytea(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 + bytes.len() * 2);
    out.push_str("\\x");
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// Appends an integer's decimal digits without a String of its own.
fn push_display(out: &mut String, value: impl std::fmt::Display) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{value}");
}

/// Formats one value of an Arrow array as PostgreSQL text. Returns false for NULL.
pub fn format_value(
    array: &dyn Array,
    row: usize,
    pg_type: PgType,
    out: &mut String,
) -> Result<bool> {
    // A NullArray keeps no null buffer: its values are NULL by its type.
    if array.is_null(row) || array.data_type() == &DataType::Null {
        return Ok(false);
    }
    match array.data_type() {
        DataType::Boolean => out.push(if array.as_boolean().value(row) {
            't'
        } else {
            'f'
        }),
        DataType::Int8 => push_display(out, array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => push_display(out, array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => push_display(out, array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => push_display(out, array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => push_display(out, array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => push_display(out, array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => push_display(out, array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => push_display(out, array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => format_float4(array.as_primitive::<Float32Type>().value(row), out),
        DataType::Float64 => format_float(array.as_primitive::<Float64Type>().value(row), 15, out),
        DataType::Decimal128(_, scale) => format_decimal(
            array.as_primitive::<Decimal128Type>().value(row),
            *scale,
            pg_type.trims_numeric_zeros(),
            out,
        ),
        DataType::Utf8 => out.push_str(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => out.push_str(array.as_string::<i64>().value(row)),
        DataType::Utf8View => out.push_str(array.as_string_view().value(row)),
        DataType::Binary => format_bytea(array.as_binary::<i32>().value(row), out),
        DataType::LargeBinary => format_bytea(array.as_binary::<i64>().value(row), out),
        DataType::BinaryView => format_bytea(array.as_binary_view().value(row), out),
        DataType::FixedSizeBinary(_) => format_bytea(array.as_fixed_size_binary().value(row), out),
        DataType::Timestamp(unit, zone) => {
            let micros = timestamp_micros(array, row, unit);
            format_timestamp(micros, zone.is_some(), out)?
        }
        DataType::Date32 => format_date(array.as_primitive::<Date32Type>().value(row), out)?,
        DataType::Interval(IntervalUnit::MonthDayNano) => format_interval(
            array.as_primitive::<IntervalMonthDayNanoType>().value(row),
            out,
        ),
        DataType::List(_) if pg_type.is_vector() => {
            // int2vector and oidvector print as space-separated numbers.
            let values = array.as_list::<i32>().value(row);
            let item_type = pg_type.element().unwrap_or(PgType::Int8);
            for index in 0..values.len() {
                if index > 0 {
                    out.push(' ');
                }
                format_value(values.as_ref(), index, item_type, out)?;
            }
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let values = list.value(row);
            let item_type = match pg_type.element() {
                Some(element) => element,
                None => PgType::of_arrow(values.data_type())?,
            };
            out.push('{');
            for index in 0..values.len() {
                if index > 0 {
                    out.push(',');
                }
                let mut item = String::new();
                if format_value(values.as_ref(), index, item_type, &mut item)? {
                    out.push_str(&quote_array_item(&item));
                } else {
                    out.push_str("NULL");
                }
            }
            out.push('}');
        }
        DataType::Struct(_) => {
            // A record: `(a,b)`, empty for NULL fields, quoted where needed.
            let record = array.as_struct();
            out.push('(');
            for (index, column) in record.columns().iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                let field_type = PgType::of_field(record.fields()[index].as_ref())?;
                let mut item = String::new();
                if format_value(column.as_ref(), row, field_type, &mut item)? {
                    out.push_str(&quote_record_item(&item));
                }
            }
            out.push(')');
        }
        DataType::Dictionary(_, _) => {
            let dictionary = array.as_any_dictionary();
            let key = dictionary.normalized_keys()[row];
            return format_value(dictionary.values().as_ref(), key, pg_type, out);
        }
        other => {
            return Err(Error::UnsupportedArrowType {
                data_type: other.to_string(),
            });
        }
    }
    Ok(true)
}

/// A record field as the text form quotes it (`"a b"`, `""` for empty).
fn quote_record_item(item: &str) -> String {
    let needs_quotes = item.is_empty()
        || item
            .chars()
            .any(|c| matches!(c, '(' | ')' | ',' | '"' | '\\') || c.is_whitespace());
    if !needs_quotes {
        return item.to_owned();
    }
    // A record doubles `"` and `\`.
    quoted_with(item, |c| c)
}

/// `item` in double quotes, each `"` and `\` preceded by `escape(c)`.
fn quoted_with(item: &str, escape: impl Fn(char) -> char) -> String {
    let mut quoted = String::with_capacity(item.len() + 2);
    quoted.push('"');
    for c in item.chars() {
        if c == '"' || c == '\\' {
            quoted.push(escape(c));
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// An array element as the text form quotes it (`"a b"`, `"NULL"`).
pub fn quote_array_item(item: &str) -> String {
    let needs_quotes = item.is_empty()
        || item.eq_ignore_ascii_case("null")
        || item
            .chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\' | ' ' | '\t' | '\n'));
    if !needs_quotes {
        return item.to_owned();
    }
    // An array element backslash-escapes them.
    quoted_with(item, |_| '\\')
}

/// A timestamp array's value at `row`, in microseconds whatever its unit.
pub fn timestamp_micros(array: &dyn Array, row: usize, unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row) * 1_000_000,
        TimeUnit::Millisecond => {
            array.as_primitive::<TimestampMillisecondType>().value(row) * 1_000
        }
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .div_euclid(1_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn float(value: f64) -> String {
        let mut out = String::new();
        format_float(value, 15, &mut out);
        out
    }

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(100.0), "100");
        assert_eq!(float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(float(1e20), "1e+20");
        assert_eq!(float(1.5e-5), "1.5e-05");
        assert_eq!(float(123456789012345.0), "123456789012345");
        assert_eq!(float(1234567890123456.0), "1.234567890123456e+15");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(-f64::INFINITY), "-Infinity");
    }

    #[test]
    fn numerics_parse_and_print() {
        let mut out = String::new();
        format_decimal(parse_numeric("12.345", 10, 2).unwrap(), 2, false, &mut out);
        assert_eq!(out, "12.35");
        out.clear();
        format_decimal(parse_numeric("-0.5", 10, 3).unwrap(), 3, false, &mut out);
        assert_eq!(out, "-0.500");
        out.clear();
        format_decimal(parse_numeric("1.5e3", 10, 0).unwrap(), 0, false, &mut out);
        assert_eq!(out, "1500");
        assert!(matches!(
            parse_numeric("123456", 5, 2),
            Err(Error::OutOfRange { .. })
        ));
        assert!(parse_numeric("1.2.3", 10, 2).is_err());
    }

    #[test]
    fn integers_check_range() {
        assert_eq!(parse_int4(" 42 ").unwrap(), 42);
        assert!(matches!(parse_int2("40000"), Err(Error::OutOfRange { .. })));
        assert!(matches!(
            parse_int8("99999999999999999999999999999999999999999"),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(parse_int4("4x"), Err(Error::InvalidText { .. })));
    }

    #[test]
    fn arrays_read_their_text_form() {
        assert_eq!(
            parse_array("{1, 2,NULL}", PgType::Int4Array).unwrap(),
            vec![Some("1".into()), Some("2".into()), None]
        );
        assert_eq!(
            parse_array(r#"{"a b","NULL",c,"q\"d"}"#, PgType::TextArray).unwrap(),
            vec![
                Some("a b".into()),
                Some("NULL".into()),
                Some("c".into()),
                Some("q\"d".into())
            ]
        );
        assert_eq!(
            parse_array("{}", PgType::TextArray).unwrap(),
            Vec::<Option<String>>::new()
        );
        assert_eq!(
            parse_array("1 2", PgType::Int2Vector).unwrap(),
            vec![Some("1".into()), Some("2".into())]
        );
        assert!(parse_array("{1,x}", PgType::Int4Array).is_err());
        assert!(parse_array("1,2", PgType::Int4Array).is_err());
        assert!(parse_array("{{1},{2}}", PgType::Int4Array).is_err());
        let mut builder = ColumnBuilder::new(PgType::Int8Array, 2).unwrap();
        builder.append_text("{5,6}").unwrap();
        builder.append_null();
        let array = builder.finish();
        let mut out = String::new();
        format_value(array.as_ref(), 0, PgType::Int8Array, &mut out).unwrap();
        assert_eq!(out, "{5,6}");
        assert!(array.is_null(1));
    }

    #[test]
    fn uuid_and_bytea() {
        assert_eq!(
            parse_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
        assert!(parse_uuid("nope").is_err());
        assert_eq!(parse_bytea("\\x0aff").unwrap(), vec![10, 255]);
        let mut out = String::new();
        format_bytea(&[0, 171], &mut out);
        assert_eq!(out, "\\x00ab");
    }

    #[test]
    fn float_special_words_in_any_case() {
        for (text, expected) in [
            ("NaN", f64::NAN),
            (" nan ", f64::NAN),
            ("-NaN", f64::NAN),
            ("Infinity", f64::INFINITY),
            ("+INF", f64::INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("+1.5", 1.5),
            ("-2e3", -2000.0),
        ] {
            let value = parse_float8(text).unwrap();
            assert!(
                value == expected || (value.is_nan() && expected.is_nan()),
                "{text}: {value}"
            );
        }
        for text in ["infinit", "nano", "i", "-", "", "1e999", "- 1"] {
            assert!(parse_float8(text).is_err(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn float_text_round_trips(value in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL) {
            let mut out = String::new();
            format_float(value, 15, &mut out);
            prop_assert_eq!(parse_float8(&out).unwrap(), value);
        }

        #[test]
        fn timestamp_text_round_trips(micros in -62_135_596_800_000_000i64..253_402_300_799_999_999i64) {
            let mut out = String::new();
            format_timestamp(micros, true, &mut out).unwrap();
            prop_assert_eq!(datetime::parse_timestamptz(&out).unwrap(), micros);
        }

        #[test]
        fn numeric_text_round_trips(value in -99_999_999_999_999i128..99_999_999_999_999i128) {
            let mut out = String::new();
            format_decimal(value, 4, false, &mut out);
            prop_assert_eq!(parse_numeric(&out, 20, 4).unwrap(), value);
        }
    }
}
