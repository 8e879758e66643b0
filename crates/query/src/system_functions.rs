//! PostgreSQL's system information functions, as clients call them:
//! `version()`, `current_database()`, `format_type()`, `pg_get_indexdef()`,
//! `pg_table_is_visible()`, the `has_*_privilege()` family, object sizes,
//! and the `regclass`/`regtype` conversions behind `'t'::regclass`.
//!
//! They answer from the catalog snapshot of the moment and from the
//! session's [`SessionInfo`]. Each is a [`RowFunction`]: a closure over one
//! row's argument values, which is what catalog queries need (they run over
//! a few hundred rows at most).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use tempora_catalog::{CatalogState, DEFAULT_SCHEMA};
use tempora_storage::Store;

use crate::error::Error;
use crate::oids::{self, Relation};
use crate::pg_catalog::{self, FUNCTIONS, namespace_name};
use crate::session_info::SessionInfo;

type RowFn = Arc<dyn Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync>;

/// A scalar function computed row by row from its arguments' values.
pub struct RowFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    function: RowFn,
}

impl std::fmt::Debug for RowFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowFunction({})", self.name)
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for RowFunction {}
impl std::hash::Hash for RowFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowFunction {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalars: Option<Vec<ScalarValue>> = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s.clone()),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        if let Some(values) = scalars {
            let value = (self.function)(&values)?;
            return Ok(ColumnarValue::Scalar(value.cast_to(&self.returns)?));
        }
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(args.number_rows);
        let mut row = Vec::with_capacity(arrays.len());
        for index in 0..args.number_rows {
            row.clear();
            for array in &arrays {
                row.push(ScalarValue::try_from_array(array, index)?);
            }
            out.push((self.function)(&row)?.cast_to(&self.returns)?);
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&self.returns),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

/// A [`RowFunction`] taking between `min` and `max` arguments of any type.
fn function(
    name: &'static str,
    arguments: std::ops::RangeInclusive<usize>,
    returns: DataType,
    f: impl Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync + 'static,
) -> ScalarUDF {
    let signatures: Vec<TypeSignature> = arguments
        .map(|n| {
            if n == 0 {
                TypeSignature::Nullary
            } else {
                TypeSignature::Any(n)
            }
        })
        .collect();
    ScalarUDF::from(RowFunction {
        name,
        signature: Signature::one_of(signatures, Volatility::Stable),
        returns,
        function: Arc::new(f),
    })
}

/// The value as an integer (integers of any width, numeric text), or None
/// for NULL and anything else.
pub fn integer(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int8(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int64(v) => *v,
        ScalarValue::UInt8(v) => v.map(i64::from),
        ScalarValue::UInt16(v) => v.map(i64::from),
        ScalarValue::UInt32(v) => v.map(i64::from),
        ScalarValue::UInt64(v) => v.and_then(|v| i64::try_from(v).ok()),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The value as text, or None for NULL and non-text values.
pub fn text(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => v.clone(),
        _ => None,
    }
}

fn boolean(value: &ScalarValue) -> Option<bool> {
    match value {
        ScalarValue::Boolean(v) => *v,
        other => text(other).map(|t| matches!(t.as_str(), "t" | "true" | "on" | "1")),
    }
}

fn text_value(value: Option<String>) -> ScalarValue {
    ScalarValue::Utf8(value)
}

fn oid_argument(args: &[ScalarValue], index: usize) -> Option<u32> {
    args.get(index).and_then(integer).map(|v| v as u32)
}

/// A possibly schema-qualified, possibly quoted relation name, split at
/// its first dot outside double quotes; unquoted parts are folded to lower
/// case, as PostgreSQL reads names.
pub fn split_qualified(name: &str) -> (Option<String>, String) {
    let unquote = |part: &str| -> String {
        let part = part.trim();
        match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => part.to_lowercase(),
        }
    };
    let mut quoted = false;
    for (index, c) in name.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => {
                return (Some(unquote(&name[..index])), unquote(&name[index + 1..]));
            }
            _ => {}
        }
    }
    (None, unquote(name))
}

