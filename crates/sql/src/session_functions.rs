//! Functions that act on the session or the server rather than on values:
//! `set_config()`, `pg_cancel_backend()`, and PostgreSQL's advisory locks (`pg_advisory_lock`,
//! `pg_try_advisory_lock`, `pg_advisory_unlock`, `pg_advisory_unlock_all`)
//! that migration tools (Ecto, Flyway) and job runners take.
//!
//! Advisory locks are session locks on a 64-bit key (or two 32-bit keys),
//! re-entrant per session, held until unlocked or the session ends. A
//! blocking `pg_advisory_lock` waits on the runtime thread it runs on, which
//! tokio gives up for other tasks meanwhile (`block_in_place`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use parking_lot::{Condvar, Mutex};

use crate::locks::SessionId;
use crate::settings::Settings;
use crate::{Error, SqlState};

/// The advisory locks of all sessions: key -> (holder, times taken).
#[derive(Default)]
pub(crate) struct AdvisoryLocks {
    held: Mutex<HashMap<i64, (SessionId, u64)>>,
    released: Condvar,
}

impl AdvisoryLocks {
    fn try_lock(&self, session: SessionId, key: i64) -> bool {
        let mut held = self.held.lock();
        match held.get_mut(&key) {
            Some((holder, count)) if *holder == session => {
                *count += 1;
                true
            }
            Some(_) => false,
            None => {
                held.insert(key, (session, 1));
                true
            }
        }
    }

    /// Waits until `key` is free or this session's, then takes it.
    fn lock(&self, session: SessionId, key: i64) {
        let mut held = self.held.lock();
        loop {
            match held.get_mut(&key) {
                Some((holder, count)) if *holder == session => {
                    *count += 1;
                    return;
                }
                Some(_) => {
                    // A timed wait, so a missed wake-up costs a tick, not a hang.
                    self.released
                        .wait_for(&mut held, Duration::from_millis(200));
                }
                None => {
                    held.insert(key, (session, 1));
                    return;
                }
            }
        }
    }

    fn unlock(&self, session: SessionId, key: i64) -> bool {
        let mut held = self.held.lock();
        let released = match held.get_mut(&key) {
            Some((holder, count)) if *holder == session => {
                *count -= 1;
                if *count == 0 {
                    held.remove(&key);
                }
                true
            }
            _ => false,
        };
        drop(held);
        if released {
            self.released.notify_all();
        }
        released
    }

    /// Releases every lock `session` holds (its end, or
    /// `pg_advisory_unlock_all()`).
    pub(crate) fn unlock_all(&self, session: SessionId) {
        self.held.lock().retain(|_, (holder, _)| *holder != session);
        self.released.notify_all();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    SetConfig,
    Lock,
    TryLock,
    Unlock,
    UnlockAll,
    CancelBackend,
}

/// One session's instance of one of these functions.
struct SessionFunction {
    kind: Kind,
    signature: Signature,
    session: SessionId,
    settings: Settings,
    locks: Arc<AdvisoryLocks>,
    backends: Arc<crate::cancel::Backends>,
}

impl std::fmt::Debug for SessionFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionFunction({:?})", self.kind)
    }
}

impl PartialEq for SessionFunction {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.session == other.session
    }
}
impl Eq for SessionFunction {}
impl std::hash::Hash for SessionFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.kind, self.session).hash(state);
    }
}

fn external(error: Error) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}

fn text(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => v.clone(),
        _ => None,
    }
}

/// The lock key of `pg_advisory_lock(bigint)` or `(int, int)`.
fn lock_key(values: &[ScalarValue]) -> DfResult<Option<i64>> {
    let int = |v: &ScalarValue| -> DfResult<Option<i64>> {
        match v.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(v) => Ok(v),
            _ => Ok(None),
        }
    };
    match values {
        [key] => int(key),
        [high, low] => Ok(match (int(high)?, int(low)?) {
            (Some(high), Some(low)) => Some((high << 32) | (low & 0xffff_ffff)),
            _ => None,
        }),
        _ => Ok(None),
    }
}

