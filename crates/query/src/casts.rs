//! PostgreSQL's cast semantics where DataFusion's differ: a float cast to an
//! integer rounds to the nearest integer, ties to even (PostgreSQL uses
//! `rint`), and a numeric cast to an integer rounds half away from zero,
//! where Arrow truncates both; text cast to a timestamp, date or interval is
//! read by PostgreSQL's input rules (`'2024-01-02 00:00+00'`, `'epoch'`),
//! with its errors (22007, 22008), where Arrow's parser differs; text cast
//! to bytea reads the `\x` hex and escape forms, where Arrow copies bytes,
//! text cast to a number is read as PostgreSQL reads it (`'1e400'::float8`
//! is out of range, 22003, where Arrow gives Infinity; its messages),
//! and text cast to an array reads `{1,2}`, where Arrow makes one element;
//! a value cast to text is written as the type's output function writes it,
//! where Arrow writes its own forms (`2024-01-01T00:00:00Z`, `1 days`).
//! uuid, json and jsonb are text in Arrow, so a cast of text to them would
//! change nothing: it is read by their input rules instead (22P02 for bad
//! input, jsonb normalised as PostgreSQL prints it), and a cast to
//! `varchar(n)` cuts the text to n characters, as PostgreSQL's explicit
//! cast does. An analyzer rule rewrites every such cast, after DataFusion's
//! type coercion has run.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float32Array, Float64Array, StringBuilder,
};
use datafusion::arrow::datatypes::{
    DECIMAL128_MAX_PRECISION, DataType, Decimal128Type, Float32Type, Float64Type, IntervalUnit,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result, exec_err};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use tempora_types::text::ColumnBuilder;

use crate::expr_rules::text_argument;
use tempora_types::{PG_TYPE_METADATA_KEY, PgType};

/// `rint`: round to nearest, ties to even, keeping the float type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundTiesEven {
    signature: Signature,
}

impl ScalarUDFImpl for RoundTiesEven {
    fn name(&self) -> &str {
        "rint"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let output: ArrayRef = match input.data_type() {
            DataType::Float64 => Arc::new(
                input
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(f64::round_ties_even))
                    .collect::<Float64Array>(),
            ),
            DataType::Float32 => Arc::new(
                input
                    .as_primitive::<Float32Type>()
                    .iter()
                    .map(|v| v.map(f32::round_ties_even))
                    .collect::<Float32Array>(),
            ),
            other => return exec_err!("rint of {other}"),
        };
        Ok(ColumnarValue::Array(output))
    }
}

fn rint() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(RoundTiesEven {
        signature: Signature::uniform(
            1,
            vec![DataType::Float32, DataType::Float64],
            Volatility::Immutable,
        ),
    }))
}

/// A numeric rounded to a whole number, half away from zero (numeric's
/// rounding), keeping its scale; one more digit of precision for the carry.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundNumeric {
    signature: Signature,
}

impl ScalarUDFImpl for RoundNumeric {
    fn name(&self) -> &str {
        "numeric_round"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::Decimal128(precision, scale) => Ok(DataType::Decimal128(
                (*precision + 1).min(DECIMAL128_MAX_PRECISION),
                *scale,
            )),
            other => exec_err!("numeric_round of {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let DataType::Decimal128(_, scale) = input.data_type() else {
            return exec_err!("numeric_round of {}", input.data_type());
        };
        let DataType::Decimal128(precision, _) = args.return_field.data_type() else {
            return exec_err!("numeric_round returns {}", args.return_field.data_type());
        };
        let unit = 10i128
            .checked_pow((*scale).max(0) as u32)
            .unwrap_or(i128::MAX);
        let rounded: Decimal128Array = input
            .as_primitive::<Decimal128Type>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    let (whole, rest) = (v / unit, v % unit);
                    let whole = if rest.unsigned_abs() * 2 >= unit.unsigned_abs() {
                        whole + v.signum()
                    } else {
                        whole
                    };
                    whole.saturating_mul(unit)
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(
            rounded.with_precision_and_scale(*precision, *scale)?,
        )))
    }
}

