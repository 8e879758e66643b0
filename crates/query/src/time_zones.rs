//! `ts AT TIME ZONE zone`, PostgreSQL's `timezone(zone, ts)`: a
//! timestamptz becomes the wall-clock timestamp (without time zone) of
//! that instant in `zone`; a timestamp is read as wall-clock time in `zone`
//! and becomes that instant (a timestamptz). DataFusion's AT TIME ZONE kept
//! a timestamptz a timestamptz, so it printed the instant in UTC
//! unchanged.
//!
//! A zone is an IANA name (`Europe/Berlin`, `UTC`, `EST`) or a numeric
//! offset, which PostgreSQL reads the POSIX way: `'+02'` is two hours west
//! of Greenwich (UTC-2), `'-05:30'` is UTC+5:30. A wall-clock time that a
//! zone's clocks skip or repeat is read as PostgreSQL reads it: one that
//! repeats as the later instant (standard time), one that is skipped with
//! the offset in force before the change.

use std::sync::Arc;

use chrono::{Offset, TimeZone};
use datafusion::arrow::array::{Array, AsArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use tempora_types::PgType;

use crate::expr_rules::text_argument;

const MICROS_PER_SECOND: i64 = 1_000_000;

#[derive(Debug, PartialEq, Eq, Hash)]
struct AtTimeZone {
    signature: Signature,
}

impl ScalarUDFImpl for AtTimeZone {
    fn name(&self) -> &str {
        "timezone"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[1] {
            DataType::Timestamp(_, Some(_)) => Ok(PgType::Timestamp.arrow_type()),
            DataType::Timestamp(_, None) => Ok(PgType::Timestamptz.arrow_type()),
            other => exec_err!("function timezone(text, {other}) does not exist"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let zones = text_argument(&args.args[0], rows)?;
        let zones = zones.as_string::<i32>();
        let input = args.args[1].to_array(rows)?;
        let to_local = matches!(input.data_type(), DataType::Timestamp(_, Some(_)));
        let input = datafusion::arrow::compute::cast(
            &input,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let input = input.as_primitive::<TimestampMicrosecondType>();
        let mut parsed: Option<(String, Zone)> = None;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            if input.is_null(row) || zones.is_null(row) {
                out.push(None);
                continue;
            }
            let name = zones.value(row);
            let zone = match &parsed {
                Some((last, zone)) if last == name => *zone,
                _ => {
                    let zone = Zone::parse(name)?;
                    parsed = Some((name.to_owned(), zone));
                    zone
                }
            };
            let micros = input.value(row);
            out.push(Some(if to_local {
                zone.utc_to_local(micros)
            } else {
                zone.local_to_utc(micros)
            }));
        }
        let array = TimestampMicrosecondArray::from(out);
        let array: Arc<dyn Array> = match to_local {
            true => Arc::new(array),
            false => Arc::new(array.with_timezone(tempora_types::UTC_ZONE)),
        };
        Ok(ColumnarValue::Array(array))
    }
}

pub(crate) fn timezone() -> ScalarUDF {
    ScalarUDF::from(AtTimeZone {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// A time zone as AT TIME ZONE reads one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Zone {
    Named(chrono_tz::Tz),
    /// Seconds east of UTC.
    Fixed(i64),
}

impl Zone {
    fn parse(name: &str) -> Result<Zone> {
        if let Ok(zone) = name.parse::<chrono_tz::Tz>() {
            return Ok(Zone::Named(zone));
        }
        if let Ok(zone) = name.to_ascii_uppercase().parse::<chrono_tz::Tz>() {
            return Ok(Zone::Named(zone));
        }
        posix_offset(name)
            .map(|west| Zone::Fixed(-west))
            .ok_or_else(|| {
                crate::error::Error::InvalidParameter {
                    message: format!("time zone \"{name}\" not recognized"),
                }
                .into()
            })
    }

    /// Seconds east of UTC in force at UTC instant `utc_seconds`.
    pub(crate) fn offset_at(&self, utc_seconds: i64) -> i64 {
        match self {
            Zone::Fixed(east) => *east,
            Zone::Named(zone) => chrono::DateTime::from_timestamp(utc_seconds, 0)
                .map(|utc| {
                    i64::from(
                        zone.offset_from_utc_datetime(&utc.naive_utc())
                            .fix()
                            .local_minus_utc(),
                    )
                })
                .unwrap_or(0),
        }
    }

    fn utc_to_local(&self, micros: i64) -> i64 {
        let offset = self.offset_at(micros.div_euclid(MICROS_PER_SECOND));
        micros.saturating_add(offset * MICROS_PER_SECOND)
    }

    fn local_to_utc(&self, micros: i64) -> i64 {
        let local_seconds = micros.div_euclid(MICROS_PER_SECOND);
        let offset = match self {
            Zone::Fixed(east) => *east,
            Zone::Named(zone) => {
                let local = chrono::DateTime::from_timestamp(local_seconds, 0)
                    .map(|t| t.naive_utc())
                    .map(|naive| zone.offset_from_local_datetime(&naive));
                match local {
                    Some(chrono::LocalResult::Single(offset)) => {
                        i64::from(offset.fix().local_minus_utc())
                    }
                    // Repeated: the later instant, whose offset is the smaller.
                    Some(chrono::LocalResult::Ambiguous(a, b)) => {
                        i64::from(a.fix().local_minus_utc().min(b.fix().local_minus_utc()))
                    }
                    // Skipped: the offset in force a day before.
                    Some(chrono::LocalResult::None) | None => {
                        self.offset_at(local_seconds.saturating_sub(86_400))
                    }
                }
            }
        };
        micros.saturating_sub(offset * MICROS_PER_SECOND)
    }
}

/// A POSIX-style offset (`+02`, `-05:30`, `5`, `+3:15:10`): seconds west
/// of UTC.
fn posix_offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => (1, text),
    };
    let mut parts = digits.split(':');
    let mut seconds = 0i64;
    for (index, scale) in [3600i64, 60, 1].into_iter().enumerate() {
        match parts.next() {
            Some(part)
                if !part.is_empty()
                    && part.len() <= 2
                    && part.bytes().all(|b| b.is_ascii_digit()) =>
            {
                seconds += part.parse::<i64>().ok()? * scale;
            }
            None if index > 0 => break,
            _ => return None,
        }
    }
    if parts.next().is_some() || seconds > 15 * 3600 + 59 * 60 + 59 {
        return None;
    }
    Some(sign * seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempora_types::datetime::{format_timestamp, parse_timestamp, parse_timestamptz};

    fn text(micros: i64, zone: bool) -> String {
        let mut out = String::new();
        format_timestamp(micros, zone, &mut out).unwrap();
        out
    }

    #[test]
    fn zones_shift_as_postgres_shifts() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let instant = parse_timestamptz("2024-03-01 10:00+00").unwrap();
        assert_eq!(
            text(berlin.utc_to_local(instant), false),
            "2024-03-01 11:00:00"
        );
        let local = parse_timestamp("2024-03-01 10:00").unwrap();
        assert_eq!(
            text(berlin.local_to_utc(local), true),
            "2024-03-01 09:00:00+00"
        );
        // POSIX signs: '+02' is UTC-2, '-05:30' is UTC+5:30.
        let west = Zone::parse("+02").unwrap();
        assert_eq!(
            text(west.utc_to_local(instant), false),
            "2024-03-01 08:00:00"
        );
        let east = Zone::parse("-05:30").unwrap();
        assert_eq!(
            text(east.utc_to_local(instant), false),
            "2024-03-01 15:30:00"
        );
        let utc = Zone::parse("utc").unwrap();
        assert_eq!(
            text(utc.utc_to_local(instant), false),
            "2024-03-01 10:00:00"
        );
        // New York repeats 01:30 on 2024-11-03 and skips 02:30 on 2024-03-10.
        let new_york = Zone::parse("America/New_York").unwrap();
        let repeated = parse_timestamp("2024-11-03 01:30").unwrap();
        assert_eq!(
            text(new_york.local_to_utc(repeated), true),
            "2024-11-03 06:30:00+00"
        );
        let skipped = parse_timestamp("2024-03-10 02:30").unwrap();
        assert_eq!(
            text(new_york.local_to_utc(skipped), true),
            "2024-03-10 07:30:00+00"
        );
        assert!(Zone::parse("Nowhere/X").is_err());
        assert!(Zone::parse("+99").is_err());
        assert!(Zone::parse("").is_err());
    }
}