impl SessionFunction {
    fn call(&self, values: &[ScalarValue]) -> DfResult<ScalarValue> {
        match self.kind {
            Kind::SetConfig => {
                let (Some(name), value) =
                    (values.first().and_then(text), values.get(1).and_then(text))
                else {
                    return Err(external(Error::InvalidParameter {
                        message: "SET requires parameter name".to_owned(),
                    }));
                };
                match value {
                    Some(value) => self.settings.set(&name, &value).map_err(external)?,
                    None => self.settings.reset(&name),
                }
                Ok(ScalarValue::Utf8(self.settings.get(&name).ok()))
            }
            Kind::TryLock => Ok(ScalarValue::Boolean(
                lock_key(values)?.map(|key| self.locks.try_lock(self.session, key)),
            )),
            Kind::Lock => {
                let Some(key) = lock_key(values)? else {
                    return Ok(ScalarValue::Null);
                };
                if !self.locks.try_lock(self.session, key) {
                    let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|h| {
                        h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
                    });
                    if !multi_thread {
                        return Err(external(Error::Transaction {
                            code: SqlState::ObjectNotInPrerequisiteState,
                            message: "could not obtain lock on advisory key".to_owned(),
                        }));
                    }
                    tokio::task::block_in_place(|| self.locks.lock(self.session, key));
                }
                Ok(ScalarValue::Utf8(Some(String::new())))
            }
            Kind::Unlock => {
                let Some(key) = lock_key(values)? else {
                    return Ok(ScalarValue::Boolean(None));
                };
                Ok(ScalarValue::Boolean(Some(
                    self.locks.unlock(self.session, key),
                )))
            }
            Kind::UnlockAll => {
                self.locks.unlock_all(self.session);
                Ok(ScalarValue::Utf8(Some(String::new())))
            }
            Kind::CancelBackend => match values.first().map(|v| v.cast_to(&DataType::Int32)) {
                Some(Ok(ScalarValue::Int32(Some(pid)))) => {
                    Ok(ScalarValue::Boolean(Some(self.backends.cancel(pid))))
                }
                _ => Ok(ScalarValue::Boolean(None)),
            },
        }
    }
}

impl ScalarUDFImpl for SessionFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::SetConfig => "set_config",
            Kind::Lock => "pg_advisory_lock",
            Kind::TryLock => "pg_try_advisory_lock",
            Kind::Unlock => "pg_advisory_unlock",
            Kind::UnlockAll => "pg_advisory_unlock_all",
            Kind::CancelBackend => "pg_cancel_backend",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind {
            Kind::TryLock | Kind::Unlock | Kind::CancelBackend => DataType::Boolean,
            // void results print as empty text.
            Kind::SetConfig | Kind::Lock | Kind::UnlockAll => DataType::Utf8,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows.max(1);
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let values = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => Ok(s.clone()),
                    ColumnarValue::Array(array) => ScalarValue::try_from_array(array, row),
                })
                .collect::<DfResult<Vec<_>>>()?;
            out.push(self.call(&values)?.cast_to(&self.return_type(&[])?)?);
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

/// This session's instances of the functions.
pub(crate) fn all(
    session: SessionId,
    settings: Settings,
    locks: Arc<AdvisoryLocks>,
    backends: Arc<crate::cancel::Backends>,
) -> Vec<ScalarUDF> {
    let key = Signature::one_of(
        vec![TypeSignature::Any(1), TypeSignature::Any(2)],
        Volatility::Volatile,
    );
    [
        (Kind::SetConfig, Signature::any(3, Volatility::Volatile)),
        (Kind::Lock, key.clone()),
        (Kind::TryLock, key.clone()),
        (Kind::Unlock, key),
        (Kind::UnlockAll, Signature::nullary(Volatility::Volatile)),
        (
            Kind::CancelBackend,
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Int32]),
                    TypeSignature::Exact(vec![DataType::Int64]),
                ],
                Volatility::Volatile,
            ),
        ),
    ]
    .into_iter()
    .map(|(kind, signature)| {
        ScalarUDF::from(SessionFunction {
            kind,
            signature,
            session,
            settings: settings.clone(),
            locks: locks.clone(),
            backends: backends.clone(),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_locks_are_reentrant_per_session() {
        let locks = AdvisoryLocks::default();
        assert!(locks.try_lock(1, 42));
        assert!(locks.try_lock(1, 42));
        assert!(!locks.try_lock(2, 42));
        assert!(locks.unlock(1, 42));
        assert!(!locks.try_lock(2, 42), "still held once");
        assert!(locks.unlock(1, 42));
        assert!(!locks.unlock(1, 42), "not held any more");
        assert!(locks.try_lock(2, 42));
        locks.unlock_all(2);
        assert!(locks.try_lock(3, 42));
    }
}
