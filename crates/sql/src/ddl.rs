//! CREATE TABLE, CREATE SEQUENCE, DROP TABLE / SEQUENCE, CREATE EXTENSION.

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{self, ColumnOption, ObjectName, ObjectType};

use tempora_catalog::{ColumnDef, SequenceDef, TableDef};
use tempora_query::types::{is_serial, pg_type_of_sql};
use tempora_types::PgType;

use crate::names::{ident, table_name};
use crate::session::{Output, Session};
use crate::{Error, Result};

pub(crate) async fn create_table(
    session: &mut Session,
    create: &ast::CreateTable,
) -> Result<Output> {
    if create.query.is_some() {
        return Err(Error::not_supported("CREATE TABLE ... AS"));
    }
    if create.temporary {
        return Err(Error::not_supported("temporary tables"));
    }
    let name = table_name(&create.name)?;
    let state = session.engine().store().catalog().snapshot();
    if state.relation_exists(&name) {
        if create.if_not_exists {
            session.notice(format!("relation \"{name}\" already exists, skipping"));
            return Ok(Output::Command {
                tag: "CREATE TABLE".to_owned(),
            });
        }
        return Err(Error::DuplicateTable { name });
    }
    if let Some(like) = &create.like {
        return create_table_like(session, create, like, name);
    }
    let mut seen = HashSet::new();
    let mut columns = Vec::with_capacity(create.columns.len());
    // Column constraints, added once every column is known.
    let mut keys: Vec<(Option<ast::Ident>, ast::IndexColumn, bool)> = Vec::new();
    let mut checks: Vec<(Option<ast::Ident>, ast::Expr)> = Vec::new();
    let mut sequences: Vec<SequenceDef> = Vec::new();
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
            identity_always: false,
        };
        let sequence_name = format!("{name}_{column_name}_seq");
        if is_serial(&column.data_type) {
            def.not_null = true;
            def.default_sql = Some(format!("nextval('{sequence_name}')"));
            let (_, type_max) = sequence_type_range(Some(pg_type))?;
            let mut sequence = sequence_def(&sequence_name, 1, type_max, &[])?;
            sequence.owned_by = Some((0, column_name.clone()));
            sequences.push(sequence);
        }
        for option in &column.options {
            match &option.option {
                ColumnOption::NotNull => def.not_null = true,
                ColumnOption::Null => def.not_null = false,
                ColumnOption::Default(expr) => def.default_sql = Some(expr.to_string()),
                ColumnOption::Generated {
                    generated_as:
                        generated_as @ (ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault),
                    sequence_options,
                    generation_expr: None,
                    ..
                } => {
                    // An identity column: a sequence it owns feeds its default.
                    let (type_min, type_max) =
                        sequence_type_range(Some(pg_type)).map_err(|_| {
                            Error::InvalidParameter {
                                message:
                                    "identity column type must be smallint, integer, or bigint"
                                        .to_owned(),
                            }
                        })?;
                    let mut sequence = sequence_def(
                        &sequence_name,
                        type_min,
                        type_max,
                        sequence_options.as_deref().unwrap_or_default(),
                    )?;
                    sequence.owned_by = Some((0, column_name.clone()));
                    sequences.push(sequence);
                    def.not_null = true;
                    def.default_sql = Some(format!("nextval('{sequence_name}')"));
                    def.identity_always = matches!(generated_as, ast::GeneratedAs::Always);
                }
                ColumnOption::PrimaryKey(_) => {
                    keys.push((option.name.clone(), column.name.clone().into(), true));
                }
                ColumnOption::Unique(_) => {
                    keys.push((option.name.clone(), column.name.clone().into(), false));
                }
                ColumnOption::Check(check) => {
                    checks.push((
                        option.name.clone().or(check.name.clone()),
                        (*check.expr).clone(),
                    ));
                }
                ColumnOption::ForeignKey(_) => {
                    return Err(Error::not_supported(
                        "FOREIGN KEY constraints (tempora does not enforce references between tables)",
                    ));
                }
                other => {
                    return Err(Error::not_supported(format!("column option \"{other}\"")));
                }
            }
        }
        columns.push(def);
    }
    if columns.is_empty() {
        return Err(Error::not_supported("tables without columns"));
    }
    let mut table = TableDef {
        id: 0,
        name,
        columns,
        hypertable: None,
        indexes: Vec::new(),
        checks: Vec::new(),
    };
    // PostgreSQL makes the primary key's index first, then the others in
    // the order written.
    keys.sort_by_key(|(_, _, primary)| !primary);
    for (constraint_name, column, primary) in &keys {
        crate::indexes::add_key(
            &state,
            &mut table,
            constraint_name.as_ref(),
            std::slice::from_ref(column),
            *primary,
        )?;
    }
    for (name, expr) in &checks {
        crate::checks::add_check(&mut table, name.as_ref(), expr)?;
    }
    for constraint in &create.constraints {
        crate::indexes::add_constraint(&state, &mut table, constraint)?;
    }
    crate::checks::validate_definition(session, &table).await?;
    store_new_table(session, table, sequences)
}

