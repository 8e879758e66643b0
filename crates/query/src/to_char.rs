//! `to_char(timestamptz | timestamp | date, template)`: PostgreSQL's
//! template patterns (`YYYY-MM-DD HH24:MI:SS`, `FMMonth DDth`, `"quoted"`
//! text), replacing DataFusion's `to_char`, which reads chrono's `%Y`
//! patterns and copied PostgreSQL's templates through unchanged. Sessions
//! run in UTC, so a timestamptz is formatted in UTC (`TZ` is `UTC`). The
//! numeric and interval forms answer 0A000.

use std::fmt::Write;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{DataFusionError, Result, exec_err, not_impl_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::expr_rules::text_argument;

/// One field of a template.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Hour12,
    Hour24,
    Minute,
    Second,
    Millis,
    Micros,
    /// Fractional seconds to this many digits (`FF1` .. `FF6`).
    Fraction(u32),
    SecondsOfDay,
    Meridiem {
        case: Case,
        dots: bool,
    },
    Era {
        case: Case,
        dots: bool,
    },
    YearComma,
    Year(u32),
    IsoYear(u32),
    Month(Case),
    MonthAbbrev(Case),
    MonthNumber,
    Day(Case),
    DayAbbrev(Case),
    DayOfYear,
    IsoDayOfYear,
    DayOfMonth,
    DayOfWeek,
    IsoDayOfWeek,
    WeekOfMonth,
    WeekOfYear,
    IsoWeek,
    Century,
    Julian,
    Quarter,
    RomanMonth(Case),
    Zone(Case),
    ZoneHours,
    ZoneMinutes,
    Offset,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Upper,
    Capitalized,
    Lower,
}

