//! Rewrites of the parsed statement where PostgreSQL and DataFusion name
//! things differently, applied just before DataFusion plans a statement.
//!
//! - Two unaliased select items with the same text (`SELECT random(),
//!   random()`) are legal in PostgreSQL, but DataFusion requires unique
//!   expression names: later duplicates (by DataFusion's name, which is the
//!   same for every scalar subquery) get a private alias. The names a
//!   client sees come from the original statement (`postgres_names`).
//! - A set-returning function in FROM with a table alias and no column list
//!   (`FROM generate_series(1, 3) g`) names its one column after the alias in
//!   PostgreSQL; DataFusion calls it `value`. The alias gets that column.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, Query, SelectItem, SetExpr, Statement, TableAliasColumnDef, TableFactor, VisitMut,
    VisitorMut,
};

/// Prefix of the aliases given to duplicate select items.
const DUPLICATE_ALIAS: &str = "__tempora_item_";

/// Functions in FROM that return one column named after the table alias.
const SCALAR_TABLE_FUNCTIONS: &[&str] = &["generate_series", "unnest", "range"];

pub(crate) fn for_datafusion(statement: &Statement) -> Statement {
    let mut statement = statement.clone();
    let _ = statement.visit(&mut PostgresNaming);
    statement
}

struct PostgresNaming;

impl VisitorMut for PostgresNaming {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        alias_duplicates(query.body.as_mut());
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            args: Some(_),
            alias: Some(alias),
            ..
        } = factor
            && alias.columns.is_empty()
            && let Some(function) = name.0.last().and_then(|part| part.as_ident())
            && SCALAR_TABLE_FUNCTIONS.contains(&function.value.to_ascii_lowercase().as_str())
        {
            alias.columns = vec![TableAliasColumnDef {
                name: alias.name.clone(),
                data_type: None,
            }];
        }
        ControlFlow::Continue(())
    }
}

/// What DataFusion names an unaliased item, as far as duplicates go: its
/// text, except that every scalar subquery is `(<subquery>)`.
fn datafusion_name(expr: &Expr) -> String {
    match expr {
        Expr::Subquery(_) => "(<subquery>)".to_owned(),
        other => other.to_string(),
    }
}

fn alias_duplicates(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            let mut seen = HashSet::new();
            for (index, item) in select.projection.iter_mut().enumerate() {
                if let SelectItem::UnnamedExpr(expr) = item
                    && !seen.insert(datafusion_name(expr))
                {
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias: Ident::new(format!("{DUPLICATE_ALIAS}{index}")),
                    };
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            alias_duplicates(left);
            alias_duplicates(right);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        for_datafusion(&crate::parse(sql).unwrap()[0]).to_string()
    }

    #[test]
    fn duplicate_items_get_private_aliases() {
        assert_eq!(
            rewritten("SELECT random(), random(), 1 AS a, 1 AS a"),
            "SELECT random(), random() AS __tempora_item_1, 1 AS a, 1 AS a"
        );
        assert_eq!(
            rewritten("SELECT * FROM (SELECT x + 1, x + 1 FROM t) s"),
            "SELECT * FROM (SELECT x + 1, x + 1 AS __tempora_item_1 FROM t) s"
        );
        assert_eq!(
            rewritten("SELECT (SELECT 1), (SELECT 2)"),
            "SELECT (SELECT 1), (SELECT 2) AS __tempora_item_1"
        );
    }

    #[test]
    fn scalar_table_functions_name_their_column_after_the_alias() {
        assert_eq!(
            rewritten("SELECT g FROM generate_series(1, 3) g"),
            "SELECT g FROM generate_series(1, 3) g (g)"
        );
        assert_eq!(
            rewritten("SELECT i FROM generate_series(1, 3) AS g(i)"),
            "SELECT i FROM generate_series(1, 3) AS g (i)"
        );
        assert_eq!(rewritten("SELECT * FROM t AS g"), "SELECT * FROM t AS g");
    }
}
