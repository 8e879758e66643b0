//! Dates, timestamps and intervals in PostgreSQL's text formats.
//!
//! Timestamps are microseconds since 1970-01-01 00:00:00 UTC; dates are days
//! since 1970-01-01; intervals are Arrow's (months, days, nanoseconds), whose
//! nanoseconds are always whole microseconds here, as PostgreSQL keeps them.

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::datatypes::IntervalMonthDayNano;

use crate::{Error, Result};

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;
/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's binary epoch.
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS as i64 * MICROS_PER_DAY;

fn unix_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn invalid(type_name: &str, input: &str) -> Error {
    Error::InvalidText {
        type_name: type_name.to_owned(),
        input: input.to_owned(),
    }
}

/// Days since the Unix epoch of a calendar date, or None if it does not exist.
pub fn days_from_ymd(year: i32, month: u32, day: u32) -> Option<i32> {
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    i32::try_from(date.signed_duration_since(unix_epoch()).num_days()).ok()
}

/// The calendar date of a day number, or None outside the supported calendar.
pub fn ymd_from_days(days: i32) -> Option<(i32, u32, u32)> {
    let date = unix_epoch().checked_add_signed(chrono::Duration::try_days(days as i64)?)?;
    Some((date.year(), date.month(), date.day()))
}

fn out_of_range() -> Error {
    Error::DatetimeOutOfRange {
        input: "timestamp out of range".to_owned(),
    }
}

/// A small cursor over the bytes of a date/time literal.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }
    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }
    /// Reads 1 to `max_digits` decimal digits.
    fn number(&mut self, max_digits: usize) -> Option<(i64, usize)> {
        let start = self.pos;
        let mut value: i64 = 0;
        while self.pos - start < max_digits {
            match self.peek() {
                Some(b @ b'0'..=b'9') => {
                    value = value * 10 + (b - b'0') as i64;
                    self.pos += 1;
                }
                _ => break,
            }
        }
        let digits = self.pos - start;
        (digits > 0).then_some((value, digits))
    }
    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }
    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Parses `YYYY-MM-DD` at the cursor into days since the epoch.
fn parse_date_part(cursor: &mut Cursor<'_>, type_name: &str, input: &str) -> Result<i32> {
    let (year, _) = cursor.number(6).ok_or_else(|| invalid(type_name, input))?;
    if !cursor.eat(b'-') {
        return Err(invalid(type_name, input));
    }
    let (month, _) = cursor.number(2).ok_or_else(|| invalid(type_name, input))?;
    if !cursor.eat(b'-') {
        return Err(invalid(type_name, input));
    }
    let (day, _) = cursor.number(2).ok_or_else(|| invalid(type_name, input))?;
    let mut year = year as i32;
    // "2024-01-01 BC" is handled by the caller; PostgreSQL has no year 0.
    if year == 0 {
        return Err(Error::DatetimeOutOfRange {
            input: input.to_owned(),
        });
    }
    if cursor.rest().ends_with(b" BC") {
        year = 1 - year;
    }
    days_from_ymd(year, month as u32, day as u32).ok_or_else(|| Error::DatetimeOutOfRange {
        input: input.to_owned(),
    })
}

/// Parses `HH:MM[:SS[.ffffff]]` at the cursor into microseconds of the day.
fn parse_time_part(cursor: &mut Cursor<'_>, type_name: &str, input: &str) -> Result<i64> {
    let (hour, _) = cursor.number(2).ok_or_else(|| invalid(type_name, input))?;
    if !cursor.eat(b':') {
        return Err(invalid(type_name, input));
    }
    let (minute, _) = cursor.number(2).ok_or_else(|| invalid(type_name, input))?;
    let mut second = 0;
    let mut micros = 0;
    if cursor.eat(b':') {
        second = cursor.number(2).ok_or_else(|| invalid(type_name, input))?.0;
        if cursor.eat(b'.') {
            let start = cursor.pos;
            let (fraction, digits) = cursor.number(18).ok_or_else(|| invalid(type_name, input))?;
            micros = round_fraction_to_micros(fraction, digits);
            let _ = start;
        }
    }
    if hour > 24 || minute > 59 || second > 60 || (hour == 24 && (minute > 0 || second > 0)) {
        return Err(Error::DatetimeOutOfRange {
            input: input.to_owned(),
        });
    }
    Ok(hour * MICROS_PER_HOUR + minute * MICROS_PER_MINUTE + second * MICROS_PER_SECOND + micros)
}

