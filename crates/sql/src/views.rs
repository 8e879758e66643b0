//! Views: `CREATE [OR REPLACE] VIEW`, `DROP VIEW`, and their expansion.
//!
//! A view is stored as its query's SQL text with its column names. Before a
//! statement is planned, every table reference that names a view is replaced
//! by the view's query as a derived table under the view's name and column
//! names (recursively, for views over views), as PostgreSQL's rewriter does.
//! The tables a view reads cannot be dropped while it exists (2BP01); a
//! table renamed is renamed in the views that read it.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, ObjectName, Statement, TableAlias, TableAliasColumnDef, TableFactor, VisitMut, VisitorMut,
};

use tempora_catalog::{CatalogState, DEFAULT_SCHEMA, ViewDef};

use tempora_types::PgType;

use crate::names::{ident, table_name};
use crate::session::{Output, Session, parse};
use crate::{Error, Result};

/// Views expanded in one statement at most: deeper means a view reads itself.
const MAX_EXPANSIONS: usize = 256;

fn command(tag: &str) -> Output {
    Output::Command {
        tag: tag.to_owned(),
    }
}

/// The view a table reference names, if any (unqualified or in `public`).
fn view_named<'a>(state: &'a CatalogState, name: &ObjectName) -> Option<&'a ViewDef> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ast::ObjectNamePart::Identifier(i) => ident(i),
            other => other.to_string(),
        })
        .collect();
    match parts.as_slice() {
        [name] => state.views.get(name),
        [schema, name] if schema == DEFAULT_SCHEMA => state.views.get(name),
        _ => None,
    }
}

struct Expander<'a> {
    state: &'a CatalogState,
    expansions: usize,
    error: Option<Error>,
}

impl VisitorMut for Expander<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name, alias, args, ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        if args.is_some() {
            return ControlFlow::Continue(());
        }
        let Some(view) = view_named(self.state, name) else {
            return ControlFlow::Continue(());
        };
        self.expansions += 1;
        if self.expansions > MAX_EXPANSIONS {
            self.error = Some(Error::InvalidObjectDefinition {
                message: format!(
                    "infinite recursion detected in rules for relation \"{}\"",
                    view.name
                ),
            });
            return ControlFlow::Break(());
        }
        let query = match parse(&view.query).map(|mut s| s.pop()) {
            Ok(Some(Statement::Query(query))) => query,
            Ok(_) => {
                self.error = Some(Error::not_supported(format!(
                    "the stored query of view \"{}\"",
                    view.name
                )));
                return ControlFlow::Break(());
            }
            Err(error) => {
                self.error = Some(error);
                return ControlFlow::Break(());
            }
        };
        // The reference's alias, or the view's name; the view's column names
        // unless the alias gives its own.
        let mut alias = alias.clone().unwrap_or(TableAlias {
            explicit: true,
            name: ast::Ident::with_quote('"', view.name.clone()),
            columns: Vec::new(),
            at: None,
        });
        let given = alias.columns.len();
        alias.columns.extend(
            view.columns
                .iter()
                .skip(given)
                .map(|c| TableAliasColumnDef {
                    name: ast::Ident::with_quote('"', c.clone()),
                    data_type: None,
                }),
        );
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: query,
            alias: Some(alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}

/// Replaces references to views in `statement` by their queries.
pub(crate) fn expand(state: &CatalogState, statement: &Statement) -> Result<Option<Statement>> {
    if state.views.is_empty() {
        return Ok(None);
    }
    let mut expanded = statement.clone();
    let mut expander = Expander {
        state,
        expansions: 0,
        error: None,
    };
    let _ = expanded.visit(&mut expander);
    if let Some(error) = expander.error {
        return Err(error);
    }
    Ok((expander.expansions > 0).then_some(expanded))
}

/// The tables and views a query reads, by name.
fn relations_read(state: &CatalogState, query: &ast::Query) -> Vec<String> {
    let mut names = Vec::new();
    let _ = ast::visit_relations(query, |name| {
        if let Ok(name) = table_name(name)
            && (state.table_by_name(&name).is_some() || state.views.contains_key(&name))
            && !names.contains(&name)
        {
            names.push(name);
        }
        ControlFlow::<()>::Continue(())
    });
    names
}

