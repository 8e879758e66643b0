//! CREATE TABLE, DROP TABLE, CREATE EXTENSION.

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{self, ColumnOption, ObjectName, ObjectType};

use tempora_catalog::{ColumnDef, SequenceDef, TableDef};
use tempora_query::types::{is_serial, pg_type_of_sql};
use tempora_types::PgType;

use crate::names::{ident, table_name};
use crate::session::{Output, Session};
use crate::{Error, Result};

pub(crate) fn create_table(session: &mut Session, create: &ast::CreateTable) -> Result<Output> {
    if create.query.is_some() {
        return Err(Error::not_supported("CREATE TABLE ... AS"));
    }
    if create.temporary {
        return Err(Error::not_supported("temporary tables"));
    }
    if create.like.is_some() {
        return Err(Error::not_supported("CREATE TABLE ... (LIKE ...)"));
    }
    if let Some(constraint) = create.constraints.first() {
        return Err(Error::not_supported(format!(
            "table constraint \"{constraint}\" (keys and checks arrive with tempora's key support)"
        )));
    }
    let name = table_name(&create.name)?;
    let state = session.engine().store().catalog().snapshot();
    if state.table_by_name(&name).is_some() || state.sequences.contains_key(&name) {
        if create.if_not_exists {
            session.notice(format!("relation \"{name}\" already exists, skipping"));
            return Ok(Output::Command {
                tag: "CREATE TABLE".to_owned(),
            });
        }
        return Err(Error::DuplicateTable { name });
    }
    let mut seen = HashSet::new();
    let mut columns = Vec::with_capacity(create.columns.len());
    let mut serials = Vec::new();
    for column in &create.columns {
        let column_name = ident(&column.name);
        if !seen.insert(column_name.clone()) {
            return Err(Error::DuplicateColumn { name: column_name });
        }
        let pg_type = pg_type_of_sql(&column.data_type).ok_or_else(|| Error::UndefinedType {
            name: column.data_type.to_string().to_lowercase(),
        })?;
        let mut def = ColumnDef {
            name: column_name.clone(),
            pg_type,
            not_null: false,
            default_sql: None,
        };
        if is_serial(&column.data_type) {
            let sequence = format!("{name}_{column_name}_seq");
            def.not_null = true;
            def.default_sql = Some(format!("nextval('{sequence}')"));
            serials.push((sequence, column_name.clone(), pg_type));
        }
        for option in &column.options {
            match &option.option {
                ColumnOption::NotNull => def.not_null = true,
                ColumnOption::Null => def.not_null = false,
                ColumnOption::Default(expr) => def.default_sql = Some(expr.to_string()),
                other => {
                    return Err(Error::not_supported(format!(
                        "column option \"{other}\" (keys and checks arrive with tempora's key support)"
                    )));
                }
            }
        }
        columns.push(def);
    }
    if columns.is_empty() {
        return Err(Error::not_supported("tables without columns"));
    }
    session.engine().store().catalog().transact(|txn| {
        let id = txn.allocate_id();
        for (sequence, column, pg_type) in &serials {
            let max_value = match pg_type {
                PgType::Int2 => i16::MAX as i64,
                PgType::Int4 => i32::MAX as i64,
                _ => i64::MAX,
            };
            txn.create_sequence(SequenceDef {
                name: sequence.clone(),
                increment: 1,
                min_value: 1,
                max_value,
                start_value: 1,
                last_value: None,
                reserved_through: None,
                owned_by: Some((id, column.clone())),
            })?;
        }
        txn.create_table(TableDef {
            id,
            name: name.clone(),
            columns: columns.clone(),
            hypertable: None,
        })
    })?;
    Ok(Output::Command {
        tag: "CREATE TABLE".to_owned(),
    })
}

pub(crate) fn drop(
    session: &mut Session,
    object_type: ObjectType,
    if_exists: bool,
    names: &[ObjectName],
) -> Result<Output> {
    if object_type != ObjectType::Table {
        return Err(Error::not_supported(format!("DROP {object_type}")));
    }
    let store = session.engine().store().clone();
    // Check every name first: DROP TABLE a, b drops neither if b is missing.
    let state = store.catalog().snapshot();
    let mut ids = Vec::new();
    for name in names {
        let name = table_name(name)?;
        match state.table_by_name(&name) {
            Some(table) => ids.push(table.id),
            None if if_exists => {
                session.notice(format!("table \"{name}\" does not exist, skipping"))
            }
            None => return Err(Error::UndefinedTable { name }),
        }
    }
    for id in ids {
        let owned: Vec<String> = state
            .sequences
            .values()
            .filter(|s| s.owned_by.as_ref().is_some_and(|(t, _)| *t == id))
            .map(|s| s.name.clone())
            .collect();
        store.drop_table(id)?;
        for sequence in owned {
            session.engine().sequences.forget(&sequence);
        }
    }
    Ok(Output::Command {
        tag: "DROP TABLE".to_owned(),
    })
}

pub(crate) fn create_extension(
    session: &mut Session,
    create: &ast::CreateExtension,
) -> Result<Output> {
    let name = ident(&create.name);
    let installed_key = match name.as_str() {
        "timescaledb" => tempora_query::views::META_TIMESCALEDB_INSTALLED,
        // plpgsql is always installed in PostgreSQL.
        "plpgsql" => {
            if create.if_not_exists {
                session.notice(format!("extension \"{name}\" already exists, skipping"));
                return Ok(Output::Command {
                    tag: "CREATE EXTENSION".to_owned(),
                });
            }
            return Err(Error::DuplicateExtension { name });
        }
        _ => return Err(Error::ExtensionNotAvailable { name }),
    };
    // The TimescaleDB API is built in; installing only makes pg_extension list it.
    let catalog = session.engine().store().catalog().clone();
    if catalog.snapshot().meta_value(installed_key) == 1 {
        if create.if_not_exists {
            session.notice(format!("extension \"{name}\" already exists, skipping"));
            return Ok(Output::Command {
                tag: "CREATE EXTENSION".to_owned(),
            });
        }
        return Err(Error::DuplicateExtension { name });
    }
    session.refuse_in_block("CREATE EXTENSION")?;
    catalog.transact(|txn| {
        txn.set_meta(installed_key, 1);
        Ok(())
    })?;
    Ok(Output::Command {
        tag: "CREATE EXTENSION".to_owned(),
    })
}