/// The template keywords, longest first where one starts another.
const KEYWORDS: &[(&str, Field)] = &[
    ("HH24", Field::Hour24),
    ("hh24", Field::Hour24),
    ("HH12", Field::Hour12),
    ("hh12", Field::Hour12),
    ("HH", Field::Hour12),
    ("hh", Field::Hour12),
    ("MI", Field::Minute),
    ("mi", Field::Minute),
    ("SSSSS", Field::SecondsOfDay),
    ("sssss", Field::SecondsOfDay),
    ("SSSS", Field::SecondsOfDay),
    ("ssss", Field::SecondsOfDay),
    ("SS", Field::Second),
    ("ss", Field::Second),
    ("MS", Field::Millis),
    ("ms", Field::Millis),
    ("US", Field::Micros),
    ("us", Field::Micros),
    ("FF1", Field::Fraction(1)),
    ("FF2", Field::Fraction(2)),
    ("FF3", Field::Fraction(3)),
    ("FF4", Field::Fraction(4)),
    ("FF5", Field::Fraction(5)),
    ("FF6", Field::Fraction(6)),
    ("ff1", Field::Fraction(1)),
    ("ff2", Field::Fraction(2)),
    ("ff3", Field::Fraction(3)),
    ("ff4", Field::Fraction(4)),
    ("ff5", Field::Fraction(5)),
    ("ff6", Field::Fraction(6)),
    (
        "A.M.",
        Field::Meridiem {
            case: Case::Upper,
            dots: true,
        },
    ),
    (
        "P.M.",
        Field::Meridiem {
            case: Case::Upper,
            dots: true,
        },
    ),
    (
        "a.m.",
        Field::Meridiem {
            case: Case::Lower,
            dots: true,
        },
    ),
    (
        "p.m.",
        Field::Meridiem {
            case: Case::Lower,
            dots: true,
        },
    ),
    (
        "AM",
        Field::Meridiem {
            case: Case::Upper,
            dots: false,
        },
    ),
    (
        "PM",
        Field::Meridiem {
            case: Case::Upper,
            dots: false,
        },
    ),
    (
        "am",
        Field::Meridiem {
            case: Case::Lower,
            dots: false,
        },
    ),
    (
        "pm",
        Field::Meridiem {
            case: Case::Lower,
            dots: false,
        },
    ),
    (
        "A.D.",
        Field::Era {
            case: Case::Upper,
            dots: true,
        },
    ),
    (
        "B.C.",
        Field::Era {
            case: Case::Upper,
            dots: true,
        },
    ),
    (
        "a.d.",
        Field::Era {
            case: Case::Lower,
            dots: true,
        },
    ),
    (
        "b.c.",
        Field::Era {
            case: Case::Lower,
            dots: true,
        },
    ),
    (
        "AD",
        Field::Era {
            case: Case::Upper,
            dots: false,
        },
    ),
    (
        "BC",
        Field::Era {
            case: Case::Upper,
            dots: false,
        },
    ),
    (
        "ad",
        Field::Era {
            case: Case::Lower,
            dots: false,
        },
    ),
    (
        "bc",
        Field::Era {
            case: Case::Lower,
            dots: false,
        },
    ),
    ("Y,YYY", Field::YearComma),
    ("y,yyy", Field::YearComma),
    ("YYYY", Field::Year(4)),
    ("yyyy", Field::Year(4)),
    ("YYY", Field::Year(3)),
    ("yyy", Field::Year(3)),
    ("YY", Field::Year(2)),
    ("yy", Field::Year(2)),
    ("Y", Field::Year(1)),
    ("y", Field::Year(1)),
    ("IYYY", Field::IsoYear(4)),
    ("iyyy", Field::IsoYear(4)),
    ("IYY", Field::IsoYear(3)),
    ("iyy", Field::IsoYear(3)),
    ("IDDD", Field::IsoDayOfYear),
    ("iddd", Field::IsoDayOfYear),
    ("ID", Field::IsoDayOfWeek),
    ("id", Field::IsoDayOfWeek),
    ("IW", Field::IsoWeek),
    ("iw", Field::IsoWeek),
    ("IY", Field::IsoYear(2)),
    ("iy", Field::IsoYear(2)),
    ("I", Field::IsoYear(1)),
    ("i", Field::IsoYear(1)),
    ("MONTH", Field::Month(Case::Upper)),
    ("Month", Field::Month(Case::Capitalized)),
    ("month", Field::Month(Case::Lower)),
    ("MON", Field::MonthAbbrev(Case::Upper)),
    ("Mon", Field::MonthAbbrev(Case::Capitalized)),
    ("mon", Field::MonthAbbrev(Case::Lower)),
    ("MM", Field::MonthNumber),
    ("mm", Field::MonthNumber),
    ("DAY", Field::Day(Case::Upper)),
    ("Day", Field::Day(Case::Capitalized)),
    ("day", Field::Day(Case::Lower)),
    ("DY", Field::DayAbbrev(Case::Upper)),
    ("Dy", Field::DayAbbrev(Case::Capitalized)),
    ("dy", Field::DayAbbrev(Case::Lower)),
    ("DDD", Field::DayOfYear),
    ("ddd", Field::DayOfYear),
    ("DD", Field::DayOfMonth),
    ("dd", Field::DayOfMonth),
    ("D", Field::DayOfWeek),
    ("d", Field::DayOfWeek),
    ("WW", Field::WeekOfYear),
    ("ww", Field::WeekOfYear),
    ("W", Field::WeekOfMonth),
    ("w", Field::WeekOfMonth),
    ("CC", Field::Century),
    ("cc", Field::Century),
    ("J", Field::Julian),
    ("j", Field::Julian),
    ("Q", Field::Quarter),
    ("q", Field::Quarter),
    ("RM", Field::RomanMonth(Case::Upper)),
    ("rm", Field::RomanMonth(Case::Lower)),
    ("TZH", Field::ZoneHours),
    ("tzh", Field::ZoneHours),
    ("TZM", Field::ZoneMinutes),
    ("tzm", Field::ZoneMinutes),
    ("TZ", Field::Zone(Case::Upper)),
    ("tz", Field::Zone(Case::Lower)),
    ("OF", Field::Offset),
    ("of", Field::Offset),
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const ROMAN: [&str; 12] = [
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII",
];

/// A parsed template piece.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Field {
        field: Field,
        /// `FM`: no padding, no leading zeros.
        fill: bool,
        /// `TH` / `th`: an ordinal suffix, upper-case or not.
        ordinal: Option<bool>,
    },
}

