//! TimescaleDB's aggregates: `first(value, time)`, `last(value, time)` and
//! `histogram(value, min, max, nbuckets)`.
//!
//! `first`/`last` keep the value of the row with the smallest/largest time;
//! rows whose time is NULL are ignored, a NULL value is kept like any other.
//! Their partial state is (value, time), so partial aggregates merge exactly.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

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
