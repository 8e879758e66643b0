//! TimescaleDB's aggregates: `first(value, time)`, `last(value, time)` and
//! `histogram(value, min, max, nbuckets)`; and PostgreSQL's `sum`, whose
//! result types DataFusion's does not have.
//!
//! `first`/`last` keep the value of the row with the smallest/largest time;
//! rows whose time is NULL are ignored, a NULL value is kept like any other.
//! Their partial state is (value, time), so partial aggregates merge exactly.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, ReversedUDAF,
    SetMonotonicity, Signature, Volatility,
};
use tempora_types::PgType;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FirstLast {
    name: &'static str,
    signature: Signature,
    /// true for `last` (keep the largest time), false for `first`.
    keep_latest: bool,
}

impl FirstLast {
    pub fn first() -> Self {
        FirstLast {
            name: "first",
            signature: Signature::any(2, Volatility::Immutable),
            keep_latest: false,
        }
    }
    pub fn last() -> Self {
        FirstLast {
            name: "last",
            signature: Signature::any(2, Volatility::Immutable),
            keep_latest: true,
        }
    }
}

impl AggregateUDFImpl for FirstLast {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() != 2 {
            return plan_err!("function {}(value, time) takes 2 arguments", self.name);
        }
        Ok(arg_types[0].clone())
    }
    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}_value", args.name),
                args.input_fields[0].data_type().clone(),
                true,
            )),
            Arc::new(Field::new(
                format!("{}_time", args.name),
                args.input_fields[1].data_type().clone(),
                true,
            )),
        ])
    }
    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(FirstLastAccumulator {
            value: ScalarValue::try_from(args.expr_fields[0].data_type())?,
            time: ScalarValue::try_from(args.expr_fields[1].data_type())?,
            keep_latest: self.keep_latest,
        }))
    }
}

#[derive(Debug)]
struct FirstLastAccumulator {
    value: ScalarValue,
    time: ScalarValue,
    keep_latest: bool,
}

impl FirstLastAccumulator {
    fn offer(&mut self, values: &ArrayRef, times: &ArrayRef) -> Result<()> {
        let mut best: Option<usize> = None;
        for row in 0..times.len() {
            if times.is_null(row) {
                continue;
            }
            best = Some(match best {
                None => row,
                Some(current) => {
                    let ordering = compare_rows(times, row, current)?;
                    let better = if self.keep_latest {
                        ordering.is_gt()
                    } else {
                        ordering.is_lt()
                    };
                    if better { row } else { current }
                }
            });
        }
        let Some(row) = best else { return Ok(()) };
        let time = ScalarValue::try_from_array(times, row)?;
        let replace = self.time.is_null()
            || match time.partial_cmp(&self.time) {
                Some(ordering) if self.keep_latest => ordering.is_gt(),
                Some(ordering) => ordering.is_lt(),
                None => false,
            };
        if replace {
            self.time = time;
            self.value = ScalarValue::try_from_array(values, row)?;
        }
        Ok(())
    }
}

fn compare_rows(array: &ArrayRef, a: usize, b: usize) -> Result<std::cmp::Ordering> {
    let comparator = datafusion::arrow::array::make_comparator(
        array.as_ref(),
        array.as_ref(),
        Default::default(),
    )?;
    Ok(comparator(a, b))
}

impl Accumulator for FirstLastAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.offer(&values[0], &values[1])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.offer(&states[0], &states[1])
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value.clone(), self.time.clone()])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size() + self.time.size()
    }
}

/// `histogram(value, min, max, nbuckets)`: an int8 array of nbuckets + 2 counts,
/// the first for values below `min`, the last for values at or above `max`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Histogram {
    signature: Signature,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            signature: Signature::any(4, Volatility::Immutable),
        }
    }
}

fn int_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)))
}

impl AggregateUDFImpl for Histogram {
    fn name(&self) -> &str {
        "histogram"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !arg_types[0].is_numeric() || !arg_types[3].is_integer() {
            return plan_err!(
                "function histogram({}, {}, {}, {}) does not exist",
                arg_types[0],
                arg_types[1],
                arg_types[2],
                arg_types[3]
            );
        }
        Ok(int_list_type())
    }
    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}_counts", args.name),
                int_list_type(),
                true,
            )),
            Arc::new(Field::new(
                format!("{}_min", args.name),
                DataType::Float64,
                true,
            )),
            Arc::new(Field::new(
                format!("{}_max", args.name),
                DataType::Float64,
                true,
            )),
        ])
    }
    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(HistogramAccumulator::default()))
    }
}

