//! Rewrites of the parsed statement where PostgreSQL and DataFusion name
//! things differently, applied just before DataFusion plans a statement.
//!
//! - Two select items of one name (`SELECT random(), random()`, `SELECT
//!   id, id::text`, `SELECT 1 AS a, 2 AS a`) are legal in PostgreSQL, but
//!   DataFusion requires unique expression names: later duplicates (by
//!   DataFusion's name, which is the same for every scalar subquery) get a
//!   private alias. The names a client sees come from the original
//!   statement (`postgres_names`). So do casts without an alias in a
//!   SELECT with ORDER BY (`SELECT id::text FROM t ORDER BY t.id`), which
//!   DataFusion names as the column they cast; a bare ORDER BY name that is
//!   such an item's output name (`ORDER BY id`) becomes its position, as it
//!   means that item in PostgreSQL.
//! - A set-returning function in FROM with a table alias and no column list
//!   (`FROM generate_series(1, 3) g`) names its one column after the alias in
//!   PostgreSQL; DataFusion calls it `value`. The alias gets that column.
//! - A VALUES column's bare NULLs take the type of its typed rows
//!   (`VALUES (interval '1 day'), (NULL)`), as PostgreSQL types the column.
//! - `x SIMILAR TO p` is `x ~ similar_to_escape(p)`, and `ts AT TIME ZONE
//!   z` is `timezone(z, ts)`, as in PostgreSQL (DataFusion read `p` as a
//!   regular expression, and kept a timestamptz at a time zone one).
//!
//! And where PostgreSQL has syntax DataFusion lacks, which clients' catalog
//! queries use (psql's `\d`, SQLAlchemy's reflection):
//! - `a OPERATOR(pg_catalog.~) b` is `a ~ b`; `COLLATE` clauses are dropped
//!   (every text compares bytewise); `pg_catalog.f(...)` is `f(...)`.
//! - `x::regclass` (and `regtype`, `regnamespace`, `regproc`) becomes a call
//!   of the conversion functions in `tempora_query::system_functions`: to
//!   the name where the value is shown (a select item, an ORDER BY key, or
//!   cast on to text), else to the OID, which is what comparisons need.
//! - `ARRAY(subquery)` is the `array_agg` of the subquery's column, and
//!   `generate_subscripts(a, 1)` unnests `a`'s subscripts, and
//!   `information_schema._pg_expandarray(a)` its `(x, n)` records. `ARRAY(SELECT
//!   f(x) FROM unnest(a) x [WHERE p(x)])`, a map over an array, is
//!   `array_transform(array_filter(a, x -> p(x)), x -> f(x))`.
//! - A query that reads (as an inner join) a catalog that tempora keeps
//!   empty (`pg_policy`, `pg_trigger` ...) returns no rows, so the
//!   subqueries of its select list never run: they become NULL, as some of
//!   them (psql's policy listing) correlate in ways DataFusion cannot plan.
//! - A correlated scalar subquery that does not aggregate (`(SELECT
//!   d.adbin FROM pg_attrdef d WHERE d.adrelid = a.attrelid)`) takes `max`
//!   of its item: DataFusion plans only aggregating ones, and turns those
//!   with equality correlations into joins (the others run per outer row,
//!   see `tempora_query::correlated`). Where PostgreSQL would fail because
//!   such a subquery found two rows (21000), tempora answers with the
//!   largest.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, ObjectName, ObjectNamePart, Query, SelectItem,
    SetExpr, Statement, TableAliasColumnDef, TableFactor, VisitMut, VisitorMut,
};

use tempora_query::system_functions as sys;
use tempora_query::types::pg_type_of_sql;
use tempora_types::PgType;

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
        for_each_select(query.body.as_mut(), &mut |select| {
            if !reads_empty_catalog(select) {
                return;
            }
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item
                {
                    let _ = ast::visit_expressions_mut(expr, |e| {
                        let subquery = match e {
                            Expr::Subquery(_) => true,
                            Expr::Function(f) => matches!(f.args, FunctionArguments::Subquery(_)),
                            _ => false,
                        };
                        if subquery {
                            *e = Expr::value(ast::Value::Null);
                        }
                        ControlFlow::<()>::Continue(())
                    });
                }
            }
        });
        // Values shown to the client: a `::regclass` there prints the name.
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                match item {
                    SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                        show_reg_cast(expr)
                    }
                    _ => {}
                }
            }
        }
        if let Some(ast::OrderBy {
            kind: ast::OrderByKind::Expressions(items),
            ..
        }) = &mut query.order_by
        {
            for item in items {
                show_reg_cast(&mut item.expr);
            }
        }
        order_by_casts(query);
        alias_duplicates(query.body.as_mut());
        for_each_select(query.body.as_mut(), &mut series_as_rows);
        if let SetExpr::Values(values) = query.body.as_mut() {
            type_values_columns(values);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        rewrite_postgres_syntax(expr);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            args: Some(_),
            ..
        } = factor
        {
            strip_pg_catalog(name);
        }
        scalar_function_as_table(factor);
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