/// `parse_ident('a."B".c')`: the parts of a qualified identifier, unquoted
/// (quoted parts keep their case), as text.
pub fn parse_ident(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = name.trim().chars().peekable();
    let mut quoted_part = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted_part = true;
                loop {
                    match chars.next()? {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            current.push('"');
                        }
                        '"' => break,
                        other => current.push(other),
                    }
                }
            }
            '.' => {
                if current.is_empty() {
                    return None;
                }
                parts.push(std::mem::take(&mut current));
                quoted_part = false;
            }
            c if quoted_part => {
                // Text after a quoted part that is not a dot.
                let _ = c;
                return None;
            }
            c => current.extend(c.to_lowercase()),
        }
    }
    if current.is_empty() {
        return None;
    }
    parts.push(current);
    Some(parts)
}

/// The name a relation OID prints as through `::regclass`: bare when the
/// search path finds it, else schema-qualified; the number when nothing
/// has that OID.
pub fn relation_display(state: &CatalogState, oid: u32) -> String {
    let quote = tempora_catalog::quote_ident;
    match oids::relation(state, oid) {
        Some(Relation::Table(id)) => state.tables.get(&id).map(|t| quote(&t.name)),
        Some(Relation::Index(id, position)) => state
            .tables
            .get(&id)
            .and_then(|t| t.indexes.get(position))
            .map(|i| quote(&i.name)),
        Some(Relation::Chunk(id)) => state.chunks.get(&id).and_then(|c| {
            let table = state.tables.get(&c.table_id)?;
            let h = table.hypertable.as_ref()?;
            Some(format!(
                "{}.{}",
                tempora_catalog::CHUNK_SCHEMA,
                c.table_name(h.hypertable_id)
            ))
        }),
        Some(Relation::View(name)) | Some(Relation::Sequence(name)) => Some(quote(&name)),
        Some(Relation::Catalog(name)) => {
            Some(if crate::information_schema::relation_name(oid).is_some() {
                format!("information_schema.{name}")
            } else {
                name.to_owned()
            })
        }
        None => None,
    }
    .unwrap_or_else(|| oid.to_string())
}

fn relation_oid_of(state: &CatalogState, value: &ScalarValue) -> Result<Option<u32>> {
    if let Some(name) = text(value) {
        if let Ok(oid) = name.trim().parse::<u32>() {
            return Ok(Some(oid));
        }
        let (schema, relation) = split_qualified(&name);
        return match oids::relation_by_name(state, schema.as_deref(), &relation) {
            Some(oid) => Ok(Some(oid)),
            None => Err(Error::UndefinedRelation { name }.into()),
        };
    }
    Ok(integer(value).map(|v| v as u32))
}

fn type_oid_of(value: &ScalarValue) -> Result<Option<u32>> {
    if let Some(name) = text(value) {
        if let Ok(oid) = name.trim().parse::<u32>() {
            return Ok(Some(oid));
        }
        return match pg_catalog::type_oid(&name.to_ascii_lowercase()) {
            Some(oid) => Ok(Some(oid)),
            None => Err(Error::UndefinedType { name }.into()),
        };
    }
    Ok(integer(value).map(|v| v as u32))
}

fn namespace_oid_of(value: &ScalarValue) -> Result<Option<u32>> {
    if let Some(name) = text(value) {
        if let Ok(oid) = name.trim().parse::<u32>() {
            return Ok(Some(oid));
        }
        let (_, name) = split_qualified(&name);
        return match pg_catalog::NAMESPACES.iter().find(|n| n.1 == name) {
            Some((oid, _)) => Ok(Some(*oid)),
            None => Err(Error::UndefinedSchema { name }.into()),
        };
    }
    Ok(integer(value).map(|v| v as u32))
}