/// Rounds a decimal fraction with `digits` digits to whole microseconds (half away from zero).
fn round_fraction_to_micros(fraction: i64, digits: usize) -> i64 {
    if digits <= 6 {
        fraction * 10_i64.pow((6 - digits) as u32)
    } else {
        let divisor = 10_i64.pow((digits - 6) as u32);
        (fraction + divisor / 2) / divisor
    }
}

/// Parses a time zone suffix (`Z`, `UTC`, `+05`, `-03:30`, `+0530`) into seconds east of UTC.
fn parse_zone(cursor: &mut Cursor<'_>, type_name: &str, input: &str) -> Result<Option<i64>> {
    cursor.skip_spaces();
    let rest = cursor.rest();
    if rest.is_empty() || rest == b"BC" || rest == b"AD" {
        return Ok(None);
    }
    let upper = rest.to_ascii_uppercase();
    for name in [&b"UTC"[..], b"Z", b"GMT", b"ETC/UTC", b"UCT"] {
        if upper == name {
            cursor.pos = cursor.bytes.len();
            return Ok(Some(0));
        }
    }
    let sign = match cursor.peek() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(invalid(type_name, input)),
    };
    cursor.pos += 1;
    let (first, digits) = cursor.number(4).ok_or_else(|| invalid(type_name, input))?;
    let (hours, mut minutes) = if digits > 2 {
        (first / 100, first % 100)
    } else {
        (first, 0)
    };
    let mut seconds = 0;
    if cursor.eat(b':') {
        minutes = cursor.number(2).ok_or_else(|| invalid(type_name, input))?.0;
        if cursor.eat(b':') {
            seconds = cursor.number(2).ok_or_else(|| invalid(type_name, input))?.0;
        }
    }
    if hours > 15 || minutes > 59 {
        return Err(Error::OutOfRange {
            message: format!("time zone displacement out of range: \"{input}\""),
        });
    }
    Ok(Some(sign * (hours * 3600 + minutes * 60 + seconds)))
}

/// Parses a `timestamptz` literal into microseconds since the epoch, UTC.
/// A literal without a zone is taken as UTC, the session time zone.
pub fn parse_timestamptz(input: &str) -> Result<i64> {
    parse_timestamp_inner(input, "timestamp with time zone", true)
}

/// Parses a `timestamp` (without time zone) literal; a zone suffix is ignored, as PostgreSQL does.
pub fn parse_timestamp(input: &str) -> Result<i64> {
    parse_timestamp_inner(input, "timestamp without time zone", false)
}