/// A VALUES column with a typed row (`'{}'::jsonb`, `interval '1 day'`)
/// gets one type, as PostgreSQL resolves it (the rules of UNION and CASE):
/// the typed rows' type if they agree, else the preferred or widest type of
/// their category (`date` and `timestamptz` give `timestamptz`, `int4` and
/// `numeric` give `numeric`, `varchar(3)` and `text` give `text`). Its
/// NULLs, untyped literals and rows of another type are cast to it.
/// DataFusion refuses a list whose rows differ in field metadata, which
/// is where a value's PgType lies: a NULL or a plain literal carries none.
fn type_values_columns(values: &mut ast::Values) {
    let columns = values.rows.first().map_or(0, |row| row.content.len());
    for column in 0..columns {
        let mut typed: Vec<(PgType, DataType)> = values
            .rows
            .iter()
            .filter_map(|row| row.content.get(column).and_then(value_type))
            .collect();
        if typed.is_empty() {
            continue;
        }
        // A number is an integer, bigint or numeric, by its form; it takes
        // part where another row names a type.
        typed.extend(
            values
                .rows
                .iter()
                .filter_map(|row| row.content.get(column).and_then(number_literal))
                .map(number_type),
        );
        let Some(data_type) = resolve_values_type(&typed) else {
            continue;
        };
        let resolved = pg_type_of_sql(&data_type);
        for row in &mut values.rows {
            let Some(value) = row.content.get_mut(column) else {
                continue;
            };
            let cast = match &*value {
                Expr::Value(v) => matches!(
                    v.value,
                    ast::Value::Null | ast::Value::Number(..) | ast::Value::SingleQuotedString(_)
                ),
                other => {
                    number_literal(other).is_some()
                        || value_type(other).is_some_and(|(t, _)| Some(t) != resolved)
                }
            };
            if cast {
                *value = Expr::Cast {
                    kind: ast::CastKind::DoubleColon,
                    expr: Box::new(value.clone()),
                    data_type: data_type.clone(),
                    array: false,
                    format: None,
                };
            }
        }
    }
}

/// The digits of a number literal, signed or not (`5`, `-2.5`).
fn number_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => Some(n),
            _ => None,
        },
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus | ast::UnaryOperator::Plus,
            expr,
        } => number_literal(expr),
        _ => None,
    }
}

/// The type PostgreSQL gives a number literal: integer or bigint when it
/// is a whole number that fits, numeric otherwise.
fn number_type(number: &str) -> (PgType, DataType) {
    if number.parse::<i32>().is_ok() {
        (PgType::Int4, DataType::Integer(None))
    } else if number.parse::<i64>().is_ok() {
        (PgType::Int8, DataType::BigInt(None))
    } else {
        let numeric = PgType::Numeric {
            precision: None,
            scale: None,
        };
        (numeric, DataType::Numeric(ast::ExactNumberInfo::None))
    }
}

/// The type a VALUES row states for itself: a cast, a typed string or an
/// interval literal. Untyped literals and other expressions state none.
fn value_type(value: &Expr) -> Option<(PgType, DataType)> {
    let data_type = match value {
        Expr::Cast { data_type, .. } => data_type.clone(),
        Expr::TypedString(typed) => typed.data_type.clone(),
        Expr::Interval(_) => DataType::Interval {
            fields: None,
            precision: None,
        },
        _ => return None,
    };
    Some((pg_type_of_sql(&data_type)?, data_type))
}