/// `pg_size_pretty`: bytes as PostgreSQL 15 rounds them: whole bytes
/// below 10 kB, then the largest unit that keeps the value below 10 240
/// (kB, MB, GB, TB, PB), rounded half away from zero.
pub fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const LIMIT2: i64 = LIMIT * 2 - 1;
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // One extra bit is kept for rounding.
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.abs() < LIMIT2 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} PB", half_rounded(size))
}

/// Bytes of a relation's stored segments (a table, hypertable or chunk).
fn relation_bytes(state: &CatalogState, oid: u32) -> i64 {
    match oids::relation(state, oid) {
        Some(Relation::Table(id)) => state
            .chunks_of(id)
            .iter()
            .flat_map(|c| c.segments.iter())
            .map(|s| s.byte_size as i64)
            .sum(),
        Some(Relation::Chunk(id)) => state
            .chunks
            .get(&id)
            .map(|c| c.segments.iter().map(|s| s.byte_size as i64).sum())
            .unwrap_or(0),
        _ => 0,
    }
}

/// `pg_get_indexdef(index [, column [, pretty]])`.
fn index_definition(state: &CatalogState, args: &[ScalarValue]) -> Option<String> {
    let Some(Relation::Index(table_id, position)) = oids::relation(state, oid_argument(args, 0)?)
    else {
        return None;
    };
    let table = state.tables.get(&table_id)?;
    let index = table.indexes.get(position)?;
    match args.get(1).and_then(integer).unwrap_or(0) {
        0 => Some(index.definition(&table.name)),
        column => {
            let column = (column - 1) as usize;
            index
                .columns
                .get(column)
                .map(|c| tempora_catalog::quote_ident(c))
                .or_else(|| index.expressions.get(column).cloned())
        }
    }
}

fn constraint_definition(state: &CatalogState, oid: u32) -> Option<String> {
    for table in state.tables.values() {
        for (number, constraint) in pg_catalog::table_constraints(table).iter().enumerate() {
            if oids::constraint(table.id, number) == oid {
                return Some(pg_catalog::constraint_definition(table, constraint));
            }
        }
    }
    None
}

fn serial_sequence(state: &CatalogState, table: &str, column: &str) -> Option<String> {
    let (_, table) = split_qualified(table);
    let table = state.table_by_name(&table)?;
    let sequence = state
        .sequences
        .values()
        .find(|s| s.owned_by.as_ref() == Some(&(table.id, column.to_owned())))?;
    Some(format!("{DEFAULT_SCHEMA}.{}", sequence.name))
}

/// Whether a relation is found through the search path (`public`,
/// `pg_catalog`) rather than only by a qualified name.
fn table_is_visible(state: &CatalogState, oid: u32) -> bool {
    match oids::relation(state, oid) {
        Some(Relation::Chunk(_)) | None => false,
        Some(Relation::Catalog(_)) => crate::information_schema::relation_name(oid).is_none(),
        Some(_) => true,
    }
}

fn function_by_oid(oid: u32) -> Option<&'static pg_catalog::Function> {
    FUNCTIONS
        .iter()
        .enumerate()
        .find(|(i, _)| pg_catalog::function_oid(*i) == oid)
        .map(|(_, f)| f)
}