#[derive(Debug, Default)]
struct HistogramAccumulator {
    counts: Vec<i64>,
    min: f64,
    max: f64,
}

impl HistogramAccumulator {
    fn configure(&mut self, min: f64, max: f64, buckets: i64) -> Result<()> {
        if self.counts.is_empty() {
            if buckets <= 0 {
                return exec_err!("number of buckets must be positive");
            }
            if min >= max {
                return exec_err!("lower bound cannot exceed upper bound");
            }
            self.counts = vec![0; buckets as usize + 2];
            self.min = min;
            self.max = max;
        }
        Ok(())
    }
}

impl Accumulator for HistogramAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let as_f64 = |a: &ArrayRef| cast(a, &DataType::Float64);
        let data = as_f64(&values[0])?;
        let mins = as_f64(&values[1])?;
        let maxs = as_f64(&values[2])?;
        let buckets = cast(&values[3], &DataType::Int64)?;
        let data = data.as_primitive::<Float64Type>();
        for row in 0..data.len() {
            if data.is_null(row) || mins.is_null(row) || maxs.is_null(row) || buckets.is_null(row) {
                continue;
            }
            let min = mins.as_primitive::<Float64Type>().value(row);
            let max = maxs.as_primitive::<Float64Type>().value(row);
            let n = buckets.as_primitive::<Int64Type>().value(row);
            self.configure(min, max, n)?;
            let value = data.value(row);
            let slot = if value < self.min {
                0
            } else if value >= self.max {
                self.counts.len() - 1
            } else {
                let inner = (self.counts.len() - 2) as f64;
                1 + (((value - self.min) / (self.max - self.min)) * inner).floor() as usize
            };
            let last = self.counts.len() - 1;
            self.counts[slot.min(last)] += 1;
        }
        Ok(())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        let mins = states[1].as_primitive::<Float64Type>();
        let maxs = states[2].as_primitive::<Float64Type>();
        for row in 0..lists.len() {
            if lists.is_null(row) {
                continue;
            }
            let counts = lists.value(row);
            let counts = counts.as_primitive::<Int64Type>();
            self.configure(mins.value(row), maxs.value(row), counts.len() as i64 - 2)?;
            if counts.len() != self.counts.len() {
                return exec_err!("histogram states with different bucket counts");
            }
            for (slot, count) in counts.values().iter().enumerate() {
                self.counts[slot] += count;
            }
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            self.evaluate()?,
            ScalarValue::Float64(Some(self.min)),
            ScalarValue::Float64(Some(self.max)),
        ])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.counts.is_empty() {
            return ScalarValue::try_from(int_list_type());
        }
        let values = Int64Array::from(self.counts.clone());
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
            Arc::new(values),
            None,
        );
        ScalarValue::try_from_array(&list, 0)
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.len() * 8
    }
}

/// PostgreSQL's `sum`: of smallint and integer a bigint, of bigint a numeric
/// (DataFusion's sums a bigint into a bigint and wraps on overflow: the sum
/// of 9223372036854775807 and 2 came out negative), of numeric a numeric.
/// The summing is DataFusion's, fed the argument cast to the result type.
///
/// The argument is not coerced to that type: DataFusion coerces an already
/// coerced argument again when it recomputes a plan's types, and an integer
/// made a bigint would then be summed as one, into a numeric.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PgSum {
    signature: Signature,
}

