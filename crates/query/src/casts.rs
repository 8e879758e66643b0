//! PostgreSQL's cast semantics where DataFusion's differ: a float cast to an
//! integer rounds to the nearest integer, ties to even (PostgreSQL uses
//! `rint`), and a numeric cast to an integer rounds half away from zero,
//! where Arrow truncates both; text cast to a timestamp, date or interval is
//! read by PostgreSQL's input rules (`'2024-01-02 00:00+00'`, `'epoch'`),
//! with its errors (22007, 22008), where Arrow's parser differs; text cast
//! to bytea reads the `\x` hex and escape forms, where Arrow copies bytes,
//! text cast to a number is read as PostgreSQL reads it (`'1e400'::float8`
//! is out of range, 22003, where Arrow gives Infinity; its messages),
//! and text cast to an array reads `{1,2}`, where Arrow makes one element.
//! uuid, json and jsonb are text in Arrow, so a cast of text to them would
//! change nothing: it is read by their input rules instead (22P02 for bad
//! input, jsonb normalised as PostgreSQL prints it), and a cast to
//! `varchar(n)` cuts the text to n characters, as PostgreSQL's explicit
//! cast does. An analyzer rule rewrites every such cast, after DataFusion's
//! type coercion has run.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Decimal128Array, Float32Array, Float64Array};
use datafusion::arrow::datatypes::{
    DECIMAL128_MAX_PRECISION, DataType, Decimal128Type, Float32Type, Float64Type, IntervalUnit,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, Result, exec_err};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use tempora_types::text::ColumnBuilder;
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

/// Text read as a PostgreSQL timestamp, timestamptz, date, interval, bytea,
/// array or number.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextInput {
    signature: Signature,
    output: DataType,
    name: String,
}

impl ScalarUDFImpl for TextInput {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.output.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        let pg_type =
            PgType::of_arrow(&self.output).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut builder = ColumnBuilder::new(pg_type, input.len())
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

fn text_input(output: &DataType) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(TextInput {
        // Stable, not immutable: a timestamptz read depends on the time
        // zone; constant folding still reads a literal once per statement.
        signature: Signature::any(1, Volatility::Stable),
        output: output.clone(),
        // PostgreSQL's input functions' names, as EXPLAIN shows them.
        name: match output {
            DataType::Timestamp(_, Some(_)) => "timestamptz_in",
            DataType::Timestamp(_, None) => "timestamp_in",
            DataType::Date32 => "date_in",
            DataType::Binary => "byteain",
            DataType::List(_) => "array_in",
            DataType::Int16 => "int2in",
            DataType::Int32 => "int4in",
            DataType::Int64 => "int8in",
            DataType::Float32 => "float4in",
            DataType::Float64 => "float8in",
            DataType::Decimal128(..) => "numeric_in",
            _ => "interval_in",
        }
        .to_owned(),
    }))
}

/// Text read as one of the PostgreSQL types Arrow holds as text: uuid,
/// json and jsonb by their input rules, `varchar(n)` cut to n characters.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextAsText {
    signature: Signature,
    pg_type: PgType,
}

impl TextAsText {
    /// The PostgreSQL function that does the same, as EXPLAIN shows it.
    fn function_name(pg_type: PgType) -> &'static str {
        match pg_type {
            PgType::Uuid => "uuid_in",
            PgType::Json => "json_in",
            PgType::Jsonb => "jsonb_in",
            _ => "varchar",
        }
    }
}

impl ScalarUDFImpl for TextAsText {
    fn name(&self) -> &str {
        TextAsText::function_name(self.pg_type)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Utf8)?;
        let texts = input.as_string::<i32>();
        if let PgType::Varchar {
            max_chars: Some(max_chars),
        } = self.pg_type
        {
            let cut: datafusion::arrow::array::StringArray = texts
                .iter()
                .map(|text| {
                    text.map(|text| match text.char_indices().nth(max_chars as usize) {
                        Some((end, _)) => &text[..end],
                        None => text,
                    })
                })
                .collect();
            return Ok(ColumnarValue::Array(Arc::new(cut)));
        }
        let mut builder = ColumnBuilder::new(self.pg_type, input.len())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        for text in texts {
            match text {
                Some(text) => builder
                    .append_text(text)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?,
                None => builder.append_null(),
            }
        }
        Ok(ColumnarValue::Array(builder.finish()))
    }
}

/// The type a cast to text-held `field` is read as by [`TextAsText`].
fn text_as_text_type(field: &datafusion::arrow::datatypes::Field) -> Option<PgType> {
    if field.data_type() != &DataType::Utf8 {
        return None;
    }
    let pg_type = PgType::parse_name(field.metadata().get(PG_TYPE_METADATA_KEY)?)?;
    matches!(
        pg_type,
        PgType::Uuid | PgType::Json | PgType::Jsonb | PgType::Varchar { max_chars: Some(_) }
    )
    .then_some(pg_type)
}

/// `text::jsonb`, `text::uuid`, `text::varchar(3)`: read by [`TextAsText`],
/// the cast kept around it for the type it names.
fn read_text_as_text_casts(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    if let Expr::Cast(Cast { expr: inner, field }) = &expr
        && let Some(pg_type) = text_as_text_type(field)
        && !matches!(inner.as_ref(), Expr::ScalarFunction(f)
            if f.func.name() == TextAsText::function_name(pg_type))
        && let Ok(source) = inner.get_type(schema)
        && matches!(
            source,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    {
        let function = Arc::new(ScalarUDF::from(TextAsText {
            signature: Signature::any(1, Volatility::Immutable),
            pg_type,
        }));
        let read = Expr::ScalarFunction(ScalarFunction::new_udf(function, vec![(**inner).clone()]));
        return Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(
            Box::new(read),
            field.clone(),
        ))));
    }
    Ok(Transformed::no(expr))
}

/// `text::timestamptz` and the like, read by PostgreSQL's rules.
fn read_text_casts(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    if let Expr::Cast(Cast { expr: inner, field }) = &expr
        && reads_text_input(field.data_type())
        && let Ok(source) = inner.get_type(schema)
        && matches!(
            source,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    {
        let read = Expr::ScalarFunction(ScalarFunction::new_udf(
            text_input(field.data_type()),
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
        Ok(plan
            .transform_up_with_subqueries(|node| {
                let schema = match node.inputs().as_slice() {
                    [input] => input.schema().as_ref().clone(),
                    [] => DFSchema::empty(),
                    // Joins and unions: their expressions see several inputs; leave them.
                    _ => return Ok(Transformed::no(node)),
                };
                // Keep output column names: the rewrite must not rename `x::int`.
                let names = NamePreserver::new(&node);
                node.map_expressions(|expr| {
                    let name = names.save(&expr);
                    Ok(expr
                        .transform_up(|e| {
                            round_before_integer_casts(e, &schema)?
                                .transform_data(|e| read_text_casts(e, &schema))?
                                .transform_data(|e| read_text_as_text_casts(e, &schema))
                        })?
                        .update_data(|e| name.restore(e)))
                })
            })?
            .data)
    }

    fn name(&self) -> &str {
        "postgres_casts"
    }
}
