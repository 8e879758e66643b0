//! Sequences (`serial` and identity columns, `CREATE SEQUENCE`): values are
//! handed out from memory and reserved in the catalog 32 at a time, as
//! PostgreSQL logs them ahead, so a restart never hands out a value twice (it
//! skips the unused reservation). `nextval`, `currval`, `lastval` and `setval`
//! are functions of a session: `currval` answers what this session got.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
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
                            which: if sequence.increment > 0 {
                                "maximum"
                            } else {
                                "minimum"
                            },
                            limit: if sequence.increment > 0 {
                                sequence.max_value
                            } else {
                                sequence.min_value
                            },
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

    /// `setval`: the sequence continues after `value` (`is_called`) or at it.
    /// Durable before it returns, like every reservation.
    pub(crate) fn set_value(&self, name: &str, value: i64, is_called: bool) -> Result<()> {
        let mut last_values = self.last_values.lock();
        let state = self.store.catalog().snapshot();
        let sequence = state
            .sequences
            .get(name)
            .ok_or_else(|| Error::UndefinedTable {
                name: name.to_owned(),
            })?;
        if value < sequence.min_value || value > sequence.max_value {
            return Err(Error::Value {
                source: tempora_types::Error::OutOfRange {
                    message: format!(
                        "setval: value {value} is out of bounds for sequence \"{name}\" ({}..{})",
                        sequence.min_value, sequence.max_value
                    ),
                },
            });
        }
        // Not called: the next nextval returns `value` itself.
        let last = if is_called {
            Some(value)
        } else {
            value.checked_sub(sequence.increment)
        };
        self.store.catalog().transact(|txn| {
            let sequence = txn.sequence_mut(name)?;
            sequence.last_value = last;
            sequence.reserved_through = last;
            Ok(())
        })?;
        last_values.insert(name.to_owned(), last);
        Ok(())
    }

    /// Forgets cached state of a dropped sequence.
    pub(crate) fn forget(&self, name: &str) {
        self.last_values.lock().remove(name);
    }
}

impl std::fmt::Debug for Sequences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequences").finish_non_exhaustive()
    }
}

/// What `currval` and `lastval` answer: the values this session got.
#[derive(Debug, Default)]
pub(crate) struct SessionSequences {
    current: HashMap<String, i64>,
    last: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Nextval,
    Currval,
    Lastval,
    Setval,
}

/// `nextval`, `currval`, `lastval` and `setval` of one session, for DataFusion.
#[derive(Debug)]
pub(crate) struct SequenceFunction {
    kind: Kind,
    signature: Signature,
    sequences: Sequences,
    session: Arc<Mutex<SessionSequences>>,
}

impl PartialEq for SequenceFunction {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.session, &other.session)
    }
}
impl Eq for SequenceFunction {}
impl std::hash::Hash for SequenceFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state)
    }
}