pub(crate) async fn create_view(session: &mut Session, create: &ast::CreateView) -> Result<Output> {
    if create.materialized {
        return Err(Error::Unsupported {
            message: "materialized views are not supported yet; continuous aggregates \
                      (CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous)) arrive with \
                      tempora's aggregate maintenance"
                .to_owned(),
        });
    }
    let name = table_name(&create.name)?;
    let query = Statement::Query(create.query.clone());
    // Planning checks the query (missing tables, columns, types) now.
    let plan = session.plan(&query).await?;
    let schema = crate::session::postgres_names(&query, plan.schema().as_arrow());
    let mut columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let column_types = schema
        .fields()
        .iter()
        .map(|f| PgType::of_field(f).unwrap_or(PgType::Text))
        .collect();
    if create.columns.len() > columns.len() {
        return Err(Error::Syntax {
            message: "CREATE VIEW specifies more column names than columns".to_owned(),
        });
    }
    for (column, given) in columns.iter_mut().zip(&create.columns) {
        *column = ident(&given.name);
    }
    for (index, column) in columns.iter().enumerate() {
        if columns[..index].contains(column) {
            return Err(Error::DuplicateColumn {
                name: column.clone(),
            });
        }
    }
    let catalog = session.engine().store().catalog().clone();
    let state = catalog.snapshot();
    let depends_on = relations_read(&state, &create.query);
    let view = ViewDef {
        name: name.clone(),
        query: create.query.to_string(),
        columns,
        depends_on,
        column_types,
    };
    match state.views.get(&name) {
        Some(_) if create.if_not_exists => {
            session.notice(format!("relation \"{name}\" already exists, skipping"));
            return Ok(command("CREATE VIEW"));
        }
        Some(old) if create.or_replace && !view.columns.starts_with(&old.columns) => {
            return Err(Error::InvalidTableDefinition {
                message: "cannot drop columns from view".to_owned(),
            });
        }
        Some(_) if create.or_replace => {}
        Some(_) => return Err(Error::DuplicateTable { name }),
        None if state.relation_exists(&name) => {
            return Err(Error::DuplicateTable { name });
        }
        None => {}
    }
    session.catalog_transact(|txn| {
        txn.put_view(view);
        Ok(())
    })?;
    Ok(command("CREATE VIEW"))
}

pub(crate) fn drop_views(
    session: &mut Session,
    if_exists: bool,
    cascade: bool,
    names: &[ObjectName],
) -> Result<Output> {
    let catalog = session.engine().store().catalog().clone();
    let state = catalog.snapshot();
    let mut dropped: Vec<String> = Vec::new();
    for name in names {
        let name = table_name(name)?;
        if !state.views.contains_key(&name) {
            if state.table_by_name(&name).is_some() {
                return Err(Error::WrongObjectType {
                    message: format!("\"{name}\" is not a view"),
                });
            }
            if if_exists {
                session.notice(format!("view \"{name}\" does not exist, skipping"));
                continue;
            }
            return Err(Error::UndefinedTable { name });
        }
        dropped.push(name);
    }
    // Views over the dropped ones go with them under CASCADE, else block it.
    let mut index = 0;
    while index < dropped.len() {
        for dependent in state.views_depending_on(&dropped[index]) {
            if dropped.contains(&dependent.name) {
                continue;
            }
            if !cascade {
                return Err(Error::DependentObjects {
                    message: format!(
                        "cannot drop view {} because other objects depend on it",
                        dropped[index]
                    ),
                    detail: format!("view {} depends on view {}", dependent.name, dropped[index]),
                });
            }
            session.notice(format!("drop cascades to view {}", dependent.name));
            dropped.push(dependent.name.clone());
        }
        index += 1;
    }
    session.catalog_transact(|txn| {
        for name in &dropped {
            txn.drop_view(name);
        }
        Ok(())
    })?;
    Ok(command("DROP VIEW"))
}

/// Refuses to drop a table views read (2BP01).
pub(crate) fn check_no_dependent_views(state: &CatalogState, table: &str) -> Result<()> {
    match state.views_depending_on(table).first() {
        Some(view) => Err(Error::DependentObjects {
            message: format!("cannot drop table {table} because other objects depend on it"),
            detail: format!("view {} depends on table {table}", view.name),
        }),
        None => Ok(()),
    }
}

/// Refuses a column change to a table views read: their stored queries
/// name its columns.
pub(crate) fn check_columns_unused(state: &CatalogState, table: &str, action: &str) -> Result<()> {
    match state.views_depending_on(table).first() {
        Some(view) => Err(Error::Unsupported {
            message: format!(
                "cannot {action} of table \"{table}\" while view \"{}\" reads it: drop the view, alter the table, then create the view again",
                view.name
            ),
        }),
        None => Ok(()),
    }
}

/// The views that read `old`, with their queries reading `new` instead.
pub(crate) fn renamed_in_views(state: &CatalogState, old: &str, new: &str) -> Result<Vec<ViewDef>> {
    let mut changed = Vec::new();
    for view in state.views_depending_on(old) {
        let Some(Statement::Query(mut query)) = parse(&view.query)?.pop() else {
            continue;
        };
        let _ = ast::visit_relations_mut(query.as_mut(), |name| {
            if table_name(name).is_ok_and(|n| n == old) {
                *name = ObjectName::from(vec![ast::Ident::with_quote('"', new.to_owned())]);
            }
            ControlFlow::<()>::Continue(())
        });
        let mut view = view.clone();
        view.query = query.to_string();
        for dependency in &mut view.depends_on {
            if dependency == old {
                *dependency = new.to_owned();
            }
        }
        changed.push(view);
    }
    Ok(changed)
}