fn parse_timestamp_inner(input: &str, type_name: &str, apply_zone: bool) -> Result<i64> {
    let trimmed = input.trim();
    // Only the special words start with a letter (after a sign).
    let unsigned = trimmed.strip_prefix('-').unwrap_or(trimmed);
    if unsigned.starts_with(|c: char| c.is_ascii_alphabetic()) {
        if trimmed.eq_ignore_ascii_case("epoch") {
            return Ok(0);
        }
        if trimmed.eq_ignore_ascii_case("infinity") || trimmed.eq_ignore_ascii_case("-infinity") {
            return Err(Error::OutOfRange {
                message: format!("timestamp out of range: \"{input}\""),
            });
        }
    }
    let mut cursor = Cursor::new(trimmed);
    let days = parse_date_part(&mut cursor, type_name, input)?;
    let mut micros_of_day = 0;
    if cursor.eat(b'T') || cursor.eat(b't') || cursor.eat(b' ') {
        cursor.skip_spaces();
        if cursor.peek().is_some_and(|b| b.is_ascii_digit()) {
            micros_of_day = parse_time_part(&mut cursor, type_name, input)?;
        }
    }
    let zone_seconds = parse_zone(&mut cursor, type_name, input)?;
    cursor.skip_spaces();
    let rest = cursor.rest();
    if !(rest.is_empty() || rest == b"BC" || rest == b"AD") {
        return Err(invalid(type_name, input));
    }
    let local = (days as i64)
        .checked_mul(MICROS_PER_DAY)
        .and_then(|v| v.checked_add(micros_of_day))
        .ok_or_else(|| Error::DatetimeOutOfRange {
            input: input.to_owned(),
        })?;
    Ok(match (apply_zone, zone_seconds) {
        (true, Some(offset)) => local - offset * MICROS_PER_SECOND,
        _ => local,
    })
}

/// Parses a `date` literal into days since the epoch.
pub fn parse_date(input: &str) -> Result<i32> {
    let trimmed = input.trim();
    if trimmed.eq_ignore_ascii_case("epoch") {
        return Ok(0);
    }
    let mut cursor = Cursor::new(trimmed);
    let days = parse_date_part(&mut cursor, "date", input)?;
    cursor.skip_spaces();
    let rest = cursor.rest();
    if !(rest.is_empty() || rest == b"BC" || rest == b"AD") {
        // A date literal may carry a time, which is dropped.
        if rest.first().is_some_and(|b| b.is_ascii_digit()) {
            parse_time_part(&mut cursor, "date", input)?;
            parse_zone(&mut cursor, "date", input)?;
            if !cursor.done() {
                return Err(invalid("date", input));
            }
        } else {
            return Err(invalid("date", input));
        }
    }
    Ok(days)
}

fn push_two(out: &mut String, value: u32) {
    out.push((b'0' + (value / 10) as u8) as char);
    out.push((b'0' + (value % 10) as u8) as char);
}

fn push_date(out: &mut String, days: i32) -> Result<()> {
    let (year, month, day) = ymd_from_days(days).ok_or_else(out_of_range)?;
    let (display_year, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    push_year(out, display_year);
    out.push('-');
    push_two(out, month);
    out.push('-');
    push_two(out, day);
    if bc {
        out.push_str(" BC");
    }
    Ok(())
}

/// Appends `HH:MM:SS[.ffffff]`, trimming trailing fractional zeros as PostgreSQL does.
fn push_time(out: &mut String, micros_of_day: i64) {
    let hours = micros_of_day / MICROS_PER_HOUR;
    let minutes = (micros_of_day / MICROS_PER_MINUTE) % 60;
    let seconds = (micros_of_day / MICROS_PER_SECOND) % 60;
    let fraction = micros_of_day % MICROS_PER_SECOND;
    push_two(out, hours as u32);
    out.push(':');
    push_two(out, minutes as u32);
    out.push(':');
    push_two(out, seconds as u32);
    push_fraction(out, fraction);
}

/// A year of at least four digits, as PostgreSQL prints it.
fn push_year(out: &mut String, year: i32) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{year:04}");
}

/// `.` and the fraction's digits without trailing zeros; nothing for 0.
fn push_fraction(out: &mut String, fraction_micros: i64) {
    if fraction_micros != 0 {
        out.push('.');
        let mut fraction = fraction_micros;
        let mut digits = 6;
        while fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        for place in (0..digits).rev() {
            out.push((b'0' + (fraction / 10i64.pow(place) % 10) as u8) as char);
        }
    }
}

/// Formats days since the epoch as PostgreSQL prints a `date` (ISO DateStyle).
pub fn format_date(days: i32, out: &mut String) -> Result<()> {
    push_date(out, days)
}