/// The type of a VALUES column whose typed rows are `typed`: None when
/// there are none, or when their types have no common type here (then
/// DataFusion answers as before).
fn resolve_values_type(typed: &[(PgType, DataType)]) -> Option<DataType> {
    let (first, first_sql) = typed.first()?;
    if typed.iter().all(|(t, _)| t == first) {
        return Some(first_sql.clone());
    }
    // Each category's types in the order of their implicit casts, the
    // preferred one last.
    const CATEGORIES: &[&[&str]] = &[
        &["date", "timestamp", "timestamptz"],
        &[
            "smallint",
            "integer",
            "bigint",
            "numeric",
            "real",
            "double precision",
        ],
        &["varchar", "text"],
    ];
    let rank = |pg_type: &PgType| {
        let name = match pg_type {
            PgType::Date => "date",
            PgType::Timestamp => "timestamp",
            PgType::Timestamptz => "timestamptz",
            PgType::Int2 => "smallint",
            PgType::Int4 => "integer",
            PgType::Int8 => "bigint",
            PgType::Numeric { .. } => "numeric",
            PgType::Float4 => "real",
            PgType::Float8 => "double precision",
            PgType::Varchar { .. } => "varchar",
            PgType::Text => "text",
            _ => return None,
        };
        CATEGORIES.iter().enumerate().find_map(|(category, names)| {
            names
                .iter()
                .position(|n| *n == name)
                .map(|position| (category, position))
        })
    };
    let ranks = typed
        .iter()
        .map(|(t, _)| rank(t))
        .collect::<Option<Vec<_>>>()?;
    let category = ranks[0].0;
    if ranks.iter().any(|(c, _)| *c != category) {
        return None;
    }
    let widest = ranks.iter().map(|(_, position)| *position).max()?;
    let name = CATEGORIES[category][widest];
    Some(match name {
        "date" => DataType::Date,
        "timestamp" => DataType::Timestamp(None, ast::TimezoneInfo::None),
        "timestamptz" => DataType::Timestamp(None, ast::TimezoneInfo::WithTimeZone),
        "smallint" => DataType::SmallInt(None),
        "integer" => DataType::Integer(None),
        "bigint" => DataType::BigInt(None),
        "numeric" => DataType::Numeric(ast::ExactNumberInfo::None),
        "real" => DataType::Real,
        "double precision" => DataType::DoublePrecision,
        "varchar" => DataType::Varchar(None),
        _ => DataType::Text,
    })
}

/// Functions DataFusion runs in FROM itself.
const TABLE_FUNCTIONS: &[&str] = &["generate_series", "unnest", "range"];

/// A scalar function in FROM (`FROM string_to_array(x, ',') s`), which
/// PostgreSQL reads as a one-row table, as the derived table `(SELECT f(...)
/// AS s) s`: DataFusion runs only table functions there.
fn scalar_function_as_table(factor: &mut TableFactor) {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        ..
    } = factor
    else {
        return;
    };
    let function = name.to_string().to_ascii_lowercase();
    if TABLE_FUNCTIONS.contains(&function.as_str()) || function.contains('.') {
        return;
    }
    let Some(alias) = alias.clone() else {
        return;
    };
    let column = match alias.columns.as_slice() {
        [column] => column.name.clone(),
        [] => alias.name.clone(),
        _ => return,
    };
    let arguments: Vec<String> = args.args.iter().map(ToString::to_string).collect();
    let sql = format!("SELECT {name}({}) AS {column}", arguments.join(", "));
    let Some(Statement::Query(subquery)) =
        crate::session::parse(&sql).ok().and_then(|mut s| s.pop())
    else {
        return;
    };
    *factor = TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(ast::TableAlias {
            columns: Vec::new(),
            ..alias
        }),
        sample: None,
    };
}

/// Calls `f` on every SELECT of a query body (both sides of a UNION).
fn for_each_select(body: &mut SetExpr, f: &mut impl FnMut(&mut ast::Select)) {
    match body {
        SetExpr::Select(select) => f(select),
        SetExpr::SetOperation { left, right, .. } => {
            for_each_select(left, f);
            for_each_select(right, f);
        }
        SetExpr::Query(query) => for_each_select(query.body.as_mut(), f),
        _ => {}
    }
}

/// Set-returning functions that return a list per call, unnested in a
/// select list: DataFusion's scalar `generate_series`, and tempora's jsonb
/// element functions.
const SET_RETURNING_LISTS: &[&str] = &[
    "generate_series",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_object_keys",
    "json_object_keys",
];

/// `SELECT generate_series(1, 3)` returns three rows in PostgreSQL, a
/// set-returning function in the select list; DataFusion's scalar
/// `generate_series` returns one list. A select item that is such a call
/// is unnested into rows, named after the function as PostgreSQL names it.
/// Several in one list run side by side, the shorter padded with NULLs,
/// as since PostgreSQL 10.
fn series_as_rows(select: &mut ast::Select) {
    for item in &mut select.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(expr) => (expr, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
            _ => continue,
        };
        let Expr::Function(function) = expr else {
            continue;
        };
        let name = function.name.to_string().to_ascii_lowercase();
        let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
        if !SET_RETURNING_LISTS.contains(&name) {
            continue;
        }
        let name = Ident::new(name);
        let unnest = Expr::Function(Function {
            name: ObjectName::from(vec![Ident::new("unnest")]),
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(expr.clone()))],
                clauses: Vec::new(),
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: Vec::new(),
        });
        *item = SelectItem::ExprWithAlias {
            expr: unnest,
            alias: alias.unwrap_or(name),
        };
    }
}