/// Adds a new plain table with the sequences its columns own, in one
/// catalog transaction.
fn store_new_table(
    session: &Session,
    table: TableDef,
    sequences: Vec<SequenceDef>,
) -> Result<Output> {
    session.catalog_transact(|txn| {
        let id = txn.allocate_id();
        for sequence in &sequences {
            let mut sequence = sequence.clone();
            if let Some((table, _)) = &mut sequence.owned_by {
                *table = id;
            }
            txn.create_sequence(sequence)?;
        }
        txn.create_table(TableDef {
            id,
            ..table.clone()
        })
    })?;
    Ok(Output::Command {
        tag: "CREATE TABLE".to_owned(),
    })
}

/// PostgreSQL's `LIKE source INCLUDING ALL` (and any list of INCLUDING /
/// EXCLUDING options) rewritten to what the parser reads: `INCLUDING
/// DEFAULTS` when defaults are copied, else nothing; with, for each LIKE
/// in order, what else it copies (indexes, keys among them, with ALL or
/// INDEXES; CHECK constraints with ALL or CONSTRAINTS). The other options
/// (comments, statistics, storage...) copy nothing tempora has. None when
/// the statement has no such list.
pub(crate) fn normalize_like_options(sql: &str) -> Option<(String, Vec<LikeCopies>)> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
    // Only CREATE statements are looked at, so other statements (a large
    // INSERT above all) pay nothing for this.
    let start = sql.trim_start();
    if !start
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("CREATE"))
    {
        return None;
    }
    let upper = sql.to_ascii_uppercase();
    if !upper.contains("LIKE") || !(upper.contains("INCLUDING") || upper.contains("EXCLUDING")) {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let keyword = |token: &Token| match token {
        Token::Word(word) if word.quote_style.is_none() => Some(word.keyword),
        _ => None,
    };
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut index = 0;
    let mut changed = false;
    let mut copies_indexes = Vec::new();
    while index < tokens.len() {
        out.push(tokens[index].clone());
        if keyword(&tokens[index]) != Some(Keyword::LIKE) {
            index += 1;
            continue;
        }
        // The source table's name: words and dots.
        index += 1;
        while index < tokens.len()
            && (matches!(tokens[index], Token::Word(_) | Token::Period)
                && !matches!(
                    keyword(&tokens[index]),
                    Some(Keyword::INCLUDING | Keyword::EXCLUDING)
                )
                || matches!(tokens[index], Token::Whitespace(_)))
        {
            out.push(tokens[index].clone());
            index += 1;
        }
        let mut defaults = None;
        let mut copies = LikeCopies::default();
        let mut saw_option = false;
        loop {
            while index < tokens.len() && matches!(tokens[index], Token::Whitespace(_)) {
                index += 1;
            }
            let including = match tokens.get(index).and_then(keyword) {
                Some(Keyword::INCLUDING) => true,
                Some(Keyword::EXCLUDING) => false,
                _ => break,
            };
            index += 1;
            while index < tokens.len() && matches!(tokens[index], Token::Whitespace(_)) {
                index += 1;
            }
            let Some(Token::Word(option)) = tokens.get(index) else {
                return None;
            };
            match option.value.to_ascii_uppercase().as_str() {
                "ALL" => {
                    defaults = Some(including);
                    copies.indexes = including;
                    copies.constraints = including;
                }
                "DEFAULTS" | "IDENTITY" => defaults = Some(including),
                "INDEXES" => copies.indexes = including,
                "CONSTRAINTS" => copies.constraints = including,
                "COMMENTS" | "COMPRESSION" | "GENERATED" | "STATISTICS" | "STORAGE" => {}
                _ => return None,
            }
            saw_option = true;
            index += 1;
        }
        copies_indexes.push(copies);
        if saw_option {
            changed = true;
            let space = || Token::Whitespace(Whitespace::Space);
            if defaults == Some(true) {
                out.extend([
                    space(),
                    Token::make_keyword("INCLUDING"),
                    space(),
                    Token::make_keyword("DEFAULTS"),
                ]);
            }
            out.push(space());
        }
    }
    changed.then(|| {
        (
            out.iter().map(ToString::to_string).collect(),
            copies_indexes,
        )
    })
}

