//! TimescaleDB's scalar functions: `time_bucket`.
//!
//! `time_bucket(width, ts [, origin | timezone])` floors `ts` to the start of its
//! bucket. Buckets are aligned to an origin: TimescaleDB's default is Monday
//! 2000-01-03 for widths in days, hours and smaller (so weekly buckets start on
//! Mondays) and 2000-01-01 for widths in months. Integer time has offset 0.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int16Array, Int32Array, Int64Array,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Int16Type, Int32Type, Int64Type, IntervalMonthDayNano, IntervalUnit, TimeUnit,
};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use tempora_types::datetime::{MICROS_PER_DAY, days_from_ymd, ymd_from_days};

/// 2000-01-03 00:00:00 UTC (a Monday) in microseconds since the Unix epoch.
const DEFAULT_ORIGIN_MICROS: i64 = 946_857_600_000_000;
/// 2000-01-01, the origin of month buckets, in days since the Unix epoch.
const MONTH_ORIGIN_DAYS: i32 = 10_957;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TimeBucket {
    signature: Signature,
}

impl Default for TimeBucket {
    fn default() -> Self {
        TimeBucket {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn interval_type() -> DataType {
    DataType::Interval(IntervalUnit::MonthDayNano)
}

/// The third argument of time_bucket, by what it means.
enum Third {
    None,
    Origin(i64),
    Zone(String),
    IntegerOffset(i64),
}

impl ScalarUDFImpl for TimeBucket {
    fn name(&self) -> &str {
        "time_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !(2..=3).contains(&arg_types.len()) {
            return plan_err!(
                "function time_bucket takes 2 or 3 arguments, got {}",
                arg_types.len()
            );
        }
        let ts_type = &arg_types[1];
        if ts_type.is_integer() {
            let target = match ts_type {
                DataType::Int16 | DataType::Int8 | DataType::UInt8 => DataType::Int16,
                DataType::Int32 | DataType::UInt16 => DataType::Int32,
                _ => DataType::Int64,
            };
            let mut types = vec![target.clone(), target.clone()];
            if arg_types.len() == 3 {
                types.push(target);
            }
            return Ok(types);
        }
        let target = match ts_type {
            DataType::Timestamp(_, Some(_)) => DataType::Timestamp(
                TimeUnit::Microsecond,
                Some(Arc::from(tempora_types::UTC_ZONE)),
            ),
            DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Date32 | DataType::Date64 => DataType::Date32,
            // An untyped literal ('2024-01-01 10:00') is a timestamptz, as in PostgreSQL.
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
                DataType::Timestamp(
                    TimeUnit::Microsecond,
                    Some(Arc::from(tempora_types::UTC_ZONE)),
                )
            }
            _ => {
                let names: Vec<String> = arg_types
                    .iter()
                    .map(|t| {
                        tempora_types::PgType::of_arrow(t)
                            .map_or_else(|_| t.to_string(), |t| t.without_modifier().to_string())
                    })
                    .collect();
                return plan_err!("function time_bucket({}) does not exist", names.join(", "));
            }
        };
        let mut types = vec![interval_type(), target.clone()];
        if let Some(third) = arg_types.get(2) {
            match third {
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                    if target != DataType::Date32 =>
                {
                    // A string third argument is a time zone name for timestamptz,
                    // an origin literal otherwise.
                    if matches!(target, DataType::Timestamp(_, Some(_))) {
                        types.push(DataType::Utf8);
                    } else {
                        types.push(target.clone());
                    }
                }
                DataType::Interval(_) => types.push(interval_type()),
                _ => types.push(target.clone()),
            }
        }
        Ok(types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[1].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let width = match &args.args[0] {
            ColumnarValue::Scalar(scalar) => scalar.clone(),
            ColumnarValue::Array(_) => return exec_err!("time_bucket width must be a constant"),
        };
        let third = match args.args.get(2) {
            None => Third::None,
            Some(ColumnarValue::Array(_)) => {
                return exec_err!("time_bucket origin must be a constant");
            }
            Some(ColumnarValue::Scalar(scalar)) => match scalar {
                ScalarValue::Utf8(Some(zone)) => Third::Zone(zone.clone()),
                ScalarValue::TimestampMicrosecond(Some(origin), _) => Third::Origin(*origin),
                ScalarValue::Date32(Some(days)) => Third::Origin(*days as i64 * MICROS_PER_DAY),
                ScalarValue::Int16(Some(v)) => Third::IntegerOffset(*v as i64),
                ScalarValue::Int32(Some(v)) => Third::IntegerOffset(*v as i64),
                ScalarValue::Int64(Some(v)) => Third::IntegerOffset(*v),
                ScalarValue::IntervalMonthDayNano(Some(_)) => {
                    return exec_err!(
                        "time_bucket with an \"offset\" interval is not supported; pass an origin instead"
                    );
                }
                other if other.is_null() => {
                    return Ok(ColumnarValue::Scalar(ScalarValue::try_from(
                        args.return_type(),
                    )?));
                }
                other => return exec_err!("invalid third argument to time_bucket: {other}"),
            },
        };
        let input = args.args[1].to_array(rows)?;
        let result = bucket_array(&width, &input, &third)?;
        Ok(match &args.args[1] {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(result),
        })
    }
}

fn invalid_width() -> DataFusionError {
    DataFusionError::Execution("invalid time_bucket width: must be greater than 0".to_owned())
}

fn bucket_array(width: &ScalarValue, input: &ArrayRef, third: &Third) -> Result<ArrayRef> {
    match input.data_type() {
        DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let width = match width {
                ScalarValue::Int16(Some(w)) => *w as i64,
                ScalarValue::Int32(Some(w)) => *w as i64,
                ScalarValue::Int64(Some(w)) => *w,
                _ => return exec_err!("time_bucket width for integer time must be an integer"),
            };
            if width <= 0 {
                return Err(invalid_width());
            }
            let offset = match third {
                Third::IntegerOffset(o) => *o,
                _ => 0,
            };
            let floor = |v: i64| (v - offset).div_euclid(width) * width + offset;
            Ok(match input.data_type() {
                DataType::Int16 => Arc::new(
                    input
                        .as_primitive::<Int16Type>()
                        .iter()
                        .map(|v| v.map(|v| floor(v as i64) as i16))
                        .collect::<Int16Array>(),
                ),
                DataType::Int32 => Arc::new(
                    input
                        .as_primitive::<Int32Type>()
                        .iter()
                        .map(|v| v.map(|v| floor(v as i64) as i32))
                        .collect::<Int32Array>(),
                ),
                _ => Arc::new(
                    input
                        .as_primitive::<Int64Type>()
                        .iter()
                        .map(|v| v.map(floor))
                        .collect::<Int64Array>(),
                ),
            })
        }
        DataType::Timestamp(_, zone) => {
            let ScalarValue::IntervalMonthDayNano(Some(width)) = width else {
                return exec_err!("time_bucket width must be an interval");
            };
            let micros = cast(
                input,
                &DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
            )?;
            let micros =
                micros.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            let zone_name = match third {
                Third::Zone(name) => Some(parse_zone(name)?),
                _ => None,
            };
            let origin = match third {
                Third::Origin(o) => Some(*o),
                _ => None,
            };
            // Fixed widths without a time zone, the common case: one pass of
            // integer arithmetic over the values, nulls kept as they are.
            if zone_name.is_none() && width.months == 0 {
                let step = width.days as i64 * MICROS_PER_DAY + width.nanoseconds / 1_000;
                if step <= 0 {
                    return Err(invalid_width());
                }
                let offset = origin.unwrap_or(DEFAULT_ORIGIN_MICROS).rem_euclid(step);
                let out_of_range =
                    || DataFusionError::Execution("timestamp out of range".to_owned());
                let buckets: TimestampMicrosecondArray = micros.try_unary(|v| {
                    v.checked_sub(offset)
                        .map(|v| v.div_euclid(step) * step + offset)
                        .ok_or_else(out_of_range)
                })?;
                return Ok(Arc::new(buckets.with_timezone_opt(zone.clone())));
            }
            let mut out = Vec::with_capacity(micros.len());
            for value in micros.iter() {
                out.push(match value {
                    None => None,
                    Some(v) => Some(match &zone_name {
                        Some(tz) => bucket_in_zone(*width, v, tz)?,
                        None => bucket_micros(*width, v, origin)?,
                    }),
                });
            }
            Ok(Arc::new(
                TimestampMicrosecondArray::from(out).with_timezone_opt(zone.clone()),
            ))
        }
        DataType::Date32 => {
            let ScalarValue::IntervalMonthDayNano(Some(width)) = width else {
                return exec_err!("time_bucket width must be an interval");
            };
            let origin = match third {
                Third::Origin(o) => Some(*o),
                _ => None,
            };
            let days = input.as_primitive::<datafusion::arrow::datatypes::Date32Type>();
            let mut out = Vec::with_capacity(days.len());
            for value in days.iter() {
                out.push(match value {
                    None => None,
                    Some(d) => Some(
                        (bucket_micros(*width, d as i64 * MICROS_PER_DAY, origin)?
                            .div_euclid(MICROS_PER_DAY)) as i32,
                    ),
                });
            }
            Ok(Arc::new(Date32Array::from(out)))
        }
        other => exec_err!("function time_bucket(interval, {other}) does not exist"),
    }
}

/// Floors `micros` to its bucket of `width`, relative to `origin` (or the default).
pub fn bucket_micros(width: IntervalMonthDayNano, micros: i64, origin: Option<i64>) -> Result<i64> {
    if width.months != 0 {
        if width.days != 0 || width.nanoseconds != 0 {
            return exec_err!("month intervals cannot have day or time component");
        }
        if width.months < 0 {
            return Err(invalid_width());
        }
        let origin_days = origin
            .map(|o| o.div_euclid(MICROS_PER_DAY) as i32)
            .unwrap_or(MONTH_ORIGIN_DAYS);
        let out_of_range = || DataFusionError::Execution("timestamp out of range".to_owned());
        let (origin_year, origin_month, _) = ymd_from_days(origin_days).ok_or_else(out_of_range)?;
        let days = i32::try_from(micros.div_euclid(MICROS_PER_DAY)).map_err(|_| out_of_range())?;
        let (year, month, _) = ymd_from_days(days).ok_or_else(out_of_range)?;
        let months_since = (year - origin_year) as i64 * 12 + month as i64 - origin_month as i64;
        let bucket = months_since.div_euclid(width.months as i64) * width.months as i64
            + origin_month as i64
            - 1;
        let bucket_year = origin_year as i64 + bucket.div_euclid(12);
        let bucket_month = bucket.rem_euclid(12) + 1;
        let days = days_from_ymd(bucket_year as i32, bucket_month as u32, 1)
            .ok_or_else(|| DataFusionError::Execution("timestamp out of range".to_owned()))?;
        return Ok(days as i64 * MICROS_PER_DAY);
    }
    let width_micros = width.days as i64 * MICROS_PER_DAY + width.nanoseconds / 1_000;
    if width_micros <= 0 {
        return Err(invalid_width());
    }
    let origin = origin.unwrap_or(DEFAULT_ORIGIN_MICROS);
    let offset = origin.rem_euclid(width_micros);
    Ok((micros - offset).div_euclid(width_micros) * width_micros + offset)
}

fn parse_zone(name: &str) -> Result<chrono_tz::Tz> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| DataFusionError::Execution(format!("time zone \"{name}\" not recognized")))
}