/// Catalogs of features tempora does not have, which are always empty.
const EMPTY_CATALOGS: &[&str] = &[
    "pg_policy",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_trigger",
    "pg_rewrite",
];

/// Whether a FROM item that every result row must come from (the first
/// relation, or one joined by an inner or cross join) is an empty catalog.
fn reads_empty_catalog(select: &ast::Select) -> bool {
    let empty = |factor: &TableFactor| match factor {
        TableFactor::Table {
            name, args: None, ..
        } => {
            let parts: Vec<String> = name
                .0
                .iter()
                .filter_map(ObjectNamePart::as_ident)
                .map(|i| i.value.to_ascii_lowercase())
                .collect();
            match parts.as_slice() {
                [table] | [_, table] => {
                    (parts.len() == 1 || parts[0] == "pg_catalog")
                        && EMPTY_CATALOGS.contains(&table.as_str())
                }
                _ => false,
            }
        }
        _ => false,
    };
    select.from.iter().any(|table| {
        empty(&table.relation)
            || table.joins.iter().any(|join| {
                matches!(
                    join.join_operator,
                    ast::JoinOperator::Join(_)
                        | ast::JoinOperator::Inner(_)
                        | ast::JoinOperator::CrossJoin(_)
                ) && empty(&join.relation)
            })
    })
}

/// The `reg*` type a cast is to (`regclass`, `pg_catalog.regtype` ...).
fn reg_kind(data_type: &DataType) -> Option<&'static str> {
    let name = match data_type {
        DataType::Regclass => return Some("regclass"),
        DataType::Custom(name, modifiers) if modifiers.is_empty() => name
            .0
            .last()
            .and_then(ObjectNamePart::as_ident)
            .map(|i| i.value.to_ascii_lowercase())?,
        _ => return None,
    };
    [
        "regclass",
        "regtype",
        "regnamespace",
        "regproc",
        "regprocedure",
    ]
    .into_iter()
    .find(|kind| *kind == name)
}

fn is_text_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Text | DataType::Varchar(_) | DataType::CharacterVarying(_) => true,
        DataType::Custom(name, _) => name
            .0
            .last()
            .and_then(ObjectNamePart::as_ident)
            .is_some_and(|i| {
                matches!(
                    i.value.to_ascii_lowercase().as_str(),
                    "text" | "name" | "varchar"
                )
            }),
        _ => false,
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// The function turning a value into a `reg*` type's OID or shown name.
fn reg_function(kind: &str, shown: bool) -> Option<&'static str> {
    Some(match (kind, shown) {
        ("regclass", false) => sys::REGCLASS_OID,
        ("regclass", true) => sys::REGCLASS_NAME,
        ("regtype", false) => sys::REGTYPE_OID,
        ("regtype", true) => sys::REGTYPE_NAME,
        ("regnamespace", false) => sys::REGNAMESPACE_OID,
        ("regnamespace", true) => sys::REGNAMESPACE_NAME,
        ("regproc" | "regprocedure", true) => sys::REGPROC_NAME,
        _ => return None,
    })
}

/// A `::regclass` (or other `reg*`) cast whose value is shown: its name.
fn show_reg_cast(expr: &mut Expr) {
    if let Expr::Cast {
        expr: inner,
        data_type,
        ..
    } = expr
        && let Some(function) = reg_kind(data_type).and_then(|k| reg_function(k, true))
    {
        *expr = call(function, vec![(**inner).clone()]);
    }
}

/// The binary operator `OPERATOR(schema.op)` names.
fn named_operator(parts: &[String]) -> Option<BinaryOperator> {
    Some(match parts.last()?.as_str() {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "~~*" => BinaryOperator::PGILikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "!~~*" => BinaryOperator::PGNotILikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "||" => BinaryOperator::StringConcat,
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        "*" => BinaryOperator::Multiply,
        "/" => BinaryOperator::Divide,
        "%" => BinaryOperator::Modulo,
        _ => return None,
    })
}

