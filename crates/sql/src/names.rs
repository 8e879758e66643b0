//! Identifier rules: unquoted names fold to lower case, quoted names keep
//! their spelling, and every user table lives in schema `public`.

use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

use tempora_catalog::DEFAULT_SCHEMA;

use crate::{Error, Result};

pub(crate) fn ident(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The table name an ObjectName denotes; `public.t` and `t` are the same table.
pub(crate) fn table_name(name: &ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(i) => Ok(ident(i)),
            ObjectNamePart::Function(_) => Err(Error::Syntax {
                message: format!("invalid name: {name}"),
            }),
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [table] => Ok(table.clone()),
        [schema, table] if schema == DEFAULT_SCHEMA => Ok(table.clone()),
        [database, schema, table]
            if database == tempora_query::DATABASE_NAME && schema == DEFAULT_SCHEMA =>
        {
            Ok(table.clone())
        }
        [schema, _] => Err(Error::UndefinedSchema {
            name: schema.clone(),
        }),
        _ => Err(Error::Syntax {
            message: format!("improper qualified name (too many dotted names): {name}"),
        }),
    }
}

/// A table name given as a string argument (`create_hypertable('public.t', ...)`),
/// following the same folding rules as `regclass` input.
pub(crate) fn table_name_from_text(text: &str) -> Result<String> {
    let parts: Vec<String> = text
        .split('.')
        .map(|part| {
            let part = part.trim();
            match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(quoted) => quoted.to_owned(),
                None => part.to_lowercase(),
            }
        })
        .collect();
    match parts.as_slice() {
        [table] => Ok(table.clone()),
        [schema, table] if schema == DEFAULT_SCHEMA => Ok(table.clone()),
        [schema, _] => Err(Error::UndefinedSchema {
            name: schema.clone(),
        }),
        _ => Err(Error::Syntax {
            message: format!("invalid name syntax: \"{text}\""),
        }),
    }
}