/// Buckets in local time of `zone`: shift to wall-clock time, bucket, shift back.
fn bucket_in_zone(width: IntervalMonthDayNano, micros: i64, zone: &chrono_tz::Tz) -> Result<i64> {
    let zone = crate::time_zones::Zone::Named(*zone);
    let offset_of =
        |utc_micros: i64| -> i64 { zone.offset_at(utc_micros.div_euclid(1_000_000)) * 1_000_000 };
    let local = micros + offset_of(micros);
    let bucket_local = bucket_micros(width, local, None)?;
    // Resolve the local bucket start back to UTC with the offset in force then.
    let guess = bucket_local - offset_of(bucket_local);
    Ok(bucket_local - offset_of(guess))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempora_types::datetime::{format_timestamp, parse_interval, parse_timestamptz};

    fn bucket(width: &str, ts: &str) -> String {
        let micros = bucket_micros(
            parse_interval(width).unwrap(),
            parse_timestamptz(ts).unwrap(),
            None,
        )
        .unwrap();
        let mut out = String::new();
        format_timestamp(micros, true, &mut out).unwrap();
        out
    }

    #[test]
    fn buckets_match_timescaledb() {
        assert_eq!(
            bucket("1 hour", "2024-05-05 10:59:59"),
            "2024-05-05 10:00:00+00"
        );
        assert_eq!(
            bucket("15 minutes", "2024-05-05 10:31:00"),
            "2024-05-05 10:30:00+00"
        );
        assert_eq!(
            bucket("1 day", "2024-05-05 10:31:00"),
            "2024-05-05 00:00:00+00"
        );
        // Weeks start on Monday (2000-01-03 origin).
        assert_eq!(
            bucket("7 days", "2024-05-05 10:31:00"),
            "2024-04-29 00:00:00+00"
        );
        assert_eq!(
            bucket("1 month", "2024-05-05 10:31:00"),
            "2024-05-01 00:00:00+00"
        );
        assert_eq!(
            bucket("3 months", "2024-05-05 10:31:00"),
            "2024-04-01 00:00:00+00"
        );
        assert_eq!(
            bucket("1 year", "2024-05-05 10:31:00"),
            "2024-01-01 00:00:00+00"
        );
        assert_eq!(
            bucket("1 hour", "1969-12-31 23:30:00"),
            "1969-12-31 23:00:00+00"
        );
    }

    #[test]
    fn zero_width_is_an_error() {
        assert!(bucket_micros(parse_interval("0 hours").unwrap(), 0, None).is_err());
    }

    #[test]
    fn zone_buckets_follow_local_midnight() {
        let tz = parse_zone("Europe/Berlin").unwrap();
        let micros = parse_timestamptz("2024-05-05 23:30:00+00").unwrap();
        let bucketed = bucket_in_zone(parse_interval("1 day").unwrap(), micros, &tz).unwrap();
        let mut out = String::new();
        format_timestamp(bucketed, true, &mut out).unwrap();
        assert_eq!(out, "2024-05-05 22:00:00+00");
    }
}