/// What a `LIKE` copies besides columns and defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LikeCopies {
    pub(crate) indexes: bool,
    pub(crate) constraints: bool,
}

/// The table options by which a parsed `CREATE TABLE ... (LIKE ...)` says
/// that its LIKE copies the source's indexes, or its CHECK constraints.
const LIKE_COPIES_INDEXES: &str = "__tempora_like_indexes";
const LIKE_COPIES_CONSTRAINTS: &str = "__tempora_like_constraints";

/// Marks the CREATE TABLE ... LIKE statements by what their LIKE copies,
/// given per LIKE in order by [`normalize_like_options`].
pub(crate) fn mark_like_indexes(statements: &mut [ast::Statement], copies: &[LikeCopies]) {
    let mut copies = copies.iter();
    for statement in statements {
        if let ast::Statement::CreateTable(create) = statement
            && create.like.is_some()
            && let Some(copies) = copies.next()
        {
            let option = |key: &str| ast::SqlOption::KeyValue {
                key: ast::Ident::new(key),
                value: ast::Expr::Value(ast::Value::Boolean(true).into()),
            };
            let mut options = Vec::new();
            if copies.indexes {
                options.push(option(LIKE_COPIES_INDEXES));
            }
            if copies.constraints {
                options.push(option(LIKE_COPIES_CONSTRAINTS));
            }
            if !options.is_empty() {
                create.table_options = ast::CreateTableOptions::With(options);
            }
        }
    }
}

fn like_copies(create: &ast::CreateTable, what: &str) -> bool {
    matches!(&create.table_options, ast::CreateTableOptions::With(options)
        if options.iter().any(|o| matches!(o, ast::SqlOption::KeyValue { key, .. } if key.value == what)))
}

/// `CREATE TABLE new (LIKE old [INCLUDING DEFAULTS])`: the columns of `old`
/// with their types and NOT NULL, and with INCLUDING DEFAULTS (or ALL) their
/// defaults too (a serial column's default goes on using `old`'s sequence,
/// as in PostgreSQL); with INCLUDING INDEXES (or ALL) its keys and indexes,
/// named for the new table as PostgreSQL names them. A hypertable's copy is
/// a plain table, as in TimescaleDB.
fn create_table_like(
    session: &mut Session,
    create: &ast::CreateTable,
    like: &ast::CreateTableLikeKind,
    name: String,
) -> Result<Output> {
    let (ast::CreateTableLikeKind::Parenthesized(like) | ast::CreateTableLikeKind::Plain(like)) =
        like;
    if !create.columns.is_empty() || !create.constraints.is_empty() {
        return Err(Error::not_supported(
            "columns or constraints next to LIKE in CREATE TABLE",
        ));
    }
    let source = session.table(&table_name(&like.name)?)?;
    let defaults = matches!(like.defaults, Some(ast::CreateTableLikeDefaults::Including));
    let columns: Vec<ColumnDef> = source
        .columns
        .iter()
        .map(|c| ColumnDef {
            name: c.name.clone(),
            pg_type: c.pg_type,
            not_null: c.not_null,
            default_sql: if defaults {
                c.default_sql.clone()
            } else {
                None
            },
            identity_always: false,
        })
        .collect();
    let mut table = TableDef {
        id: 0,
        name,
        columns,
        hypertable: None,
        indexes: Vec::new(),
        checks: Vec::new(),
    };
    if like_copies(create, LIKE_COPIES_CONSTRAINTS) {
        table.checks = source.checks.clone();
    }
    if like_copies(create, LIKE_COPIES_INDEXES) {
        let state = session.engine().store().catalog().snapshot();
        for index in &source.indexes {
            crate::indexes::copy_index(&state, &mut table, index);
        }
    }
    store_new_table(session, table, Vec::new())
}

