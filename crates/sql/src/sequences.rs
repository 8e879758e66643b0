//! Sequences (`serial` columns): values are handed out from memory and
//! reserved in the catalog 32 at a time, as PostgreSQL logs them ahead, so a
//! restart never hands out a value twice (it skips the unused reservation).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use parking_lot::Mutex;

use tempora_storage::Store;

use crate::names::table_name_from_text;
use crate::{Error, Result};

/// Values reserved in one catalog write, at least.
const RESERVE_AHEAD: i64 = 32;

#[derive(Clone)]
pub(crate) struct Sequences {
    store: Arc<Store>,
    /// name -> last value handed out by this process.
    last_values: Arc<Mutex<HashMap<String, Option<i64>>>>,
}

impl Sequences {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Sequences {
            store,
            last_values: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The next `count` values of sequence `name`.
    pub(crate) fn next_values(&self, name: &str, count: usize) -> Result<Vec<i64>> {
        let mut last_values = self.last_values.lock();
        let state = self.store.catalog().snapshot();
        let sequence = state
            .sequences
            .get(name)
            .ok_or_else(|| Error::UndefinedTable {
                name: name.to_owned(),
            })?;
        let last = *last_values
            .entry(name.to_owned())
            .or_insert(sequence.last_value);
        let mut values = Vec::with_capacity(count);
        let mut next = match last {
            Some(v) => v.checked_add(sequence.increment),
            None => Some(sequence.start_value),
        };
        for _ in 0..count {
            match next {
                Some(v) if v <= sequence.max_value && v >= sequence.min_value => {
                    values.push(v);
                    next = v.checked_add(sequence.increment);
                }
                _ => {
                    return Err(Error::Catalog {
                        source: tempora_catalog::Error::SequenceExhausted {
                            name: name.to_owned(),
                            max_value: sequence.max_value,
                        },
                    });
                }
            }
        }
        let Some(&highest) = values.last() else {
            return Ok(values);
        };
        if sequence.reserved_through.is_none_or(|r| highest > r) {
            let reserve = highest
                .saturating_add(RESERVE_AHEAD.saturating_mul(sequence.increment))
                .min(sequence.max_value);
            self.store.catalog().transact(|txn| {
                txn.sequence_mut(name)?.reserved_through = Some(reserve);
                Ok(())
            })?;
        }
        last_values.insert(name.to_owned(), Some(highest));
        Ok(values)
    }

    /// Forgets cached state of a dropped sequence.
    pub(crate) fn forget(&self, name: &str) {
        self.last_values.lock().remove(name);
    }
}

/// `nextval('name')` for DataFusion: one value per row.
#[derive(Debug)]
pub(crate) struct NextvalUdf {
    signature: Signature,
    sequences: Sequences,
}

impl std::fmt::Debug for Sequences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequences").finish_non_exhaustive()
    }
}

impl PartialEq for NextvalUdf {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}
impl Eq for NextvalUdf {}
impl std::hash::Hash for NextvalUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "nextval".hash(state)
    }
}

impl NextvalUdf {
    pub(crate) fn new(sequences: Sequences) -> Self {
        NextvalUdf {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
            sequences,
        }
    }
}

impl ScalarUDFImpl for NextvalUdf {
    fn name(&self) -> &str {
        "nextval"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))) = &args.args[0] else {
            return exec_err!("nextval needs a constant sequence name");
        };
        let name = table_name_from_text(name)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let rows = args.number_rows.max(1);
        let values = self
            .sequences
            .next_values(&name, rows)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        if args.number_rows == 0 || values.len() == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::Int64(
                values.first().copied(),
            )));
        }
        Ok(ColumnarValue::Array(Arc::new(Int64Array::from(values))))
    }
}