/// Rewrites one expression node (before its children are visited).
fn rewrite_postgres_syntax(expr: &mut Expr) {
    loop {
        match expr {
            Expr::Collate { expr: inner, .. } => *expr = (**inner).clone(),
            Expr::BinaryOp {
                op: BinaryOperator::PGCustomBinaryOperator(parts),
                ..
            } => {
                let Some(op) = named_operator(parts) else {
                    return;
                };
                if let Expr::BinaryOp { op: current, .. } = expr {
                    *current = op;
                }
            }
            // `ts AT TIME ZONE z`: `timezone(z, ts)`, as in PostgreSQL (see
            // `tempora_query::time_zones`).
            Expr::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                *expr = call(
                    "timezone",
                    vec![(**time_zone).clone(), (**timestamp).clone()],
                );
                return;
            }
            // `x SIMILAR TO p [ESCAPE e]`: `x ~ similar_to_escape(p [, e])`,
            // as PostgreSQL plans it (see `tempora_query::text_patterns`).
            Expr::SimilarTo {
                negated,
                expr: text,
                pattern,
                escape_char,
            } => {
                let mut args = vec![(**pattern).clone()];
                if let Some(escape) = escape_char {
                    args.push(Expr::Value(escape.clone()));
                }
                *expr = Expr::BinaryOp {
                    left: text.clone(),
                    op: if *negated {
                        BinaryOperator::PGRegexNotMatch
                    } else {
                        BinaryOperator::PGRegexMatch
                    },
                    right: Box::new(call("similar_to_escape", args)),
                };
                return;
            }
            // `(record).field`: the field of a composite value.
            Expr::CompoundFieldAccess { root, access_chain }
                if matches!(
                    access_chain.as_slice(),
                    [ast::AccessExpr::Dot(Expr::Identifier(_))]
                ) =>
            {
                let [ast::AccessExpr::Dot(Expr::Identifier(field))] = access_chain.as_slice()
                else {
                    return;
                };
                let name = Expr::value(ast::Value::SingleQuotedString(crate::names::ident(field)));
                *expr = call("get_field", vec![(**root).clone(), name]);
            }
            // `interval '1 day 02:03'`: read by PostgreSQL's interval input
            // (as a cast of the text is), not DataFusion's.
            Expr::Interval(interval)
                if interval.leading_field.is_none()
                    && interval.last_field.is_none()
                    && matches!(interval.value.as_ref(), Expr::Value(v)
                        if matches!(v.value, ast::Value::SingleQuotedString(_))) =>
            {
                *expr = Expr::Cast {
                    kind: ast::CastKind::DoubleColon,
                    expr: interval.value.clone(),
                    data_type: DataType::Interval {
                        fields: None,
                        precision: None,
                    },
                    array: false,
                    format: None,
                };
                return;
            }
            // `polroles = '{0}'`: an array constant compared with an array.
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq | BinaryOperator::NotEq,
                right,
            } if array_literal(right).is_some() || array_literal(left).is_some() => {
                for side in [left, right] {
                    if let Some(array) = array_literal(side) {
                        **side = array;
                    }
                }
                return;
            }
            // `x::regclass::text`: the name.
            Expr::Cast {
                expr: inner,
                data_type,
                ..
            } if is_text_type(data_type)
                && matches!(inner.as_ref(), Expr::Cast { data_type, .. } if reg_kind(data_type).is_some()) =>
            {
                show_reg_cast(inner);
                *expr = (**inner).clone();
            }
            // `x::regclass` anywhere else: the OID.
            Expr::Cast {
                expr: inner,
                data_type,
                ..
            } if reg_kind(data_type).is_some() => {
                let kind = reg_kind(data_type).unwrap_or_default();
                match reg_function(kind, false) {
                    Some(function) => *expr = call(function, vec![(**inner).clone()]),
                    // A procedure's OID: the value itself, as an oid.
                    None => {
                        *data_type =
                            DataType::Custom(ObjectName::from(vec![Ident::new("oid")]), Vec::new())
                    }
                }
                return;
            }
            Expr::Subquery(query) => {
                aggregate_correlated(query);
                return;
            }
            Expr::Function(function) => {
                strip_pg_catalog(&mut function.name);
                let name = function.name.to_string().to_ascii_lowercase();
                match (&function.args, name.as_str()) {
                    (FunctionArguments::Subquery(query), "array") => {
                        *expr = array_of_subquery(query);
                    }
                    (
                        FunctionArguments::List(list),
                        "information_schema._pg_expandarray" | "_pg_expandarray",
                    ) if list.args.len() == 1 => {
                        let FunctionArg::Unnamed(FunctionArgExpr::Expr(array)) =
                            list.args[0].clone()
                        else {
                            return;
                        };
                        *expr = call("unnest", vec![call(sys::EXPAND_ARRAY, vec![array])]);
                    }
                    (FunctionArguments::List(list), "generate_subscripts")
                        if !list.args.is_empty() =>
                    {
                        let array = list.args[0].clone();
                        let FunctionArg::Unnamed(FunctionArgExpr::Expr(array)) = array else {
                            return;
                        };
                        *expr = call("unnest", vec![call(sys::SUBSCRIPTS, vec![array])]);
                    }
                    _ => {}
                }
                return;
            }
            _ => return,
        }
    }
}

