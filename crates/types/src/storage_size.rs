//! How many bytes PostgreSQL stores a value in: what `pg_column_size`
//! reports for a value read from a table.
//!
//! Fixed-width types take their width. Variable-width ones (text, bytea,
//! json, jsonb, numeric) are a varlena: their data after a 1-byte header
//! when the whole fits in 127 bytes, after a 4-byte header otherwise. The
//! data of a numeric is a 2-byte header (short form) and two bytes per
//! base-10000 digit; of a jsonb, PostgreSQL's binary container (see
//! [`jsonb_data_size`]). Not modelled: TOAST compression of values over
//! about 2 kB, and the 4-byte header a computed value (not read from a
//! table) carries.

use serde_json::Value;

/// Bytes a varlena with `data` bytes of data takes in a table row.
pub fn stored_varlena(data: usize) -> usize {
    // The 1-byte header holds a total length up to 127.
    if data < 127 { data + 1 } else { data + 4 }
}

/// Bytes of a numeric's data (after its varlena header), from its text
/// (`-12.50`, or a JSON number such as `1.5e3`). None when the text is no
/// number.
pub fn numeric_data_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if integer.is_empty() && fraction.is_empty()
        || !integer
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Digit i stands for 10^(point - 1 - i), and belongs to base-10000
    // digit (point - 1 - i) div 4. Zero base-10000 digits at either end are
    // not stored; those between the nonzero ones are.
    let point = integer.len() as i64 + exponent;
    let scale = (fraction.len() as i64 - exponent).max(0);
    let groups: Vec<i64> = integer
        .bytes()
        .chain(fraction.bytes())
        .enumerate()
        .filter(|(_, b)| *b != b'0')
        .map(|(i, _)| (point - 1 - i as i64).div_euclid(4))
        .collect();
    let (weight, ndigits) = match (groups.first(), groups.last()) {
        (Some(high), Some(low)) => (*high, (high - low + 1) as usize),
        _ => (0, 0),
    };
    // The short form holds a display scale up to 63 and a weight in -64..=63.
    let header = if scale <= 63 && (-64..=63).contains(&weight) {
        2
    } else {
        4
    };
    Some(header + 2 * ndigits)
}

/// Bytes of a jsonb's data (after its varlena header): PostgreSQL's binary
/// container. A container is a 4-byte header and a 4-byte entry per array
/// element (per key and per value of an object), then the elements' data:
/// strings as their bytes, numbers as numerics (with a 4-byte varlena
/// header) and nested containers, both aligned to 4 bytes; booleans and
/// nulls live in their entry. A scalar at the top is a one-element array.
pub fn jsonb_data_size(value: &Value) -> usize {
    // Offsets count from the start of the datum, whose 4-byte header
    // PostgreSQL reserves while it builds the value.
    let mut length = 4;
    match value {
        Value::Array(_) | Value::Object(_) => container(value, &mut length),
        scalar => {
            length += 8;
            element(scalar, &mut length);
        }
    }
    length - 4
}

fn align(length: &mut usize) {
    *length = length.next_multiple_of(4);
}

fn container(value: &Value, length: &mut usize) {
    match value {
        Value::Array(items) => {
            *length += 4 + 4 * items.len();
            for item in items {
                element(item, length);
            }
        }
        Value::Object(members) => {
            *length += 4 + 8 * members.len();
            for key in members.keys() {
                *length += key.len();
            }
            for item in members.values() {
                element(item, length);
            }
        }
        scalar => element(scalar, length),
    }
}

fn element(value: &Value, length: &mut usize) {
    match value {
        Value::Null | Value::Bool(_) => {}
        Value::String(s) => *length += s.len(),
        Value::Number(n) => {
            align(length);
            *length += 4 + numeric_data_size(&n.to_string()).unwrap_or(2);
        }
        Value::Array(_) | Value::Object(_) => {
            align(length);
            container(value, length);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_numeric(text: &str) -> usize {
        stored_varlena(numeric_data_size(text).unwrap())
    }

    fn stored_jsonb(text: &str) -> usize {
        stored_varlena(jsonb_data_size(&serde_json::from_str(text).unwrap()))
    }

    // The expected sizes are PostgreSQL 15's pg_column_size of the values
    // stored in a table.
    #[test]
    fn numerics_take_postgres_bytes() {
        assert_eq!(stored_numeric("1.5"), 7);
        assert_eq!(stored_numeric("12345678.9"), 9);
        assert_eq!(stored_numeric("0"), 3);
        assert_eq!(stored_numeric("-100000"), 5);
        assert_eq!(stored_numeric("1"), 5);
        assert_eq!(stored_numeric("1.25"), 7);
        assert_eq!(stored_numeric("10000"), 5);
        assert_eq!(stored_numeric("0.0001"), 5);
        assert_eq!(stored_numeric("0.00001"), 5);
        assert_eq!(stored_numeric("1e3"), 5);
        assert_eq!(numeric_data_size("abc"), None);
        assert_eq!(numeric_data_size("."), None);
    }

    #[test]
    fn jsonb_takes_postgres_bytes() {
        assert_eq!(stored_jsonb(r#"{"a": 1}"#), 25);
        assert_eq!(
            stored_jsonb(r#"{"a": "xyz", "b": [1, 2, true, null], "c": {"d": 1.25}}"#),
            99
        );
        assert_eq!(stored_jsonb("[]"), 5);
        assert_eq!(stored_jsonb(r#""s""#), 10);
    }

    #[test]
    fn long_values_take_a_four_byte_header() {
        assert_eq!(stored_varlena(3), 4);
        assert_eq!(stored_varlena(126), 127);
        assert_eq!(stored_varlena(127), 131);
        assert_eq!(stored_varlena(200), 204);
    }
}