fn parse(template: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            // Quoted text is copied; a backslash escapes the next character.
            let mut chars = rest[1..].char_indices();
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            literal.push(next);
                        }
                    }
                    '"' => {
                        end = i + 2;
                        break;
                    }
                    other => literal.push(other),
                }
            }
            rest = &rest[end.min(rest.len())..];
            continue;
        }
        if c == '\\' && rest[1..].starts_with('"') {
            literal.push('"');
            rest = &rest[2..];
            continue;
        }
        let mut fill = false;
        let mut body = rest;
        loop {
            if let Some(after) = body.strip_prefix("FM").or_else(|| body.strip_prefix("fm")) {
                fill = true;
                body = after;
            } else if let Some(after) = body
                .strip_prefix("FX")
                .or_else(|| body.strip_prefix("fx"))
                .or_else(|| body.strip_prefix("TM"))
                .or_else(|| body.strip_prefix("tm"))
            {
                body = after;
            } else {
                break;
            }
        }
        if let Some((keyword, field)) = KEYWORDS.iter().find(|(k, _)| body.starts_with(k)) {
            body = &body[keyword.len()..];
            let ordinal = if let Some(after) = body.strip_prefix("TH") {
                body = after;
                Some(true)
            } else if let Some(after) = body.strip_prefix("th") {
                body = after;
                Some(false)
            } else {
                None
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Field {
                field: *field,
                fill,
                ordinal,
            });
            rest = body;
            continue;
        }
        literal.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    pieces
}

fn ordinal_suffix(n: i64, upper: bool) -> &'static str {
    let suffix = match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    if upper {
        match suffix {
            "st" => "ST",
            "nd" => "ND",
            "rd" => "RD",
            _ => "TH",
        }
    } else {
        suffix
    }
}

/// `name` (as the tables spell it) in `case`; Capitalized keeps it.
fn cased(name: &str, case: Case) -> String {
    match case {
        Case::Upper => name.to_uppercase(),
        Case::Capitalized => name.to_owned(),
        Case::Lower => name.to_lowercase(),
    }
}

/// A year for `YYYY` (all its digits, at least 4) or `YYY`, `YY`, `Y`
/// (its last digits), with the width to pad it to.
fn last_digits(year: i32, digits: u32) -> (i64, usize) {
    let year = i64::from(year);
    match digits {
        4 => (year, 4),
        n => (year % 10i64.pow(n), n as usize),
    }
}

/// `text` blank-padded to `width` characters, unless in fill mode (`FM`).
fn padded(out: &mut String, text: &str, width: usize, fill: bool) {
    if fill {
        out.push_str(text);
    } else {
        let _ = write!(out, "{text:<width$}");
    }
}