impl Default for PgSum {
    fn default() -> Self {
        PgSum {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The unconstrained numeric's Arrow type: a bigint sum's.
fn numeric_type() -> DataType {
    PgType::Numeric {
        precision: None,
        scale: None,
    }
    .arrow_type()
}

impl PgSum {
    fn inner() -> Arc<AggregateUDF> {
        datafusion::functions_aggregate::sum::sum_udaf()
    }

    /// The type an argument of type `arg` is summed in: the result's.
    fn summed_as(arg: &DataType) -> Option<DataType> {
        Some(match arg {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => DataType::Int64,
            DataType::Int64 | DataType::UInt64 => numeric_type(),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
            DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
            | DataType::Interval(_)
            | DataType::Duration(_) => arg.clone(),
            _ => return None,
        })
    }

    /// The inner sum's arguments: its result type is the one summed in.
    fn summing<'a>(args: &AccumulatorArgs<'a>) -> Result<(DataType, DataType)> {
        let input = args.expr_fields[0].data_type().clone();
        match Self::summed_as(&input) {
            Some(summed) => Ok((input, summed)),
            None => plan_err!("function sum({input}) does not exist"),
        }
    }
}

impl AggregateUDFImpl for PgSum {
    fn name(&self) -> &str {
        "sum"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [arg] = arg_types else {
            return plan_err!("function sum takes one argument, got {}", arg_types.len());
        };
        match arg {
            // sum(NULL): a bigint NULL, as the sum of an integer.
            DataType::Null => Ok(vec![DataType::Int32]),
            other if Self::summed_as(other).is_some() => Ok(vec![other.clone()]),
            other => {
                let name = PgType::of_arrow(other)
                    .map_or_else(|_| other.to_string(), |t| t.without_modifier().to_string());
                plan_err!("function sum({name}) does not exist")
            }
        }
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first().and_then(Self::summed_as) {
            Some(summed) => Self::inner().return_type(&[summed]),
            None => plan_err!("function sum does not take {arg_types:?}"),
        }
    }
    /// A sum of a bigint or of an unconstrained numeric is an unconstrained
    /// numeric: it keeps that Arrow type, and says so, so it prints as one.
    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        let Some(arg) = arg_fields.first() else {
            return plan_err!("function sum takes one argument");
        };
        let data_type = self.return_type(&[arg.data_type().clone()])?;
        let constrained = arg
            .metadata()
            .get(tempora_types::PG_TYPE_METADATA_KEY)
            .and_then(|name| PgType::parse_name(name))
            .is_some_and(|t| {
                matches!(
                    t,
                    PgType::Numeric {
                        precision: Some(_),
                        ..
                    }
                )
            });
        if data_type == numeric_type() && !constrained {
            let numeric = PgType::Numeric {
                precision: None,
                scale: None,
            };
            return Ok(Arc::new(numeric.arrow_field(self.name(), true)));
        }
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }
    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let (input, summed) = Self::summing(&args)?;
        let inner = Self::inner().accumulator(args)?;
        Ok(Box::new(CastInput::new(inner, &input, summed)))
    }
    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Self::inner().state_fields(args)
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs<'_>) -> bool {
        Self::inner().groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs<'_>,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let (input, summed) = Self::summing(&args)?;
        let inner = Self::inner().create_groups_accumulator(args)?;
        Ok(Box::new(CastInput::new(inner, &input, summed)))
    }
    fn create_sliding_accumulator(
        &self,
        args: AccumulatorArgs<'_>,
    ) -> Result<Box<dyn Accumulator>> {
        let (input, summed) = Self::summing(&args)?;
        let inner = Self::inner().create_sliding_accumulator(args)?;
        Ok(Box::new(CastInput::new(inner, &input, summed)))
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }
    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        Self::inner().inner().set_monotonicity(data_type)
    }
}

/// An accumulator handed its argument cast to the type it sums in (none
/// when that is the argument's type); states and results pass unchanged.
#[derive(Debug)]
struct CastInput<A> {
    inner: A,
    to: Option<DataType>,
}

impl<A> CastInput<A> {
    fn new(inner: A, input: &DataType, summed: DataType) -> Self {
        let to = (*input != summed).then_some(summed);
        CastInput { inner, to }
    }

    fn cast(&self, values: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
        match &self.to {
            Some(to) => values.iter().map(|v| Ok(cast(v, to)?)).collect(),
            None => Ok(values.to_vec()),
        }
    }
}

impl Accumulator for CastInput<Box<dyn Accumulator>> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = self.cast(values)?;
        self.inner.update_batch(&values)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = self.cast(values)?;
        self.inner.retract_batch(&values)
    }
    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.inner.evaluate()
    }
    fn size(&self) -> usize {
        self.inner.size() + std::mem::size_of::<Self>()
    }
}

impl GroupsAccumulator for CastInput<Box<dyn GroupsAccumulator>> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let values = self.cast(values)?;
        self.inner
            .update_batch(&values, group_indices, opt_filter, total_num_groups)
    }
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner
            .merge_batch(values, group_indices, total_num_groups)
    }
    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.inner.evaluate(emit_to)
    }
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.inner.state(emit_to)
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let values = self.cast(values)?;
        self.inner.convert_to_state(&values, opt_filter)
    }
    fn size(&self) -> usize {
        self.inner.size() + std::mem::size_of::<Self>()
    }
}