/// An integer constant of a sequence option (`INCREMENT BY -1`).
fn integer_option(expr: &ast::Expr) -> Result<i64> {
    let invalid = || Error::Syntax {
        message: format!("syntax error at or near \"{expr}\""),
    };
    match expr {
        ast::Expr::Value(value) => match &value.value {
            ast::Value::Number(n, _) => n.parse::<i64>().map_err(|_| invalid()),
            _ => Err(invalid()),
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => integer_option(expr)?.checked_neg().ok_or_else(invalid),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Plus,
            expr,
        } => integer_option(expr),
        _ => Err(invalid()),
    }
}

fn invalid_sequence(message: String) -> Error {
    Error::InvalidParameter { message }
}

/// A sequence's definition from its options, with PostgreSQL's defaults
/// (ascending from 1 to the type's maximum) and checks.
fn sequence_def(
    name: &str,
    type_min: i64,
    type_max: i64,
    options: &[ast::SequenceOptions],
) -> Result<SequenceDef> {
    let mut increment = 1i64;
    let mut min_value = None;
    let mut max_value = None;
    let mut start_value = None;
    for option in options {
        match option {
            ast::SequenceOptions::IncrementBy(expr, _) => increment = integer_option(expr)?,
            ast::SequenceOptions::MinValue(expr) => {
                min_value = expr.as_ref().map(integer_option).transpose()?
            }
            ast::SequenceOptions::MaxValue(expr) => {
                max_value = expr.as_ref().map(integer_option).transpose()?
            }
            ast::SequenceOptions::StartWith(expr, _) => start_value = Some(integer_option(expr)?),
            // Values are reserved ahead in batches anyway; CACHE changes nothing visible.
            ast::SequenceOptions::Cache(expr) => {
                if integer_option(expr)? < 1 {
                    return Err(invalid_sequence(format!(
                        "CACHE ({expr}) must be greater than zero"
                    )));
                }
            }
            ast::SequenceOptions::Cycle(no) => {
                if !*no {
                    return Err(Error::not_supported("CYCLE sequences"));
                }
            }
        }
    }
    if increment == 0 {
        return Err(invalid_sequence("INCREMENT must not be zero".to_owned()));
    }
    let min_value = min_value.unwrap_or(if increment > 0 { 1 } else { type_min });
    let max_value = max_value.unwrap_or(if increment > 0 { type_max } else { -1 });
    if min_value < type_min || max_value > type_max {
        return Err(invalid_sequence(format!(
            "MINVALUE ({min_value}) and MAXVALUE ({max_value}) must be within the range of the sequence's type"
        )));
    }
    if min_value >= max_value {
        return Err(invalid_sequence(format!(
            "MINVALUE ({min_value}) must be less than MAXVALUE ({max_value})"
        )));
    }
    let start_value = start_value.unwrap_or(if increment > 0 { min_value } else { max_value });
    if start_value < min_value {
        return Err(invalid_sequence(format!(
            "START value ({start_value}) cannot be less than MINVALUE ({min_value})"
        )));
    }
    if start_value > max_value {
        return Err(invalid_sequence(format!(
            "START value ({start_value}) cannot be greater than MAXVALUE ({max_value})"
        )));
    }
    Ok(SequenceDef {
        name: name.to_owned(),
        increment,
        min_value,
        max_value,
        start_value,
        last_value: None,
        reserved_through: None,
        owned_by: None,
    })
}

/// The value range of a sequence's (or identity column's) integer type.
fn sequence_type_range(pg_type: Option<PgType>) -> Result<(i64, i64)> {
    match pg_type {
        None | Some(PgType::Int8) => Ok((i64::MIN, i64::MAX)),
        Some(PgType::Int2) => Ok((i16::MIN as i64, i16::MAX as i64)),
        Some(PgType::Int4) => Ok((i32::MIN as i64, i32::MAX as i64)),
        Some(_) => Err(invalid_sequence(
            "sequence type must be smallint, integer, or bigint".to_owned(),
        )),
    }
}