/// Formats a timestamp; with `zone_suffix` it is a `timestamptz` printed in UTC (`+00`).
pub fn format_timestamp(micros: i64, zone_suffix: bool, out: &mut String) -> Result<()> {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let micros_of_day = micros.rem_euclid(MICROS_PER_DAY);
    let days = i32::try_from(days).map_err(|_| out_of_range())?;
    let (year, month, day) = ymd_from_days(days).ok_or_else(out_of_range)?;
    let bc = year <= 0;
    let display_year = if bc { 1 - year } else { year };
    push_year(out, display_year);
    out.push('-');
    push_two(out, month);
    out.push('-');
    push_two(out, day);
    out.push(' ');
    push_time(out, micros_of_day);
    if zone_suffix {
        out.push_str("+00");
    }
    if bc {
        out.push_str(" BC");
    }
    Ok(())
}

/// Formats an interval in PostgreSQL's default `postgres` IntervalStyle:
/// `1 year 2 mons 3 days 04:05:06.789`, `-1 days`, `00:00:00`.
pub fn format_interval(interval: IntervalMonthDayNano, out: &mut String) {
    let years = interval.months / 12;
    let months = interval.months % 12;
    let days = interval.days;
    let micros = interval.nanoseconds / 1_000;
    let mut wrote = false;
    let mut push_unit = |out: &mut String, value: i32, singular: &str, plural: &str| {
        if value != 0 {
            if wrote {
                out.push(' ');
            }
            out.push_str(&value.to_string());
            out.push(' ');
            out.push_str(if value == 1 { singular } else { plural });
            wrote = true;
        }
    };
    push_unit(out, years, "year", "years");
    push_unit(out, months, "mon", "mons");
    push_unit(out, days, "day", "days");
    if micros != 0 || !wrote {
        if wrote {
            out.push(' ');
        }
        // PostgreSQL prints a sign on the time part only when it is negative, or
        // when an earlier field was negative and this one is positive.
        let negative = micros < 0;
        let earlier_negative = years < 0 || months < 0 || days < 0;
        if negative {
            out.push('-');
        } else if earlier_negative && micros != 0 {
            out.push('+');
        }
        let abs = micros.unsigned_abs() as i64;
        let hours = abs / MICROS_PER_HOUR;
        let minutes = (abs / MICROS_PER_MINUTE) % 60;
        let seconds = (abs / MICROS_PER_SECOND) % 60;
        if hours < 10 {
            out.push('0');
        }
        out.push_str(&hours.to_string());
        out.push(':');
        push_two(out, minutes as u32);
        out.push(':');
        push_two(out, seconds as u32);
        push_fraction(out, abs % MICROS_PER_SECOND);
    }
}

