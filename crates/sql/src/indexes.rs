//! Keys and indexes: PRIMARY KEY and UNIQUE constraints (in CREATE TABLE
//! and ALTER TABLE ... ADD CONSTRAINT), CREATE INDEX and DROP INDEX.
//!
//! tempora keeps rows in time-ordered columnar segments, not in a heap with
//! B-trees beside it. What each index does here:
//! - a unique index (a PRIMARY KEY, a UNIQUE constraint, CREATE UNIQUE
//!   INDEX) is enforced by the store's key index, across all chunks of a
//!   hypertable, whether or not it includes the time column;
//! - every index is recorded in the catalog, so clients that list indexes
//!   find it; a plain (btree or gin) index changes no plan: segment
//!   statistics and chunk exclusion do the work a B-tree does elsewhere.

use datafusion::sql::sqlparser::ast::{self, Expr};

use tempora_catalog::{CatalogState, IndexDef, TableDef};

use crate::error::SqlState;
use crate::names::{ident, table_name};
use crate::session::{Output, Session};
use crate::{Error, Result};

/// PostgreSQL's longest identifier, in bytes.
const NAME_LIMIT: usize = 63;

/// Key columns named by a constraint or index, with their sort direction.
fn key_columns(table: &TableDef, columns: &[ast::IndexColumn]) -> Result<(Vec<String>, Vec<bool>)> {
    let mut names = Vec::with_capacity(columns.len());
    let mut descending = Vec::with_capacity(columns.len());
    for column in columns {
        let name = match &column.column.expr {
            Expr::Identifier(i) => ident(i),
            other => {
                return Err(Error::not_supported(format!(
                    "a key on the expression {other} (keys name columns)"
                )));
            }
        };
        if table.column_index(&name).is_none() {
            return Err(Error::UndefinedColumn {
                table: table.name.clone(),
                column: name,
            });
        }
        if names.contains(&name) {
            return Err(Error::DuplicateColumn { name });
        }
        descending.push(column.column.options.asc == Some(false));
        names.push(name);
    }
    Ok((names, descending))
}