/// `CREATE SEQUENCE`.
pub(crate) fn create_sequence(
    session: &mut Session,
    temporary: bool,
    if_not_exists: bool,
    name: &ObjectName,
    data_type: Option<&ast::DataType>,
    options: &[ast::SequenceOptions],
    owned_by: Option<&ObjectName>,
) -> Result<Output> {
    if temporary {
        return Err(Error::not_supported("temporary sequences"));
    }
    let name = table_name(name)?;
    let (type_min, type_max) = match data_type {
        None => (i64::MIN, i64::MAX),
        Some(data_type) => {
            sequence_type_range(Some(pg_type_of_sql(data_type).unwrap_or(PgType::Text)))?
        }
    };
    let mut sequence = sequence_def(&name, type_min, type_max, options)?;
    let state = session.engine().store().catalog().snapshot();
    let owned_by = match owned_by {
        None => None,
        Some(target) if target.to_string().eq_ignore_ascii_case("none") => None,
        Some(target) => {
            let parts: Vec<String> = target
                .0
                .iter()
                .filter_map(|p| p.as_ident().map(ident))
                .collect();
            let [table, column] = parts.as_slice() else {
                return Err(invalid_sequence(
                    "invalid OWNED BY option: specify OWNED BY table.column or OWNED BY NONE"
                        .to_owned(),
                ));
            };
            let table_def = state
                .table_by_name(table)
                .ok_or_else(|| Error::UndefinedTable {
                    name: table.clone(),
                })?;
            if table_def.column_index(column).is_none() {
                return Err(Error::UndefinedColumn {
                    table: table.clone(),
                    column: column.clone(),
                });
            }
            Some((table_def.id, column.clone()))
        }
    };
    if state.relation_exists(&name) {
        if if_not_exists {
            session.notice(format!("relation \"{name}\" already exists, skipping"));
            return Ok(Output::Command {
                tag: "CREATE SEQUENCE".to_owned(),
            });
        }
        return Err(Error::DuplicateTable { name });
    }
    sequence.owned_by = owned_by;
    session.catalog_transact(|txn| txn.create_sequence(sequence))?;
    session.engine().sequences.forget(&name);
    Ok(Output::Command {
        tag: "CREATE SEQUENCE".to_owned(),
    })
}

/// `DROP SEQUENCE`: a sequence a column owns (`serial`) goes with its table.
fn drop_sequences(session: &mut Session, if_exists: bool, names: &[ObjectName]) -> Result<Output> {
    let state = session.engine().store().catalog().snapshot();
    let mut dropped = Vec::new();
    for name in names {
        let name = table_name(name)?;
        match state.sequences.get(&name) {
            Some(sequence) => {
                if let Some((table_id, column)) = &sequence.owned_by
                    && let Some(table) = state.tables.get(table_id)
                    && table.column_index(column).is_some()
                    && table.columns.iter().any(|c| {
                        c.default_sql
                            .as_deref()
                            .is_some_and(|d| d.contains(&format!("'{name}'")))
                    })
                {
                    return Err(Error::DependentObjects {
                        message: format!(
                            "cannot drop sequence {name} because other objects depend on it"
                        ),
                        detail: format!(
                            "default value for column {column} of table {} depends on sequence {name}",
                            table.name
                        ),
                    });
                }
                dropped.push(name);
            }
            None if if_exists => {
                session.notice(format!("sequence \"{name}\" does not exist, skipping"))
            }
            None => return Err(Error::UndefinedTable { name }),
        }
    }
    session.catalog_transact(|txn| {
        for name in &dropped {
            txn.drop_sequence(name);
        }
        Ok(())
    })?;
    for name in &dropped {
        session.engine().sequences.forget(name);
    }
    Ok(Output::Command {
        tag: "DROP SEQUENCE".to_owned(),
    })
}

pub(crate) fn drop(
    session: &mut Session,
    object_type: ObjectType,
    if_exists: bool,
    names: &[ObjectName],
) -> Result<Output> {
    if object_type == ObjectType::Sequence {
        return drop_sequences(session, if_exists, names);
    }
    if matches!(object_type, ObjectType::Role | ObjectType::User) {
        return crate::roles::drop_roles(session, if_exists, names);
    }
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
            Some(table) => {
                crate::views::check_no_dependent_views(&state, &name)?;
                ids.push(table.id)
            }
            None if state.views.contains_key(&name) => {
                return Err(Error::WrongObjectType {
                    message: format!("\"{name}\" is not a table"),
                });
            }
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
        store.drop_table(id, session.ddl_mark())?;
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
    catalog.transact(|txn| {
        txn.set_meta(installed_key, 1);
        Ok(())
    })?;
    Ok(Output::Command {
        tag: "CREATE EXTENSION".to_owned(),
    })
}