/// Every function of this module, bound to the store and the session.
pub fn all(store: Arc<Store>, session: Arc<SessionInfo>) -> Vec<ScalarUDF> {
    let utf8 = DataType::Utf8;
    let catalog = move |store: &Arc<Store>| store.catalog().snapshot();
    let mut functions = Vec::new();
    let s = store.clone();
    functions.push(function(
        "pg_table_is_visible",
        1..=1,
        DataType::Boolean,
        move |a| {
            Ok(ScalarValue::Boolean(
                oid_argument(a, 0).map(|oid| table_is_visible(&catalog(&s), oid)),
            ))
        },
    ));
    for name in [
        "pg_type_is_visible",
        "pg_function_is_visible",
        "pg_collation_is_visible",
        "pg_opclass_is_visible",
    ] {
        functions.push(function(name, 1..=1, DataType::Boolean, |a| {
            Ok(ScalarValue::Boolean(oid_argument(a, 0).map(|_| true)))
        }));
    }
    for name in [
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "has_column_privilege",
        "has_function_privilege",
        "has_sequence_privilege",
        "has_any_column_privilege",
        "pg_has_role",
    ] {
        functions.push(function(name, 2..=4, DataType::Boolean, |_| {
            Ok(ScalarValue::Boolean(Some(true)))
        }));
    }
    functions.push(function("pg_get_userbyid", 1..=1, utf8.clone(), |a| {
        Ok(text_value(oid_argument(a, 0).map(|oid| {
            if oid == oids::SUPERUSER_ROLE {
                "postgres".to_owned()
            } else {
                format!("unknown (OID={oid})")
            }
        })))
    }));
    functions.push(function("pg_encoding_to_char", 1..=1, utf8.clone(), |a| {
        Ok(text_value(a.first().and_then(integer).map(|e| {
            match e {
                6 => "UTF8",
                0 => "SQL_ASCII",
                _ => "",
            }
            .to_owned()
        })))
    }));
    functions.push(function("format_type", 2..=2, utf8.clone(), |a| {
        let Some(oid) = oid_argument(a, 0) else {
            return Ok(text_value(None));
        };
        let typmod = a.get(1).and_then(integer).map(|m| m as i32);
        Ok(text_value(Some(
            pg_catalog::format_type(oid, typmod).unwrap_or_else(|| "???".to_owned()),
        )))
    }));
    functions.push(function("pg_get_expr", 2..=3, utf8.clone(), |a| {
        Ok(text_value(a.first().and_then(text)))
    }));
    let s = store.clone();
    functions.push(function("pg_get_indexdef", 1..=3, utf8.clone(), move |a| {
        Ok(text_value(index_definition(&catalog(&s), a)))
    }));
    let s = store.clone();
    functions.push(function(
        "pg_get_constraintdef",
        1..=2,
        utf8.clone(),
        move |a| {
            Ok(text_value(
                oid_argument(a, 0).and_then(|oid| constraint_definition(&catalog(&s), oid)),
            ))
        },
    ));
    let s = store.clone();
    functions.push(function("pg_get_viewdef", 1..=2, utf8.clone(), move |a| {
        let state = catalog(&s);
        let name = match a.first().and_then(text) {
            Some(name) => split_qualified(&name).1,
            None => match oid_argument(a, 0).and_then(|oid| oids::relation(&state, oid)) {
                Some(Relation::View(name)) => name,
                _ => return Ok(text_value(None)),
            },
        };
        Ok(text_value(
            state.views.get(&name).map(|v| format!(" {};", v.query)),
        ))
    }));
    let s = store.clone();
    functions.push(function(
        "pg_get_serial_sequence",
        2..=2,
        utf8.clone(),
        move |a| {
            let (Some(table), Some(column)) = (a.first().and_then(text), a.get(1).and_then(text))
            else {
                return Ok(text_value(None));
            };
            Ok(text_value(serial_sequence(&catalog(&s), &table, &column)))
        },
    ));
    for name in ["obj_description", "shobj_description", "col_description"] {
        functions.push(function(name, 1..=2, utf8.clone(), |_| {
            Ok(text_value(None))
        }));
    }
    for name in [
        "pg_get_partkeydef",
        "pg_get_statisticsobjdef_columns",
        "pg_get_triggerdef",
        "pg_get_ruledef",
    ] {
        functions.push(function(name, 1..=2, utf8.clone(), |_| {
            Ok(text_value(None))
        }));
    }
    functions.push(function(
        "pg_tablespace_location",
        1..=1,
        utf8.clone(),
        |_| Ok(text_value(Some(String::new()))),
    ));
    functions.push(function(
        "pg_relation_is_publishable",
        1..=1,
        DataType::Boolean,
        |_| Ok(ScalarValue::Boolean(Some(false))),
    ));
    functions.push(function(
        "pg_is_in_recovery",
        0..=0,
        DataType::Boolean,
        |_| Ok(ScalarValue::Boolean(Some(false))),
    ));
    functions.push(function("version", 0..=0, utf8.clone(), |_| {
        Ok(text_value(Some(format!(
            "PostgreSQL {} (tempora {}) on {}-linux, compiled by rustc, 64-bit",
            crate::SERVER_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        ))))
    }));
    for name in ["current_database", "current_catalog"] {
        functions.push(function(name, 0..=0, utf8.clone(), |_| {
            Ok(text_value(Some(crate::DATABASE_NAME.to_owned())))
        }));
    }
    functions.push(function("current_schema", 0..=0, utf8.clone(), |_| {
        Ok(text_value(Some(DEFAULT_SCHEMA.to_owned())))
    }));
    let list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    functions.push(function("current_schemas", 1..=1, list, |a| {
        let mut schemas = Vec::new();
        if a.first().and_then(boolean).unwrap_or(false) {
            schemas.push(ScalarValue::Utf8(Some("pg_catalog".to_owned())));
        }
        schemas.push(ScalarValue::Utf8(Some(DEFAULT_SCHEMA.to_owned())));
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &schemas,
            &DataType::Utf8,
        )))
    }));
    for name in ["current_user", "session_user", "current_role", "user"] {
        let session = session.clone();
        functions.push(function(name, 0..=0, utf8.clone(), move |_| {
            Ok(text_value(Some(session.user())))
        }));
    }
    let info = session.clone();
    functions.push(function(
        "pg_backend_pid",
        0..=0,
        DataType::Int32,
        move |_| Ok(ScalarValue::Int32(Some(info.backend_pid()))),
    ));
    let info = session.clone();
    functions.push(function("current_setting", 1..=2, utf8.clone(), move |a| {
        let Some(name) = a.first().and_then(text) else {
            return Ok(text_value(None));
        };
        match info.setting(&name) {
            Some(value) => Ok(text_value(Some(value))),
            None if a.get(1).and_then(boolean).unwrap_or(false) => Ok(text_value(None)),
            None => Err(Error::UnknownSetting { name }.into()),
        }
    }));
    functions.push(function(
        "pg_postmaster_start_time",
        0..=0,
        DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some(Arc::from(tempora_types::UTC_ZONE)),
        ),
        |_| {
            Ok(ScalarValue::TimestampMicrosecond(
                Some(*START_TIME_MICROS),
                Some(Arc::from(tempora_types::UTC_ZONE)),
            ))
        },
    ));
    for name in ["inet_server_addr", "inet_client_addr"] {
        functions.push(function(name, 0..=0, utf8.clone(), |_| {
            Ok(text_value(None))
        }));
    }
    let s = store.clone();
    for name in [
        "pg_relation_size",
        "pg_total_relation_size",
        "pg_table_size",
    ] {
        let s = s.clone();
        functions.push(function(name, 1..=2, DataType::Int64, move |a| {
            let state = catalog(&s);
            let oid = match a.first() {
                Some(v) => relation_oid_of(&state, v)?,
                None => None,
            };
            Ok(ScalarValue::Int64(
                oid.map(|oid| relation_bytes(&state, oid)),
            ))
        }));
    }
    functions.push(function("pg_indexes_size", 1..=1, DataType::Int64, |_| {
        Ok(ScalarValue::Int64(Some(0)))
    }));
    let s = store.clone();
    functions.push(function(
        "pg_database_size",
        1..=1,
        DataType::Int64,
        move |_| {
            let state = catalog(&s);
            Ok(ScalarValue::Int64(Some(
                state
                    .chunks
                    .values()
                    .flat_map(|c| c.segments.iter())
                    .map(|s| s.byte_size as i64)
                    .sum(),
            )))
        },
    ));
    functions.push(function("pg_size_pretty", 1..=1, utf8.clone(), |a| {
        Ok(text_value(a.first().and_then(integer).map(size_pretty)))
    }));
    functions.push(function(
        "pg_get_function_result",
        1..=1,
        utf8.clone(),
        |a| {
            Ok(text_value(
                oid_argument(a, 0)
                    .and_then(function_by_oid)
                    .map(|f| f.result.to_owned()),
            ))
        },
    ));
    for name in [
        "pg_get_function_arguments",
        "pg_get_function_identity_arguments",
    ] {
        functions.push(function(name, 1..=1, utf8.clone(), |a| {
            Ok(text_value(
                oid_argument(a, 0)
                    .and_then(function_by_oid)
                    .map(|f| f.arguments.to_owned()),
            ))
        }));
    }
    functions.push(function("quote_ident", 1..=1, utf8.clone(), |a| {
        Ok(text_value(
            a.first()
                .and_then(text)
                .map(|t| tempora_catalog::quote_ident(&t)),
        ))
    }));
    let texts = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    functions.push(function("parse_ident", 1..=2, texts, |a| {
        let Some(name) = a.first().and_then(text) else {
            return Ok(ScalarValue::Null);
        };
        let parts = parse_ident(&name).ok_or_else(|| Error::InvalidParameter {
            message: format!("string is not a valid identifier: \"{name}\""),
        })?;
        let values: Vec<ScalarValue> = parts
            .into_iter()
            .map(|p| ScalarValue::Utf8(Some(p)))
            .collect();
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &DataType::Utf8,
        )))
    }));
    functions.push(ScalarUDF::from(Subscripts {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    functions.push(ScalarUDF::from(ExpandArray {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    functions.push(ScalarUDF::from(TypeOf {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    // One-dimensional arrays only, as tempora has no others. Bigint where
    // PostgreSQL says integer, so generate_series (bigint only in
    // DataFusion) takes them as Grafana passes them.
    functions.push(function("array_upper", 2..=2, DataType::Int64, |a| {
        let length = a.first().and_then(list_length).filter(|n| *n > 0);
        let first_dimension = a.get(1).and_then(integer) == Some(1);
        Ok(ScalarValue::Int64(length.filter(|_| first_dimension)))
    }));
    functions.push(function("array_lower", 2..=2, DataType::Int64, |a| {
        let length = a.first().and_then(list_length).filter(|n| *n > 0);
        let first_dimension = a.get(1).and_then(integer) == Some(1);
        Ok(ScalarValue::Int64(
            length.filter(|_| first_dimension).map(|_| 1),
        ))
    }));
    let s = store.clone();
    functions.push(function("to_regclass", 1..=1, DataType::UInt32, move |a| {
        let state = catalog(&s);
        Ok(ScalarValue::UInt32(
            a.first()
                .and_then(|v| relation_oid_of(&state, v).ok().flatten()),
        ))
    }));
    functions.push(function("to_regtype", 1..=1, DataType::UInt32, |a| {
        Ok(ScalarValue::UInt32(
            a.first().and_then(|v| type_oid_of(v).ok().flatten()),
        ))
    }));
    // The `::regclass`-style conversions (see the sql layer's rewrite):
    // to the OID, failing for unknown names as PostgreSQL does, and to the
    // name an OID prints as.
    let s = store.clone();
    functions.push(function(REGCLASS_OID, 1..=1, DataType::UInt32, move |a| {
        Ok(ScalarValue::UInt32(relation_oid_of(&catalog(&s), &a[0])?))
    }));
    let s = store.clone();
    functions.push(function(REGCLASS_NAME, 1..=1, utf8.clone(), move |a| {
        let state = catalog(&s);
        Ok(text_value(
            relation_oid_of(&state, &a[0])?.map(|oid| relation_display(&state, oid)),
        ))
    }));
    functions.push(function(REGTYPE_OID, 1..=1, DataType::UInt32, |a| {
        Ok(ScalarValue::UInt32(type_oid_of(&a[0])?))
    }));
    functions.push(function(REGTYPE_NAME, 1..=1, utf8.clone(), |a| {
        Ok(text_value(type_oid_of(&a[0])?.map(|oid| {
            pg_catalog::format_type(oid, None).unwrap_or_else(|| oid.to_string())
        })))
    }));
    functions.push(function(REGNAMESPACE_OID, 1..=1, DataType::UInt32, |a| {
        Ok(ScalarValue::UInt32(namespace_oid_of(&a[0])?))
    }));
    functions.push(function(REGNAMESPACE_NAME, 1..=1, utf8.clone(), |a| {
        Ok(text_value(namespace_oid_of(&a[0])?.map(|oid| {
            namespace_name(oid).map_or_else(|| oid.to_string(), str::to_owned)
        })))
    }));
    functions.push(function(REGPROC_NAME, 1..=1, utf8, |a| {
        Ok(text_value(match &a[0] {
            v if text(v).is_some() => text(v),
            v => integer(v).map(|oid| {
                function_by_oid(oid as u32).map_or_else(|| oid.to_string(), |f| f.name.to_owned())
            }),
        }))
    }));
    functions
}

/// The subscripts of an array, for `generate_subscripts(a, 1)`: from 1, or
/// from 0 for `int2vector` and `oidvector`, whose subscripts start there.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Subscripts {
    signature: Signature,
}

impl ScalarUDFImpl for Subscripts {
    fn name(&self) -> &str {
        SUBSCRIPTS
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Int64,
            true,
        ))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, Int64Builder, ListBuilder};
        let first = args
            .arg_fields
            .first()
            .and_then(|f| tempora_types::PgType::of_field(f).ok())
            .is_some_and(|t| t.is_vector());
        let start = if first { 0 } else { 1 };
        let array = args.args[0].to_array(args.number_rows)?;
        let mut builder = ListBuilder::new(Int64Builder::new());
        let Some(list) = array.as_list_opt::<i32>() else {
            return exec_err!("generate_subscripts of a value that is not an array");
        };
        for row in 0..list.len() {
            if list.is_null(row) {
                builder.append_null();
                continue;
            }
            let length = list.value(row).len() as i64;
            for subscript in start..start + length {
                builder.values().append_value(subscript);
            }
            builder.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(builder.finish())))
    }
}

/// `pg_typeof(x)`: the name of the argument's type, from its field (a
/// regtype, so without a modifier: `numeric`, never `numeric(10,2)`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TypeOf {
    signature: Signature,
}

impl ScalarUDFImpl for TypeOf {
    fn name(&self) -> &str {
        "pg_typeof"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = match args.arg_fields.first() {
            Some(field) if field.data_type() == &DataType::Null => "unknown".to_owned(),
            Some(field) => tempora_types::PgType::of_field(field)
                .map(|t| t.without_modifier().to_string())
                .unwrap_or_else(|_| "unknown".to_owned()),
            None => "unknown".to_owned(),
        };
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

/// `information_schema._pg_expandarray(a)`'s rows as one list of
/// `(x, n)` records (element, 1-based position), for `unnest`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

impl ExpandArray {
    fn record_fields(element: &DataType) -> datafusion::arrow::datatypes::Fields {
        datafusion::arrow::datatypes::Fields::from(vec![
            Field::new("x", element.clone(), true),
            Field::new("n", DataType::Int32, false),
        ])
    }
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        EXPAND_ARRAY
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let element = match arg_types.first() {
            Some(DataType::List(field)) => field.data_type().clone(),
            _ => return exec_err!("_pg_expandarray of a value that is not an array"),
        };
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Struct(Self::record_fields(&element)),
            true,
        ))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, Int32Array, ListArray, StructArray};
        use datafusion::arrow::buffer::OffsetBuffer;
        let array = args.args[0].to_array(args.number_rows)?;
        let Some(list) = array.as_list_opt::<i32>() else {
            return exec_err!("_pg_expandarray of a value that is not an array");
        };
        let element = list.value_type();
        let mut positions = Vec::with_capacity(list.values().len());
        let mut lengths = Vec::with_capacity(list.len());
        for row in 0..list.len() {
            let (start, end) = (list.value_offsets()[row], list.value_offsets()[row + 1]);
            let length = if list.is_null(row) {
                0
            } else {
                (end - start) as usize
            };
            positions.extend(1..=length as i32);
            lengths.push(length);
        }
        // The elements of every row in order, as the offsets lay them out.
        let mut elements = Vec::with_capacity(list.len());
        for row in 0..list.len() {
            if !list.is_null(row) {
                elements.push(list.value(row));
            }
        }
        let refs: Vec<&dyn Array> = elements.iter().map(|a| a.as_ref()).collect();
        let values = if refs.is_empty() {
            datafusion::arrow::array::new_empty_array(&element)
        } else {
            datafusion::arrow::compute::concat(&refs)?
        };
        let records = StructArray::try_new(
            Self::record_fields(&element),
            vec![values, Arc::new(Int32Array::from(positions))],
            None,
        )?;
        let field = Arc::new(Field::new_list_field(
            DataType::Struct(Self::record_fields(&element)),
            true,
        ));
        Ok(ColumnarValue::Array(Arc::new(ListArray::try_new(
            field,
            OffsetBuffer::from_lengths(lengths),
            Arc::new(records),
            list.nulls().cloned(),
        )?)))
    }
}