fn numeric_round() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(RoundNumeric {
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

/// Text read by the input rules of a PostgreSQL type (those of INSERT and
/// COPY): timestamps, dates, intervals, bytea, arrays and numbers, and the
/// types Arrow holds as text (uuid, json, jsonb).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextInput {
    signature: Signature,
    pg_type: PgType,
    output: DataType,
}

/// PostgreSQL's input function of `pg_type`, as EXPLAIN shows it.
fn input_function_name(pg_type: PgType) -> &'static str {
    match pg_type {
        PgType::Timestamptz => "timestamptz_in",
        PgType::Timestamp => "timestamp_in",
        PgType::Date => "date_in",
        PgType::Interval => "interval_in",
        PgType::Bytea => "byteain",
        PgType::Int2 => "int2in",
        PgType::Int4 => "int4in",
        PgType::Int8 => "int8in",
        PgType::Float4 => "float4in",
        PgType::Float8 => "float8in",
        PgType::Numeric { .. } => "numeric_in",
        PgType::Uuid => "uuid_in",
        PgType::Json => "json_in",
        PgType::Jsonb => "jsonb_in",
        _ => "array_in",
    }
}

impl ScalarUDFImpl for TextInput {
    fn name(&self) -> &str {
        input_function_name(self.pg_type)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.output.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = text_argument(&args.args[0], args.number_rows)?;
        let mut builder = ColumnBuilder::new(self.pg_type, input.len())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        for text in input.as_string::<i32>() {
            match text {
                Some(text) => builder
                    .append_text(text)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?,
                None => builder.append_null(),
            }
        }
        let output = builder.finish();
        let output = if output.data_type() == &self.output {
            output
        } else {
            datafusion::arrow::compute::cast(&output, &self.output)?
        };
        Ok(ColumnarValue::Array(output))
    }
}

/// Whether text cast to `target` is read by [`TextInput`].
fn reads_text_input(target: &DataType) -> bool {
    matches!(
        target,
        DataType::Timestamp(_, _)
            | DataType::Date32
            | DataType::Interval(IntervalUnit::MonthDayNano)
            | DataType::Binary
            | DataType::List(_)
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
    )
}

fn text_input(pg_type: PgType, output: &DataType) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(TextInput {
        // Stable, not immutable: a timestamptz read depends on the time
        // zone; constant folding still reads a literal once per statement.
        signature: Signature::any(1, Volatility::Stable),
        pg_type,
        output: output.clone(),
    }))
}

/// `varchar(n)` of text: cut to n characters, as PostgreSQL's explicit
/// cast does (an assignment refuses longer text instead).
#[derive(Debug, PartialEq, Eq, Hash)]
struct CutToLength {
    signature: Signature,
    max_chars: u32,
}

impl ScalarUDFImpl for CutToLength {
    fn name(&self) -> &str {
        "varchar"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = text_argument(&args.args[0], args.number_rows)?;
        let cut: datafusion::arrow::array::StringArray = input
            .as_string::<i32>()
            .iter()
            .map(|text| {
                text.map(
                    |text| match text.char_indices().nth(self.max_chars as usize) {
                        Some((end, _)) => &text[..end],
                        None => text,
                    },
                )
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(cut)))
    }
}

/// A value cast to text, written by its type's output function as the
/// wire shows it (`2024-01-01 00:00:00+00`, `1 day`, `1e+20`, `{1,2}`),
/// where Arrow's cast writes its own forms (`2024-01-01T00:00:00Z`,
/// `1 days`, `100000000000000000000`, `[1, 2]`). A boolean is `true` or
/// `false`, as PostgreSQL's cast to text writes it (its output is `t`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct OutputText {
    signature: Signature,
    pg_type: PgType,
}

impl ScalarUDFImpl for OutputText {
    fn name(&self) -> &str {
        "text"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let mut builder = StringBuilder::with_capacity(input.len(), input.len() * 8);
        let mut text = String::new();
        for row in 0..input.len() {
            text.clear();
            let present = match input.as_boolean_opt() {
                Some(booleans) if booleans.is_valid(row) => {
                    text.push_str(if booleans.value(row) { "true" } else { "false" });
                    true
                }
                _ => tempora_types::text::format_value(&input, row, self.pg_type, &mut text)
                    .map_err(crate::error::from_types)?,
            };
            match present {
                true => builder.append_value(&text),
                false => builder.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(builder.finish())))
    }
}