impl SequenceFunction {
    /// The four functions, sharing one session's state.
    /// The four functions over `session`'s values (one per session).
    pub(crate) fn all(
        sequences: Sequences,
        session: Arc<Mutex<SessionSequences>>,
    ) -> Vec<SequenceFunction> {
        [
            (
                Kind::Nextval,
                Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
            ),
            (
                Kind::Currval,
                Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
            ),
            (Kind::Lastval, Signature::nullary(Volatility::Volatile)),
            (
                Kind::Setval,
                Signature::one_of(
                    vec![
                        TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64]),
                        TypeSignature::Exact(vec![
                            DataType::Utf8,
                            DataType::Int64,
                            DataType::Boolean,
                        ]),
                    ],
                    Volatility::Volatile,
                ),
            ),
        ]
        .into_iter()
        .map(|(kind, signature)| SequenceFunction {
            kind,
            signature,
            sequences: sequences.clone(),
            session: session.clone(),
        })
        .collect()
    }

    fn call(&self, row: usize, args: &[ColumnarValue]) -> Result<Option<i64>> {
        let name = match args.first() {
            Some(arg) => match text_arg(arg, row)? {
                Some(name) => table_name_from_text(&name)?,
                None => return Ok(None),
            },
            None => String::new(),
        };
        match self.kind {
            Kind::Nextval => {
                let value = self.sequences.next_values(&name, 1)?[0];
                let mut session = self.session.lock();
                session.current.insert(name, value);
                session.last = Some(value);
                Ok(Some(value))
            }
            Kind::Currval => self
                .session
                .lock()
                .current
                .get(&name)
                .copied()
                .map(Some)
                .ok_or_else(|| {
                    not_yet_defined(format!(
                        "currval of sequence \"{name}\" is not yet defined in this session"
                    ))
                }),
            Kind::Lastval => self.session.lock().last.map(Some).ok_or_else(|| {
                not_yet_defined("lastval is not yet defined in this session".to_owned())
            }),
            Kind::Setval => {
                let Some(value) = int_arg(&args[1], row)? else {
                    return Ok(None);
                };
                let is_called = match args.get(2) {
                    Some(arg) => match bool_arg(arg, row)? {
                        Some(b) => b,
                        None => return Ok(None),
                    },
                    None => true,
                };
                self.sequences.set_value(&name, value, is_called)?;
                if is_called {
                    let mut session = self.session.lock();
                    session.current.insert(name, value);
                    session.last = Some(value);
                }
                Ok(Some(value))
            }
        }
    }
}

fn not_yet_defined(message: String) -> Error {
    Error::Transaction {
        message,
        code: crate::SqlState::ObjectNotInPrerequisiteState,
    }
}

fn scalar_at(arg: &ColumnarValue, row: usize) -> Result<ScalarValue> {
    Ok(match arg {
        ColumnarValue::Scalar(value) => value.clone(),
        ColumnarValue::Array(array) => ScalarValue::try_from_array(array, row)?,
    })
}

fn text_arg(arg: &ColumnarValue, row: usize) -> Result<Option<String>> {
    match scalar_at(arg, row)? {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => Ok(v),
        other => Err(Error::InvalidParameter {
            message: format!("expected a sequence name, got {other}"),
        }),
    }
}

fn int_arg(arg: &ColumnarValue, row: usize) -> Result<Option<i64>> {
    match scalar_at(arg, row)? {
        ScalarValue::Int64(v) => Ok(v),
        other => Err(Error::InvalidParameter {
            message: format!("expected a bigint, got {other}"),
        }),
    }
}

fn bool_arg(arg: &ColumnarValue, row: usize) -> Result<Option<bool>> {
    match scalar_at(arg, row)? {
        ScalarValue::Boolean(v) => Ok(v),
        other => Err(Error::InvalidParameter {
            message: format!("expected a boolean, got {other}"),
        }),
    }
}

impl ScalarUDFImpl for SequenceFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Nextval => "nextval",
            Kind::Currval => "currval",
            Kind::Lastval => "lastval",
            Kind::Setval => "setval",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let external = |e: Error| datafusion::error::DataFusionError::External(Box::new(e));
        // Constant arguments over many rows (a DEFAULT filling a batch) still
        // take one value per row.
        let rows = args.number_rows.max(1);
        let mut values = Vec::with_capacity(rows);
        if self.kind == Kind::Nextval
            && let ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))) = &args.args[0]
        {
            let name = table_name_from_text(name).map_err(external)?;
            let got = self.sequences.next_values(&name, rows).map_err(external)?;
            if let Some(&last) = got.last() {
                let mut session = self.session.lock();
                session.current.insert(name, last);
                session.last = Some(last);
            }
            values.extend(got.into_iter().map(Some));
        } else {
            for row in 0..rows {
                values.push(self.call(row, &args.args).map_err(external)?);
            }
        }
        if args.number_rows <= 1 && values.len() == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::Int64(values[0])));
        }
        Ok(ColumnarValue::Array(Arc::new(Int64Array::from(values))))
    }
}