fn list_length(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::List(list) => {
            use datafusion::arrow::array::Array;
            (!list.is_null(0)).then(|| list.value(0).len() as i64)
        }
        _ => None,
    }
}

pub const SUBSCRIPTS: &str = "__tempora_subscripts";
pub const EXPAND_ARRAY: &str = "__tempora_expandarray";
pub const REGCLASS_OID: &str = "__tempora_regclass_oid";
pub const REGCLASS_NAME: &str = "__tempora_regclass_name";
pub const REGTYPE_OID: &str = "__tempora_regtype_oid";
pub const REGTYPE_NAME: &str = "__tempora_regtype_name";
pub const REGNAMESPACE_OID: &str = "__tempora_regnamespace_oid";
pub const REGNAMESPACE_NAME: &str = "__tempora_regnamespace_name";
pub const REGPROC_NAME: &str = "__tempora_regproc_name";

static START_TIME_MICROS: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_postgres() {
        assert_eq!(size_pretty(8192), "8192 bytes");
        assert_eq!(size_pretty(10 * 1024), "10 kB");
        assert_eq!(size_pretty(123_456_789), "118 MB");
        assert_eq!(size_pretty(-10 * 1024), "-10 kB");
    }

    #[test]
    fn identifiers_split_like_parse_ident() {
        assert_eq!(
            parse_ident("public.Conditions").unwrap(),
            vec!["public", "conditions"]
        );
        assert_eq!(
            parse_ident("\"My Schema\".t").unwrap(),
            vec!["My Schema", "t"]
        );
        assert!(parse_ident("a..b").is_none());
        assert!(parse_ident("\"open").is_none());
    }

    #[test]
    fn names_split_like_regclass_input() {
        assert_eq!(split_qualified("Foo"), (None, "foo".to_owned()));
        assert_eq!(
            split_qualified("pg_catalog.pg_class"),
            (Some("pg_catalog".to_owned()), "pg_class".to_owned())
        );
        assert_eq!(split_qualified("\"Mixed\""), (None, "Mixed".to_owned()));
    }
}