/// `x::text` (and `varchar`, and the casts coercion adds, as for `||`) of
/// a value that is not text: written by [`OutputText`].
fn write_casts_to_text(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if field.data_type() != &DataType::Utf8 || is_text(inner, schema) {
        return Ok(Transformed::no(expr));
    }
    let (_, source) = inner.to_field(schema)?;
    if matches!(
        source.data_type(),
        DataType::Null | DataType::Dictionary(..)
    ) || (source.data_type().is_integer() && !source.data_type().is_unsigned_integer())
    {
        return Ok(Transformed::no(expr));
    }
    let Ok(pg_type) = PgType::of_field(&source) else {
        return Ok(Transformed::no(expr));
    };
    let function = Arc::new(ScalarUDF::from(OutputText {
        signature: Signature::any(1, Volatility::Immutable),
        pg_type,
    }));
    let written = Expr::ScalarFunction(ScalarFunction::new_udf(function, vec![(**inner).clone()]));
    Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(
        Box::new(written),
        field.clone(),
    ))))
}

/// Whether `expr` is text (of any of Arrow's string types) in `schema`.
fn is_text(expr: &Expr, schema: &DFSchema) -> bool {
    matches!(
        expr.get_type(schema),
        Ok(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
    )
}

/// `text::jsonb`, `text::uuid`, `text::varchar(3)`: Arrow holds these
/// types as text, so the cast alone would pass the text through. The
/// text is read by [`TextInput`] (or cut by [`CutToLength`]), the cast
/// kept around it for the type it names.
fn read_text_as_text_casts(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let Some(pg_type) = field
        .metadata()
        .get(PG_TYPE_METADATA_KEY)
        .and_then(|name| PgType::parse_name(name))
        .filter(|_| field.data_type() == &DataType::Utf8)
    else {
        return Ok(Transformed::no(expr));
    };
    let function: Arc<ScalarUDF> = match pg_type {
        PgType::Uuid | PgType::Json | PgType::Jsonb => text_input(pg_type, &DataType::Utf8),
        PgType::Varchar {
            max_chars: Some(max_chars),
        } => Arc::new(ScalarUDF::from(CutToLength {
            signature: Signature::any(1, Volatility::Immutable),
            max_chars,
        })),
        _ => return Ok(Transformed::no(expr)),
    };
    let done =
        matches!(inner.as_ref(), Expr::ScalarFunction(f) if f.func.name() == function.name());
    if done || !is_text(inner, schema) {
        return Ok(Transformed::no(expr));
    }
    let read = Expr::ScalarFunction(ScalarFunction::new_udf(function, vec![(**inner).clone()]));
    Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(
        Box::new(read),
        field.clone(),
    ))))
}

/// `text::timestamptz` and the like, read by PostgreSQL's rules.
fn read_text_casts(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    if let Expr::Cast(Cast { expr: inner, field }) = &expr
        && reads_text_input(field.data_type())
        && is_text(inner, schema)
        && let Ok(pg_type) = PgType::of_arrow(field.data_type())
    {
        let read = Expr::ScalarFunction(ScalarFunction::new_udf(
            text_input(pg_type, field.data_type()),
            vec![(**inner).clone()],
        ));
        return Ok(Transformed::yes(read));
    }
    Ok(Transformed::no(expr))
}

fn round_before_integer_casts(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    if let Expr::Cast(Cast { expr: inner, field }) = &expr
        && field.data_type().is_integer()
        && let Ok(source) = inner.get_type(schema)
    {
        let function = match source {
            DataType::Float32 | DataType::Float64 => rint(),
            DataType::Decimal128(_, scale) if scale > 0 => numeric_round(),
            _ => return Ok(Transformed::no(expr)),
        };
        let rounded =
            Expr::ScalarFunction(ScalarFunction::new_udf(function, vec![(**inner).clone()]));
        return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(
            Box::new(rounded),
            field.clone(),
        ))));
    }
    Ok(Transformed::no(expr))
}

#[derive(Debug, Default)]
pub struct PostgresCasts;

impl AnalyzerRule for PostgresCasts {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::expr_rules::rewrite_plan(plan, |e, schema| {
            round_before_integer_casts(e, schema)?
                .transform_data(|e| write_casts_to_text(e, schema))?
                .transform_data(|e| read_text_casts(e, schema))?
                .transform_data(|e| read_text_as_text_casts(e, schema))
        })
    }

    fn name(&self) -> &str {
        "postgres_casts"
    }
}