/// Parses an interval literal: `1 day`, `48 hours`, `1 hour 30 minutes`, `01:30:00`,
/// `1 day 02:00:00`, `-1 week`, `1.5 hours`, `P1DT2H` (ISO 8601), `@ 1 day ago`.
pub fn parse_interval(input: &str) -> Result<IntervalMonthDayNano> {
    let err = || invalid("interval", input);
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(err());
    }
    if let Some(iso) = trimmed
        .strip_prefix('P')
        .or_else(|| trimmed.strip_prefix('p'))
    {
        return parse_iso_interval(iso).ok_or_else(err);
    }
    let mut months: i64 = 0;
    let mut days: i64 = 0;
    let mut micros: f64 = 0.0;
    let mut saw_field = false;
    let mut ago = false;
    let lower = trimmed.to_ascii_lowercase();
    let tokens: Vec<&str> = lower.trim_start_matches('@').split_whitespace().collect();
    let mut index = 0;
    while index < tokens.len() {
        let token = tokens[index];
        if token == "ago" {
            ago = true;
            index += 1;
            continue;
        }
        if token.contains(':') {
            micros += parse_clock(token).ok_or_else(err)?;
            saw_field = true;
            index += 1;
            continue;
        }
        // A number, optionally glued to its unit ("10min", "2h").
        let split = token
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
            .unwrap_or(token.len());
        let (number_text, glued_unit) = token.split_at(split);
        let value: f64 = number_text.parse().map_err(|_| err())?;
        let unit = if glued_unit.is_empty() {
            index += 1;
            match tokens.get(index) {
                Some(unit) => *unit,
                // A bare number is seconds.
                None => "second",
            }
        } else {
            glued_unit
        };
        index += 1;
        let unit = unit.trim_end_matches(',');
        match unit {
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => {
                micros += value
            }
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => {
                micros += value * 1_000.0
            }
            "second" | "seconds" | "s" | "sec" | "secs" => micros += value * 1e6,
            "minute" | "minutes" | "m" | "min" | "mins" => micros += value * 6e7,
            "hour" | "hours" | "h" | "hr" | "hrs" => micros += value * 3.6e9,
            "day" | "days" | "d" => {
                days += value.trunc() as i64;
                micros += value.fract() * MICROS_PER_DAY as f64;
            }
            "week" | "weeks" | "w" => {
                let total_days = value * 7.0;
                days += total_days.trunc() as i64;
                micros += total_days.fract() * MICROS_PER_DAY as f64;
            }
            "month" | "months" | "mon" | "mons" => {
                months += value.trunc() as i64;
                let fraction_days = value.fract() * 30.0;
                days += fraction_days.trunc() as i64;
                micros += fraction_days.fract() * MICROS_PER_DAY as f64;
            }
            "year" | "years" | "y" | "yr" | "yrs" => {
                months += (value * 12.0).round() as i64;
            }
            "decade" | "decades" => months += (value * 120.0).round() as i64,
            "century" | "centuries" => months += (value * 1200.0).round() as i64,
            "millennium" | "millennia" => months += (value * 12000.0).round() as i64,
            _ => return Err(err()),
        }
        saw_field = true;
    }
    if !saw_field {
        return Err(err());
    }
    let sign = if ago { -1 } else { 1 };
    let months = i32::try_from(months * sign).map_err(|_| Error::OutOfRange {
        message: "interval out of range".to_owned(),
    })?;
    let days = i32::try_from(days * sign).map_err(|_| Error::OutOfRange {
        message: "interval out of range".to_owned(),
    })?;
    let micros = micros.round() as i64 * sign;
    Ok(IntervalMonthDayNano {
        months,
        days,
        nanoseconds: micros.checked_mul(1_000).ok_or_else(|| Error::OutOfRange {
            message: "interval out of range".to_owned(),
        })?,
    })
}

/// `[-]HH:MM[:SS[.ffffff]]` as microseconds.
fn parse_clock(token: &str) -> Option<f64> {
    let (negative, body) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token.strip_prefix('+').unwrap_or(token)),
    };
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let hours: f64 = parts[0].parse().ok()?;
    let minutes: f64 = parts[1].parse().ok()?;
    let seconds: f64 = match parts.get(2) {
        Some(s) => s.parse().ok()?,
        None => 0.0,
    };
    let total = hours * 3.6e9 + minutes * 6e7 + seconds * 1e6;
    Some(if negative { -total } else { total })
}