/// Formats `at` (in UTC; `zoned` for a timestamptz) by `pieces`.
fn format(at: &NaiveDateTime, zoned: bool, pieces: &[Piece], out: &mut String) {
    let year = at.year();
    let (era_bc, display_year) = if year <= 0 {
        (true, 1 - year)
    } else {
        (false, year)
    };
    let iso = at.iso_week();
    for piece in pieces {
        let (field, fill, ordinal) = match piece {
            Piece::Literal(text) => {
                out.push_str(text);
                continue;
            }
            Piece::Field {
                field,
                fill,
                ordinal,
            } => (*field, *fill, *ordinal),
        };
        // Numeric fields: (value, width without FM).
        let number: Option<(i64, usize)> = match field {
            Field::Hour12 => Some((((at.hour() + 11) % 12 + 1).into(), 2)),
            Field::Hour24 => Some((at.hour().into(), 2)),
            Field::Minute => Some((at.minute().into(), 2)),
            Field::Second => Some((at.second().into(), 2)),
            Field::Millis => Some(((at.nanosecond() / 1_000_000).into(), 3)),
            Field::Micros => Some(((at.nanosecond() / 1_000).into(), 6)),
            Field::Fraction(digits) => Some((
                (at.nanosecond() / 10u32.pow(9 - digits)).into(),
                digits as usize,
            )),
            Field::SecondsOfDay => Some((at.num_seconds_from_midnight().into(), 0)),
            Field::Year(digits) => Some(last_digits(display_year, digits)),
            Field::IsoYear(digits) => Some(last_digits(iso.year(), digits)),
            Field::MonthNumber => Some((at.month().into(), 2)),
            Field::DayOfYear => Some((at.ordinal().into(), 3)),
            Field::IsoDayOfYear => Some((
                (i64::from(iso.week()) - 1) * 7 + i64::from(at.weekday().number_from_monday()),
                3,
            )),
            Field::DayOfMonth => Some((at.day().into(), 2)),
            Field::DayOfWeek => Some((at.weekday().number_from_sunday().into(), 1)),
            Field::IsoDayOfWeek => Some((at.weekday().number_from_monday().into(), 1)),
            Field::WeekOfMonth => Some((((at.day() - 1) / 7 + 1).into(), 1)),
            Field::WeekOfYear => Some((((at.ordinal() - 1) / 7 + 1).into(), 2)),
            Field::IsoWeek => Some((iso.week().into(), 2)),
            Field::Century => Some((
                if year > 0 {
                    (i64::from(year) + 99) / 100
                } else {
                    -((i64::from(display_year) + 99) / 100)
                },
                2,
            )),
            Field::Julian => Some((i64::from(at.num_days_from_ce()) + 1_721_425, 0)),
            Field::Quarter => Some((((at.month() - 1) / 3 + 1).into(), 1)),
            _ => None,
        };
        if let Some((value, width)) = number {
            if fill || width == 0 {
                let _ = write!(out, "{value}");
            } else if value < 0 {
                let _ = write!(out, "-{:0width$}", -value, width = width.saturating_sub(1));
            } else {
                let _ = write!(out, "{value:0width$}");
            }
            if let Some(upper) = ordinal {
                out.push_str(ordinal_suffix(value.abs(), upper));
            }
            continue;
        }
        match field {
            Field::YearComma => {
                let _ = write!(out, "{},{:03}", display_year / 1000, display_year % 1000);
            }
            Field::Meridiem { case, dots } => {
                let text = match (at.hour() >= 12, dots) {
                    (false, false) => "AM",
                    (true, false) => "PM",
                    (false, true) => "A.M.",
                    (true, true) => "P.M.",
                };
                out.push_str(&cased(text, case));
            }
            Field::Era { case, dots } => {
                let text = match (era_bc, dots) {
                    (false, false) => "AD",
                    (true, false) => "BC",
                    (false, true) => "A.D.",
                    (true, true) => "B.C.",
                };
                out.push_str(&cased(text, case));
            }
            Field::Month(case) => {
                padded(out, &cased(MONTHS[at.month0() as usize], case), 9, fill);
            }
            Field::MonthAbbrev(case) => {
                out.push_str(&cased(&MONTHS[at.month0() as usize][..3], case));
            }
            Field::Day(case) => {
                let name = DAYS[at.weekday().num_days_from_sunday() as usize];
                padded(out, &cased(name, case), 9, fill);
            }
            Field::DayAbbrev(case) => {
                let name = DAYS[at.weekday().num_days_from_sunday() as usize];
                out.push_str(&cased(&name[..3], case));
            }
            Field::RomanMonth(case) => {
                padded(out, &cased(ROMAN[at.month0() as usize], case), 4, fill);
            }
            // A timestamp has no zone to name.
            Field::Zone(case) if zoned => out.push_str(&cased("UTC", case)),
            // The offset from UTC, which a timestamp has too.
            Field::ZoneHours | Field::Offset => out.push_str("+00"),
            Field::ZoneMinutes => out.push_str("00"),
            _ => {}
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [
                DataType::Timestamp(..) | DataType::Date32 | DataType::Date64,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null,
            ] => Ok(DataType::Utf8),
            [
                DataType::Timestamp(..) | DataType::Date32 | DataType::Date64,
                other,
            ] => {
                exec_err!("to_char's template must be text, not {other}")
            }
            [first, _] => {
                let name = tempora_types::PgType::of_arrow(first)
                    .map_or_else(|_| first.to_string(), |t| t.to_string());
                not_impl_err!(
                    "to_char of {name} is not supported: tempora formats timestamps, timestamptz and dates"
                )
            }
            _ => exec_err!("to_char takes a value and a template"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let values = args.args[0].to_array(rows)?;
        let zoned = matches!(values.data_type(), DataType::Timestamp(_, Some(_)))
            || matches!(values.data_type(), DataType::Date32 | DataType::Date64);
        let micros: ArrayRef = datafusion::arrow::compute::cast(
            &values,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let micros = micros.as_primitive::<TimestampMicrosecondType>();
        let templates = text_argument(&args.args[1], rows)?;
        let templates = templates.as_string::<i32>();
        // A constant template is parsed once.
        let constant = matches!(args.args[1], ColumnarValue::Scalar(_));
        let parsed_once = (constant && !templates.is_empty() && templates.is_valid(0))
            .then(|| parse(templates.value(0)));
        let mut out = StringBuilder::with_capacity(rows, rows * 20);
        let mut text = String::new();
        for row in 0..rows {
            if micros.is_null(row) || templates.is_null(row) {
                out.append_null();
                continue;
            }
            let at = DateTime::from_timestamp_micros(micros.value(row))
                .ok_or_else(|| {
                    DataFusionError::Execution("timestamp out of range for to_char".to_owned())
                })?
                .naive_utc();
            text.clear();
            match &parsed_once {
                Some(pieces) => format(&at, zoned, pieces, &mut text),
                None => format(&at, zoned, &parse(templates.value(row)), &mut text),
            }
            out.append_value(&text);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

pub(crate) fn to_char() -> ScalarUDF {
    ScalarUDF::from(ToChar {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(at: &str, template: &str) -> String {
        let at = NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        let mut out = String::new();
        format(&at, true, &parse(template), &mut out);
        out
    }

    // Expected values are PostgreSQL 15's for the same timestamptz in UTC.
    #[test]
    fn templates_format_as_postgres_does() {
        let at = "2024-01-05 13:04:05.123456";
        assert_eq!(
            formatted(at, "YYYY-MM-DD HH24:MI:SS"),
            "2024-01-05 13:04:05"
        );
        assert_eq!(formatted(at, "HH12:MI AM, FMHH12 pm"), "01:04 PM, 1 pm");
        assert_eq!(
            formatted(at, "Month|MON|mon|FMMonth"),
            "January  |JAN|jan|January"
        );
        assert_eq!(formatted(at, "Day|DY|Dy|FMDay"), "Friday   |FRI|Fri|Friday");
        assert_eq!(formatted(at, "DDth FMDDth DDD D ID"), "05th 5th 005 6 5");
        assert_eq!(
            formatted(at, "IYYY-IW WW W Q CC J"),
            "2024-01 01 1 1 21 2460315"
        );
        assert_eq!(formatted(at, "MS US FF2 SSSS"), "123 123456 12 47045");
        assert_eq!(
            formatted(at, "\"Year\" YYYY \"\\\"q\\\"\" TZ OF"),
            "Year 2024 \"q\" UTC +00"
        );
        assert_eq!(
            formatted(at, "Y,YYY YYY YY Y RM FMrm"),
            "2,024 024 24 4 I    i"
        );
        assert_eq!(
            formatted("2023-01-01 00:00:00", "IYYY IW IDDD"),
            "2022 52 364"
        );
        assert_eq!(
            formatted("2024-03-22 00:00:00", "FMDDTH FMDDth"),
            "22ND 22nd"
        );
        assert_eq!(
            formatted(
                "2024-01-05 13:04:05",
                "HH:MI:SS.MS a.m. b.c. AD TZH:TZM SSSSS"
            ),
            "01:04:05.000 p.m. a.d. AD +00:00 47045"
        );
        let mut out = String::new();
        let at = NaiveDateTime::parse_from_str("2024-03-22 10:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        format(&at, false, &parse("YYYY [TZ] [OF]"), &mut out);
        assert_eq!(out, "2024 [] [+00]");
    }
}