/// Truncates a name to PostgreSQL's identifier length, on a char boundary.
fn truncated(name: &str, limit: usize) -> &str {
    if name.len() <= limit {
        return name;
    }
    let mut end = limit;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The name PostgreSQL gives an unnamed constraint or index: `t_pkey`,
/// `t_a_b_key`, `t_a_idx`, numbered when taken.
fn generated_name(
    state: &CatalogState,
    table: &TableDef,
    columns: &[String],
    suffix: &str,
) -> String {
    let base = match suffix {
        "pkey" => table.name.clone(),
        _ => format!("{}_{}", table.name, columns.join("_")),
    };
    let taken =
        |name: &str| state.relation_exists(name) || table.indexes.iter().any(|i| i.name == name);
    for n in 0.. {
        let tail = if n == 0 {
            format!("_{suffix}")
        } else {
            format!("_{suffix}{n}")
        };
        let name = format!("{}{tail}", truncated(&base, NAME_LIMIT - tail.len()));
        if !taken(&name) {
            return name;
        }
    }
    unreachable!("some numbered name is free")
}

/// Adds a PRIMARY KEY or UNIQUE constraint to a table definition: its
/// index, and NOT NULL on a primary key's columns.
pub(crate) fn add_key(
    state: &CatalogState,
    table: &mut TableDef,
    name: Option<&ast::Ident>,
    columns: &[ast::IndexColumn],
    primary: bool,
) -> Result<()> {
    let (columns, descending) = key_columns(table, columns)?;
    if primary && table.primary_key().is_some() {
        return Err(Error::InvalidTableDefinition {
            message: format!(
                "multiple primary keys for table \"{}\" are not allowed",
                table.name
            ),
        });
    }
    let name = match name {
        Some(name) => {
            let name = ident(name);
            // The name is taken by another relation, or by another index of
            // this table (the catalog's copy of the table may still list an
            // index being replaced).
            let taken_elsewhere = state.relation_exists(&name)
                && state
                    .index_by_name(&name)
                    .is_none_or(|(t, _)| t.id != table.id);
            if taken_elsewhere || table.indexes.iter().any(|i| i.name == name) {
                return Err(Error::DuplicateTable { name });
            }
            name
        }
        None => generated_name(state, table, &columns, if primary { "pkey" } else { "key" }),
    };
    if primary {
        for column in &mut table.columns {
            if columns.contains(&column.name) {
                column.not_null = true;
            }
        }
    }
    table.indexes.push(IndexDef {
        name,
        columns,
        descending,
        unique: true,
        primary,
        constraint: true,
        method: "btree".to_owned(),
        expressions: Vec::new(),
    });
    Ok(())
}

/// Adds what a table constraint of CREATE TABLE or ALTER TABLE ... ADD
/// declares; constraints tempora does not enforce answer 0A000.
pub(crate) fn add_constraint(
    state: &CatalogState,
    table: &mut TableDef,
    constraint: &ast::TableConstraint,
) -> Result<()> {
    match constraint {
        ast::TableConstraint::PrimaryKey(key) => {
            add_key(state, table, key.name.as_ref(), &key.columns, true)
        }
        ast::TableConstraint::Unique(key) => {
            add_key(state, table, key.name.as_ref(), &key.columns, false)
        }
        ast::TableConstraint::ForeignKey(_) => Err(Error::not_supported(
            "FOREIGN KEY constraints (tempora does not enforce references between tables)",
        )),
        ast::TableConstraint::Check(check) => {
            crate::checks::add_check(table, check.name.as_ref(), &check.expr)
        }
        other => Err(Error::not_supported(format!("the constraint {other}"))),
    }
}

/// Gives a changed index list to the store, which builds any new unique
/// index over the rows first (23505 if they hold a key twice).
async fn store_indexes(session: &Session, table: TableDef) -> Result<()> {
    let store = session.engine().store().clone();
    let mark = session.ddl_mark();
    tokio::task::spawn_blocking(move || store.set_indexes(table, mark))
        .await
        .map_err(|e| Error::not_supported(format!("index task failed: {e}")))??;
    Ok(())
}

/// ALTER TABLE ... ADD [CONSTRAINT name] PRIMARY KEY / UNIQUE (cols).
///
/// One departure from PostgreSQL: a primary key named as the table's
/// current one, over its columns and more, replaces it (with a NOTICE)
/// instead of failing with 42P16. Seed 000's staged migration relies on
/// this: `LIKE ... INCLUDING ALL` copies the old `id` key as `new_pkey`,
/// then `ADD CONSTRAINT new_pkey PRIMARY KEY (id, created_at)` widens it.
/// Rows unique by the old key are unique by the new one, so nothing needs
/// checking.
pub(crate) async fn alter_add_constraint(
    session: &mut Session,
    table: &TableDef,
    constraint: &ast::TableConstraint,
) -> Result<()> {
    let state = session.engine().store().catalog().snapshot();
    let mut changed = table.clone();
    if let ast::TableConstraint::PrimaryKey(key) = constraint
        && let (Some(name), Some(current)) = (&key.name, table.primary_key())
        && ident(name) == current.name
    {
        let (columns, _) = key_columns(table, &key.columns)?;
        if current.columns.iter().all(|c| columns.contains(c)) {
            session.notice(format!(
                "primary key \"{}\" of relation \"{}\" is replaced: ({}) becomes ({})",
                current.name,
                table.name,
                current.columns.join(", "),
                columns.join(", ")
            ));
            let name = current.name.clone();
            changed.indexes.retain(|i| i.name != name);
        }
    }
    add_constraint(&state, &mut changed, constraint)?;
    if let Some(check) = changed.checks.get(table.checks.len()).cloned() {
        crate::checks::validate_definition(session, &changed).await?;
        crate::checks::validate_existing(session, table, &check).await?;
    }
    // The store refuses a primary key over existing NULLs (23502) while it
    // builds the key's index.
    store_indexes(session, changed).await
}

/// ALTER TABLE ... DROP CONSTRAINT [IF EXISTS] name.
pub(crate) async fn alter_drop_constraint(
    session: &mut Session,
    table: &TableDef,
    name: &ast::Ident,
    if_exists: bool,
) -> Result<()> {
    let name = ident(name);
    if crate::checks::has_check(table, &name) {
        let mut changed = table.clone();
        changed.checks.retain(|c| c.name != name);
        return store_indexes(session, changed).await;
    }
    let Some(position) = table
        .indexes
        .iter()
        .position(|i| i.constraint && i.name == name)
    else {
        if if_exists {
            session.notice(format!(
                "constraint \"{name}\" of relation \"{}\" does not exist, skipping",
                table.name
            ));
            return Ok(());
        }
        return Err(Error::UndefinedObject {
            message: format!(
                "constraint \"{name}\" of relation \"{}\" does not exist",
                table.name
            ),
        });
    };
    let mut changed = table.clone();
    changed.indexes.remove(position);
    store_indexes(session, changed).await
}

/// CREATE [UNIQUE] INDEX [IF NOT EXISTS] [name] ON t [USING method] (keys).
pub(crate) async fn create_index(
    session: &mut Session,
    create: &ast::CreateIndex,
) -> Result<Output> {
    let tag = || Output::Command {
        tag: "CREATE INDEX".to_owned(),
    };
    if create.predicate.is_some() {
        return Err(Error::not_supported(
            "partial indexes (CREATE INDEX ... WHERE)",
        ));
    }
    if !create.include.is_empty() {
        return Err(Error::not_supported("CREATE INDEX ... INCLUDE"));
    }
    let table = session.table(&table_name(&create.table_name)?)?;
    let method = match &create.using {
        None => "btree".to_owned(),
        Some(using) => {
            let method = using.to_string().to_lowercase();
            if !matches!(method.as_str(), "btree" | "gin" | "brin" | "hash" | "gist") {
                return Err(Error::UndefinedObject {
                    message: format!("access method \"{method}\" does not exist"),
                });
            }
            method
        }
    };
    let state = session.engine().store().catalog().snapshot();
    let plain_columns = create
        .columns
        .iter()
        .all(|c| matches!(c.column.expr, Expr::Identifier(_)));
    let (columns, descending, expressions) = if plain_columns {
        let (columns, descending) = key_columns(&table, &create.columns)?;
        (columns, descending, Vec::new())
    } else {
        if create.unique {
            return Err(Error::not_supported(
                "unique indexes on expressions (a unique index names columns)",
            ));
        }
        let expressions = create
            .columns
            .iter()
            .map(|c| c.column.expr.to_string())
            .collect();
        let descending = create
            .columns
            .iter()
            .map(|c| c.column.options.asc == Some(false))
            .collect();
        (Vec::new(), descending, expressions)
    };
    let name = match &create.name {
        Some(name) => {
            let name = table_name(name)?;
            if state.relation_exists(&name) {
                if create.if_not_exists {
                    session.notice(format!("relation \"{name}\" already exists, skipping"));
                    return Ok(tag());
                }
                return Err(Error::DuplicateTable { name });
            }
            name
        }
        None => {
            let named: Vec<String> = if columns.is_empty() {
                vec!["expr".to_owned()]
            } else {
                columns.clone()
            };
            generated_name(&state, &table, &named, "idx")
        }
    };
    let mut changed = (*table).clone();
    changed.indexes.push(IndexDef {
        name,
        columns,
        descending,
        unique: create.unique,
        primary: false,
        constraint: false,
        method,
        expressions,
    });
    store_indexes(session, changed).await?;
    Ok(tag())
}

/// DROP INDEX [IF EXISTS] names: an index a constraint owns answers 2BP01
/// (drop the constraint instead), as in PostgreSQL.
pub(crate) async fn drop_indexes(
    session: &mut Session,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<Output> {
    for name in names {
        let name = table_name(name)?;
        let state = session.engine().store().catalog().snapshot();
        let Some((table, index)) = state.index_by_name(&name) else {
            if if_exists {
                session.notice(format!("index \"{name}\" does not exist, skipping"));
                continue;
            }
            if state.relation_exists(&name) {
                return Err(Error::WrongObjectType {
                    message: format!("\"{name}\" is not an index"),
                });
            }
            return Err(Error::UndefinedObject {
                message: format!("index \"{name}\" does not exist"),
            });
        };
        if index.constraint {
            return Err(Error::Coded {
                code: SqlState::DependentObjectsStillExist,
                message: format!(
                    "cannot drop index {name} because constraint {name} on table {table} requires it\nHINT: You can drop constraint {name} on table {table} instead.",
                    table = table.name
                ),
            });
        }
        let mut changed = (**table).clone();
        changed.indexes.retain(|i| i.name != name);
        store_indexes(session, changed).await?;
    }
    Ok(Output::Command {
        tag: "DROP INDEX".to_owned(),
    })
}

/// Copies an index of another table (`LIKE ... INCLUDING INDEXES`), named
/// for `table` as PostgreSQL names the copy.
pub(crate) fn copy_index(state: &CatalogState, table: &mut TableDef, index: &IndexDef) {
    let suffix = if index.primary {
        "pkey"
    } else if index.constraint {
        "key"
    } else {
        "idx"
    };
    let named: Vec<String> = if index.columns.is_empty() {
        vec!["expr".to_owned()]
    } else {
        index.columns.clone()
    };
    let name = generated_name(state, table, &named, suffix);
    table.indexes.push(IndexDef {
        name,
        ..index.clone()
    });
}

/// The table's indexes after a column is renamed.
pub(crate) fn rename_column(table: &mut TableDef, old: &str, new: &str) {
    for index in &mut table.indexes {
        for column in &mut index.columns {
            if column == old {
                *column = new.to_owned();
            }
        }
    }
}

/// The table's indexes after a column is dropped: as in PostgreSQL, every
/// index on the column goes with it.
pub(crate) fn drop_column(table: &mut TableDef, column: &str) {
    table
        .indexes
        .retain(|i| !i.columns.iter().any(|c| c == column));
}