/// Aggregate functions, by name: a subquery whose item calls one already
/// returns one row.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "first_value",
    "last_value",
    "first",
    "last",
    "histogram",
    "json_agg",
    "jsonb_agg",
    "percentile_cont",
    "stddev",
    "variance",
];

fn calls_aggregate(expr: &Expr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(expr, |e| {
        if let Expr::Function(f) = e
            && f.over.is_none()
            && f.name
                .0
                .last()
                .and_then(ObjectNamePart::as_ident)
                .is_some_and(|i| AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str()))
        {
            found = true;
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// The names a query's FROM clause binds (aliases, or table names).
fn bound_names(select: &ast::Select) -> HashSet<String> {
    let mut names = HashSet::new();
    let mut add = |factor: &TableFactor| match factor {
        TableFactor::Table { name, alias, .. } => {
            if let Some(alias) = alias {
                names.insert(alias.name.value.to_ascii_lowercase());
            } else if let Some(last) = name.0.last().and_then(ObjectNamePart::as_ident) {
                names.insert(last.value.to_ascii_lowercase());
            }
        }
        TableFactor::Derived {
            alias: Some(alias), ..
        }
        | TableFactor::TableFunction {
            alias: Some(alias), ..
        }
        | TableFactor::UNNEST {
            alias: Some(alias), ..
        } => {
            names.insert(alias.name.value.to_ascii_lowercase());
        }
        _ => {}
    };
    for table in &select.from {
        add(&table.relation);
        for join in &table.joins {
            add(&join.relation);
        }
    }
    names
}

/// Whether the select names a qualifier its own FROM does not bind.
fn is_correlated(select: &ast::Select) -> bool {
    let bound = bound_names(select);
    let mut correlated = false;
    let mut check = |expr: &Expr| {
        if let Expr::CompoundIdentifier(parts) = expr
            && parts.len() >= 2
            && !bound.contains(&parts[parts.len() - 2].value.to_ascii_lowercase())
        {
            correlated = true;
        }
        ControlFlow::<()>::Continue(())
    };
    for item in &select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            let _ = ast::visit_expressions(e, &mut check);
        }
    }
    if let Some(selection) = &select.selection {
        let _ = ast::visit_expressions(selection, &mut check);
    }
    correlated
}

/// Wraps the item of a correlated, non-aggregating scalar subquery in
/// `max`.
fn aggregate_correlated(query: &mut Query) {
    if query.order_by.is_some() || query.limit_clause.is_some() || query.with.is_some() {
        return;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let plain = select.distinct.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    if !plain || select.projection.len() != 1 || !is_correlated(select) {
        return;
    }
    let bound = bound_names(select);
    let (SelectItem::UnnamedExpr(item) | SelectItem::ExprWithAlias { expr: item, .. }) =
        &mut select.projection[0]
    else {
        return;
    };
    // An item that reads the outer row runs per outer row (see
    // `tempora_query::correlated`), where one row's value needs no max.
    let item_reads_outside = {
        let mut outside = false;
        let _ = ast::visit_expressions(&*item, |e| {
            if let Expr::CompoundIdentifier(parts) = e
                && parts.len() >= 2
                && !bound.contains(&parts[parts.len() - 2].value.to_ascii_lowercase())
            {
                outside = true;
            }
            ControlFlow::<()>::Continue(())
        });
        outside
    };
    if !calls_aggregate(item) && !item_reads_outside {
        *item = call("max", vec![item.clone()]);
    }
}

/// `'{1,2}'` as `make_array(1, 2)` (`'{a,b}'` as `make_array('a', 'b')`).
fn array_literal(expr: &Expr) -> Option<Expr> {
    let Expr::Value(value) = expr else {
        return None;
    };
    let ast::Value::SingleQuotedString(text) = &value.value else {
        return None;
    };
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    if inner.contains(['"', '{', '\\']) {
        return None;
    }
    let elements: Vec<Expr> = inner
        .split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let e = e.trim();
            if e.parse::<i64>().is_ok() {
                Expr::value(ast::Value::Number(e.to_owned(), false))
            } else {
                Expr::value(ast::Value::SingleQuotedString(e.to_owned()))
            }
        })
        .collect();
    Some(call("make_array", elements))
}

fn strip_pg_catalog(name: &mut ObjectName) {
    if name.0.len() == 2
        && name.0[0]
            .as_ident()
            .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
    {
        name.0.remove(0);
    }
}