/// ISO 8601 durations after the `P`: `1Y2M3DT4H5M6S`, `T1H`, `2W`.
fn parse_iso_interval(body: &str) -> Option<IntervalMonthDayNano> {
    let mut months: i64 = 0;
    let mut days: i64 = 0;
    let mut micros: f64 = 0.0;
    let mut in_time = false;
    let mut number = String::new();
    for c in body.chars() {
        match c.to_ascii_uppercase() {
            'T' => in_time = true,
            '0'..='9' | '.' | '-' => number.push(c),
            unit => {
                let value: f64 = number.parse().ok()?;
                number.clear();
                match (in_time, unit) {
                    (false, 'Y') => months += (value * 12.0) as i64,
                    (false, 'M') => months += value as i64,
                    (false, 'W') => days += (value * 7.0) as i64,
                    (false, 'D') => days += value as i64,
                    (true, 'H') => micros += value * 3.6e9,
                    (true, 'M') => micros += value * 6e7,
                    (true, 'S') => micros += value * 1e6,
                    _ => return None,
                }
            }
        }
    }
    if !number.is_empty() {
        return None;
    }
    Some(IntervalMonthDayNano {
        months: i32::try_from(months).ok()?,
        days: i32::try_from(days).ok()?,
        nanoseconds: (micros.round() as i64).checked_mul(1_000)?,
    })
}

/// The length of an interval in microseconds when months count 30 days, as
/// TimescaleDB does for chunk intervals and time_bucket widths.
pub fn interval_to_micros(interval: IntervalMonthDayNano) -> i64 {
    interval.months as i64 * 30 * MICROS_PER_DAY
        + interval.days as i64 * MICROS_PER_DAY
        + interval.nanoseconds / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> String {
        let mut out = String::new();
        format_timestamp(parse_timestamptz(text).unwrap(), true, &mut out).unwrap();
        out
    }

    #[test]
    fn timestamptz_formats_like_postgres() {
        assert_eq!(ts("2024-01-01"), "2024-01-01 00:00:00+00");
        assert_eq!(ts("2024-01-01 12:34:56.5"), "2024-01-01 12:34:56.5+00");
        assert_eq!(ts("2024-01-01T12:34:56Z"), "2024-01-01 12:34:56+00");
        assert_eq!(ts("2024-01-01 02:00:00+02"), "2024-01-01 00:00:00+00");
        assert_eq!(ts("2024-01-01 02:00:00-03:30"), "2024-01-01 05:30:00+00");
        assert_eq!(
            ts("1969-12-31 23:59:59.999999"),
            "1969-12-31 23:59:59.999999+00"
        );
        assert_eq!(ts("2024-02-29 00:00:00 UTC"), "2024-02-29 00:00:00+00");
    }

    #[test]
    fn bad_timestamps_are_rejected() {
        assert!(matches!(
            parse_timestamptz("yesterday-ish"),
            Err(Error::InvalidText { .. })
        ));
        assert!(matches!(
            parse_timestamptz("2023-02-29"),
            Err(Error::DatetimeOutOfRange { .. })
        ));
        assert!(parse_timestamptz("2024-01-01 25:00:00").is_err());
    }

    fn iv(text: &str) -> String {
        let mut out = String::new();
        format_interval(parse_interval(text).unwrap(), &mut out);
        out
    }

    #[test]
    fn intervals_format_like_postgres() {
        assert_eq!(iv("1 day"), "1 day");
        assert_eq!(iv("48 hours"), "48:00:00");
        assert_eq!(iv("7 days"), "7 days");
        assert_eq!(iv("1 hour 30 minutes"), "01:30:00");
        assert_eq!(
            iv("1 year 2 months 3 days 04:05:06.5"),
            "1 year 2 mons 3 days 04:05:06.5"
        );
        assert_eq!(iv("-1 day"), "-1 days");
        assert_eq!(iv("1 week"), "7 days");
        assert_eq!(iv("15 minutes"), "00:15:00");
        assert_eq!(iv("0"), "00:00:00");
        assert_eq!(iv("P1DT2H"), "1 day 02:00:00");
        assert_eq!(iv("1 day ago"), "-1 days");
        assert_eq!(iv("-1 day 02:00:00"), "-1 days +02:00:00");
    }

    #[test]
    fn dates_round_trip() {
        let mut out = String::new();
        format_date(parse_date("2024-03-05").unwrap(), &mut out).unwrap();
        assert_eq!(out, "2024-03-05");
        assert!(parse_date("2024-13-05").is_err());
    }
}