fn lambda(parameter: &Ident, body: Expr) -> Expr {
    Expr::Lambda(ast::LambdaFunction {
        params: ast::OneOrManyWithParens::One(ast::LambdaFunctionParameter {
            name: parameter.clone(),
            data_type: None,
        }),
        body: Box::new(body),
        syntax: ast::LambdaSyntax::Arrow,
    })
}

/// `SELECT f(x) FROM unnest(a) x [WHERE p(x)]` as a map over `a`.
fn array_map(query: &Query) -> Option<Expr> {
    if query.order_by.is_some() || query.limit_clause.is_some() || query.with.is_some() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let [from] = select.from.as_slice() else {
        return None;
    };
    let [SelectItem::UnnamedExpr(item) | SelectItem::ExprWithAlias { expr: item, .. }] =
        select.projection.as_slice()
    else {
        return None;
    };
    let TableFactor::Table {
        name,
        args: Some(args),
        alias: Some(alias),
        ..
    } = &from.relation
    else {
        return None;
    };
    let is_unnest = name
        .0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .is_some_and(|i| i.value.eq_ignore_ascii_case("unnest"));
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] = args.args.as_slice() else {
        return None;
    };
    if !is_unnest
        || !from.joins.is_empty()
        || select.group_by != ast::GroupByExpr::Expressions(Vec::new(), Vec::new())
    {
        return None;
    }
    let parameter = match alias.columns.as_slice() {
        [column] => column.name.clone(),
        [] => alias.name.clone(),
        _ => return None,
    };
    let filtered = match &select.selection {
        Some(condition) => call_with_lambda(
            "array_filter",
            array.clone(),
            lambda(&parameter, condition.clone()),
        ),
        None => array.clone(),
    };
    Some(call_with_lambda(
        "array_transform",
        filtered,
        lambda(&parameter, item.clone()),
    ))
}

fn call_with_lambda(name: &str, array: Expr, function: Expr) -> Expr {
    call(name, vec![array, function])
}

/// `ARRAY(subquery)`: a map over an array (see [`array_map`]), else
/// `(SELECT array_agg(v) FROM (subquery) AS a(v))`.
fn array_of_subquery(query: &Query) -> Expr {
    if let Some(map) = array_map(query) {
        return map;
    }
    let sql = format!(
        "SELECT array_agg(__tempora_value) FROM ({query}) AS __tempora_array(__tempora_value)"
    );
    match crate::session::parse(&sql).ok().and_then(|mut s| s.pop()) {
        Some(Statement::Query(rewritten)) => Expr::Subquery(rewritten),
        _ => Expr::Subquery(Box::new(query.clone())),
    }
}

/// What DataFusion names a select item, as far as duplicates go: its
/// alias; a column's name, qualified or not; a cast is named by what it
/// casts (`id::text` is `id`, `(-10)::numeric / 3` is `-10 / 3`); every
/// scalar subquery is `(<subquery>)`; else the item's text.
fn datafusion_name(item: &SelectItem) -> Option<String> {
    fn of_expr(expr: &Expr) -> String {
        match expr {
            Expr::Subquery(_) => "(<subquery>)".to_owned(),
            Expr::Identifier(ident) => crate::names::ident(ident),
            Expr::CompoundIdentifier(parts) => {
                parts.last().map(crate::names::ident).unwrap_or_default()
            }
            Expr::Cast { expr, .. } | Expr::Nested(expr) => of_expr(expr),
            // DataFusion's name of any expression leaves out its casts.
            other => {
                let mut bare = other.clone();
                let _ = ast::visit_expressions_mut(&mut bare, |e| {
                    while let Expr::Cast { expr: inner, .. } | Expr::Nested(inner) = e {
                        *e = (**inner).clone();
                    }
                    ControlFlow::<()>::Continue(())
                });
                bare.to_string()
            }
        }
    }
    match item {
        SelectItem::UnnamedExpr(expr) => Some(of_expr(expr)),
        SelectItem::ExprWithAlias { alias, .. } => Some(crate::names::ident(alias)),
        _ => None,
    }
}

/// A SELECT with ORDER BY whose items cast a value without an alias
/// (`SELECT id::text FROM t ORDER BY id`): DataFusion names the cast as
/// the column it casts, which collides with that column when sorting adds
/// it to the projection. A bare name in ORDER BY that is such an item's
/// output name means that item, as in PostgreSQL, and becomes its position;
/// then the casts get private aliases.
fn order_by_casts(query: &mut ast::Query) {
    let (
        SetExpr::Select(select),
        Some(ast::OrderBy {
            kind: ast::OrderByKind::Expressions(keys),
            ..
        }),
    ) = (query.body.as_mut(), &mut query.order_by)
    else {
        return;
    };
    let is_cast = |item: &SelectItem| {
        matches!(
            item,
            SelectItem::UnnamedExpr(Expr::Cast { .. } | Expr::Nested(_))
        )
    };
    if !select.projection.iter().any(is_cast) {
        return;
    }
    let output_names: Vec<Option<String>> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(expr) => Some(crate::session::expression_name(expr)),
            SelectItem::ExprWithAlias { alias, .. } => Some(crate::names::ident(alias)),
            _ => None,
        })
        .collect();
    for key in keys.iter_mut() {
        let Expr::Identifier(ident) = &key.expr else {
            continue;
        };
        let name = crate::names::ident(ident);
        let mut named = output_names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.as_deref() == Some(name.as_str()));
        if let (Some((position, _)), None) = (named.next(), named.next())
            && is_cast(&select.projection[position])
        {
            key.expr = Expr::value(ast::Value::Number((position + 1).to_string(), false));
        }
    }
    for (index, item) in select.projection.iter_mut().enumerate() {
        if is_cast(item)
            && let SelectItem::UnnamedExpr(expr) = item
        {
            *item = SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias: Ident::new(format!("{DUPLICATE_ALIAS}{index}")),
            };
        }
    }
}

/// Gives later select items that DataFusion would name as an earlier one
/// a private alias: PostgreSQL allows two output columns of one name
/// (`SELECT id, id::text`, `SELECT 1 AS a, 2 AS a`), DataFusion does not.
fn alias_duplicates(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            let mut seen = HashSet::new();
            for (index, item) in select.projection.iter_mut().enumerate() {
                let Some(name) = datafusion_name(item) else {
                    continue;
                };
                if seen.insert(name) {
                    continue;
                }
                let expr = match item {
                    SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                        expr.clone()
                    }
                    _ => continue,
                };
                *item = SelectItem::ExprWithAlias {
                    expr,
                    alias: Ident::new(format!("{DUPLICATE_ALIAS}{index}")),
                };
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
            rewritten("SELECT random(), random(), 1 AS a, 2 AS a"),
            "SELECT random(), random() AS __tempora_item_1, 1 AS a, 2 AS __tempora_item_3"
        );
        assert_eq!(
            rewritten("SELECT id, t.id::text, (id) FROM t"),
            "SELECT id, t.id::TEXT AS __tempora_item_1, (id) AS __tempora_item_2 FROM t"
        );
        assert_eq!(
            rewritten("SELECT -10 / 3, (-10)::numeric / 3 FROM t"),
            "SELECT -10 / 3, (-10)::NUMERIC / 3 AS __tempora_item_1 FROM t"
        );
        assert_eq!(
            rewritten("SELECT id::text, x FROM t ORDER BY id, t.id"),
            "SELECT id::TEXT AS __tempora_item_0, x FROM t ORDER BY 1, t.id"
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
    fn postgres_catalog_syntax_becomes_datafusion_syntax() {
        assert_eq!(
            rewritten(
                "SELECT c.relname FROM pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)"
            ),
            "SELECT c.relname FROM pg_class c WHERE c.relname ~ '^(t)$' AND pg_table_is_visible(c.oid)"
        );
        assert_eq!(
            rewritten(
                "SELECT c.oid::pg_catalog.regclass, x::regtype::text FROM t WHERE classoid = 'pg_class'::regclass ORDER BY c.oid::regclass"
            ),
            "SELECT __tempora_regclass_name(c.oid), __tempora_regtype_name(x) AS __tempora_item_1 FROM t WHERE classoid = __tempora_regclass_oid('pg_class') ORDER BY __tempora_regclass_name(c.oid)"
        );
        assert_eq!(
            rewritten(
                "SELECT (SELECT d.adbin FROM pg_attrdef d WHERE d.adrelid = a.attrelid), (SELECT x FROM t), (SELECT count(*) FROM d WHERE d.k = a.k) FROM pg_attribute a"
            ),
            "SELECT (SELECT max(d.adbin) FROM pg_attrdef d WHERE d.adrelid = a.attrelid), (SELECT x FROM t) AS __tempora_item_1, (SELECT count(*) FROM d WHERE d.k = a.k) AS __tempora_item_2 FROM pg_attribute a"
        );
        assert_eq!(
            rewritten(
                "SELECT array(SELECT rolname FROM pg_roles), generate_subscripts(indkey, 1) FROM pg_index"
            ),
            "SELECT (SELECT array_agg(__tempora_value) FROM (SELECT rolname FROM pg_roles) AS __tempora_array (__tempora_value)), unnest(__tempora_subscripts(indkey)) FROM pg_index"
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
