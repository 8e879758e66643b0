//! One client session: parse, route and execute statements.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{LogicalPlan, ScalarUDF};
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self, Expr, SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use tempora_types::PgType;
use tempora_types::text::ColumnBuilder;

use tempora_query::visibility::{Resolved, SessionReads};

use crate::copy::CopyIn;
use crate::params::ParamRows;
use crate::sequences::SequenceFunction;
use crate::settings::Settings;
use crate::transaction::Transaction;
use crate::{Engine, Error, Result, ddl, insert, timescale};

/// What a statement produced.
pub enum Output {
    /// Rows streamed from a query.
    Stream {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        /// The command tag before the row count: `SELECT`.
        tag: String,
    },
    /// Rows already computed (SHOW, RETURNING, TimescaleDB functions).
    Batches {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        tag: String,
    },
    /// A command without rows: `tag` is the full command tag (`CREATE TABLE`,
    /// `INSERT 0 5`).
    Command { tag: String },
    /// COPY FROM STDIN: the protocol feeds the data to this and finishes it.
    CopyIn(Box<CopyIn>),
    /// COPY TO STDOUT: rows to format as COPY text or CSV.
    CopyOut {
        format: crate::copy::CopyFormat,
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    },
    /// An empty query string.
    Empty,
    /// `DEALLOCATE name`, `DEALLOCATE ALL` (`name` None) and `DISCARD ALL`:
    /// the protocol layer, which holds the prepared statements, drops them
    /// and answers with `tag`.
    Deallocate { name: Option<String>, tag: String },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stream { tag, .. } => write!(f, "Stream({tag})"),
            Output::Batches { tag, batches, .. } => write!(f, "Batches({tag}, {})", batches.len()),
            Output::Command { tag } => write!(f, "Command({tag})"),
            Output::CopyIn(_) => write!(f, "CopyIn"),
            Output::CopyOut { .. } => write!(f, "CopyOut"),
            Output::Empty => write!(f, "Empty"),
            Output::Deallocate { tag, .. } => write!(f, "Deallocate({tag})"),
        }
    }
}

/// A statement parsed by the extended protocol's Parse message.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: String,
    pub statement: Option<Statement>,
    /// Parameter types the client declared (None: to be inferred).
    pub declared_types: Vec<Option<PgType>>,
}

/// A notice for the client (`NOTICE: relation "t" already exists, skipping`).
#[derive(Debug, Clone)]
pub struct Notice {
    /// `NOTICE` or `WARNING`.
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// The parameters a statement runs with.
#[derive(Clone, Copy)]
enum Parameters<'a> {
    /// Once, with these (`$1` is the first).
    One(&'a [Option<String>]),
    /// Once for each of these sets, at once (see `Session::execute_pipelined`).
    Many(&'a ParamRows),
}

/// One connection's state.
pub struct Session {
    engine: Arc<Engine>,
    /// Names the session in the DDL locks (see [`crate::locks`]).
    pub(crate) id: crate::locks::SessionId,
    context: SessionContext,
    pub(crate) settings: Settings,
    /// What the session's queries can ask about it (settings, user, pid).
    pub(crate) info: Arc<tempora_query::session_info::SessionInfo>,
    notices: Vec<Notice>,
    /// What this session's statements read: a view per statement and the
    /// open transaction's writes.
    pub(crate) reads: Arc<SessionReads>,
    /// The open transaction block, if any.
    pub(crate) transaction: Option<Transaction>,
    /// Set when a statement's rows failed while being sent, after the
    /// statement returned: the open block fails as if the statement had.
    pub(crate) stream_failed: Arc<AtomicBool>,
    /// Point changes' planned projections (see [`crate::point`]).
    pub(crate) point_plans: crate::point::PointPlans,
    /// Physical plans of table-free queries (see [`crate::plan_cache`]).
    pub(crate) plans: crate::plan_cache::PlanCache,
    /// Query strings already parsed (see [`crate::plan_cache`]).
    parsed: crate::plan_cache::ParsedQueries,
    /// The settings generation (see `SessionInfo::generation`) when the
    /// reported settings were last compared.
    reported_generation: u64,
    /// `statement_timeout` as of a settings generation (`u64::MAX`: not yet read).
    timeout: (u64, Option<std::time::Duration>),
    /// The sequence values this session got (`currval`, `lastval`).
    sequence_values: Arc<parking_lot::Mutex<crate::sequences::SessionSequences>>,
    /// Cancels the running statement (see [`crate::cancel`]).
    pub(crate) cancel: Arc<crate::cancel::Cancel>,
    /// The values of the reported settings as the client last heard them.
    reported: Vec<(&'static str, String)>,
}

/// The settings PostgreSQL reports in ParameterStatus whenever they change
/// (its GUC_REPORT ones that a session can change), by their reported name.
const REPORTED_SETTINGS: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "standard_conforming_strings",
];

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

/// Parses SQL text into statements with the PostgreSQL dialect.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    if let Some((as_role, creates_user)) = crate::roles::user_as_role(sql) {
        let mut statements = parse(&as_role)?;
        // A user may log in unless it says otherwise.
        if let Some(Statement::CreateRole(create)) = statements.first_mut()
            && creates_user
        {
            create.login.get_or_insert(true);
        }
        return Ok(statements);
    }
    let normalized = crate::ddl::normalize_like_options(sql);
    let text = normalized
        .as_ref()
        .map(|(sql, _)| sql.as_str())
        .unwrap_or(sql);
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, text).map_err(|e| {
        unsupported_statement(text).unwrap_or_else(|| Error::Syntax {
            message: syntax_message(&e.to_string()),
        })
    })?;
    if let Some((_, copies_indexes)) = &normalized {
        crate::ddl::mark_like_indexes(&mut statements, copies_indexes);
    }
    Ok(statements)
}

/// Parses one SQL expression (a stored CHECK, a default).
pub(crate) fn parse_expression(sql: &str) -> Result<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_expr())
        .map_err(|e| Error::Syntax {
            message: syntax_message(&e.to_string()),
        })
}

/// Statements PostgreSQL has and tempora refuses by design, which the
/// parser does not know: named so the user learns why, not a syntax error.
fn unsupported_statement(sql: &str) -> Option<Error> {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == ';' || c == '(')
        .filter(|w| !w.is_empty())
        .take(4)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let message = match words.as_slice() {
        ["CREATE", "RULE", ..] | ["CREATE", "OR", "REPLACE", "RULE"] => {
            "rules (CREATE RULE) are not supported: write the statements the rule would run from the application"
        }
        ["DO", ..] => {
            "anonymous code blocks (DO) are not supported: PL/pgSQL does not run in tempora; run the statements one by one"
        }
        _ => return None,
    };
    Some(Error::Unsupported {
        message: message.to_owned(),
    })
}

/// sqlparser's "sql parser error: Expected: X, found: Y at Line: 1, Column: 8"
/// as a PostgreSQL-style message.
fn syntax_message(raw: &str) -> String {
    let body = raw.trim_start_matches("sql parser error: ");
    match body.split_once("found: ") {
        Some((_, rest)) => {
            let token = rest.split(" at Line").next().unwrap_or(rest).trim();
            if token == "EOF" {
                "syntax error at end of input".to_owned()
            } else {
                format!("syntax error at or near \"{token}\"")
            }
        }
        None => format!("syntax error: {body}"),
    }
}

impl Session {
    pub(crate) fn new(engine: Arc<Engine>, id: crate::locks::SessionId) -> Session {
        let reads = SessionReads::new(engine.store.clone());
        let info = Arc::new(tempora_query::session_info::SessionInfo::new(
            crate::DEFAULT_USER,
        ));
        let context = tempora_query::session_context(reads.clone(), info.clone());
        let sequence_values = Arc::new(parking_lot::Mutex::new(Default::default()));
        for function in SequenceFunction::all(engine.sequences.clone(), sequence_values.clone()) {
            context.register_udf(ScalarUDF::from(function));
        }
        let settings = Settings::new(info.clone());
        for function in crate::session_functions::all(
            id,
            settings.clone(),
            engine.advisory_locks.clone(),
            engine.backends.clone(),
        ) {
            context.register_udf(function);
        }
        let reported = REPORTED_SETTINGS
            .iter()
            .map(|name| (*name, settings.get(name).unwrap_or_default()))
            .collect();
        Session {
            reported,
            cancel: Arc::default(),
            sequence_values,
            engine,
            id,
            context,
            settings,
            notices: Vec::new(),
            reads,
            transaction: None,
            stream_failed: Arc::new(AtomicBool::new(false)),
            point_plans: Default::default(),
            plans: Default::default(),
            parsed: Default::default(),
            reported_generation: info.generation(),
            timeout: (u64::MAX, None),
            info,
        }
    }

    /// The role the client logged in as (`current_user`).
    pub fn set_user(&self, user: &str) {
        self.info.set_user(user);
    }

    /// The process id and secret key the protocol announced for this
    /// connection (`pg_backend_pid()`, CancelRequest).
    pub fn set_backend(&self, pid: i32, secret: Vec<u8>) {
        self.info.set_backend_pid(pid);
        self.engine.backends.register(pid, secret, &self.cancel);
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The table called `name`, or 42P01.
    /// The table `name` that a statement writes to or manages.
    pub(crate) fn table(&self, name: &str) -> Result<Arc<tempora_catalog::TableDef>> {
        let state = self.engine.store().catalog().snapshot();
        let found = match self.reads.resolve(name) {
            Resolved::AsIs => state.table_by_name(name),
            Resolved::Renamed(catalog_name) => state.table_by_name(&catalog_name),
            Resolved::Hidden => None,
        };
        match found {
            Some(table) => Ok(table.clone()),
            None if state.views.contains_key(name) => Err(Error::Unsupported {
                message: format!(
                    "\"{name}\" is a view: tempora's views are read-only; change the rows of the tables it reads"
                ),
            }),
            None => Err(Error::UndefinedTable {
                name: name.to_owned(),
            }),
        }
    }

    pub(crate) fn context(&self) -> &SessionContext {
        &self.context
    }

    pub(crate) fn notice(&mut self, message: String) {
        self.notices.push(Notice {
            severity: "NOTICE",
            code: "00000",
            message,
        });
    }

    pub(crate) fn warn(&mut self, code: &'static str, message: &str) {
        self.notices.push(Notice {
            severity: "WARNING",
            code,
            message: message.to_owned(),
        });
    }

    /// Reported settings that changed since the last call (`SET
    /// application_name`), for ParameterStatus messages.
    pub fn take_parameter_changes(&mut self) -> Vec<(String, String)> {
        let generation = self.info.generation();
        if generation == self.reported_generation {
            return Vec::new();
        }
        self.reported_generation = generation;
        let mut changes = Vec::new();
        for (name, reported) in &mut self.reported {
            let current = self.settings.get(name).unwrap_or_default();
            if *reported != current {
                changes.push((name.to_string(), current.clone()));
                *reported = current;
            }
        }
        changes
    }

    /// Notices raised since the last call, to send before the statement's result.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// A setting's current value (for ParameterStatus and SHOW).
    pub fn setting(&self, name: &str) -> Option<String> {
        self.settings.get(name).ok()
    }

    /// Runs `sql` if it is one INSERT ... VALUES of literals, without the
    /// general parser (see `fast_insert`); None for any other statement.
    pub async fn execute_fast_path(&mut self, sql: &str) -> Option<Result<Output>> {
        let insert = crate::fast_insert::parse(sql)?;
        if self.transaction_status() == crate::TransactionStatus::Failed {
            return Some(Err(crate::transaction::in_failed_block()));
        }
        if let Err(error) = self.wait_for_ddl_lock(&insert.table).await {
            self.statement_failed();
            return Some(Err(error));
        }
        let result = crate::insert::execute_values(self, &insert).await;
        if let Some(Err(_)) = &result {
            self.statement_failed();
        }
        result
    }

    /// Runs every statement of a simple-protocol query string; stops at the first error.
    pub async fn execute_sql(&mut self, sql: &str) -> Vec<Result<Output>> {
        if let Some(result) = self.execute_fast_path(sql).await {
            return vec![result];
        }
        let statements = match self.parse_query(sql) {
            Ok(statements) => statements,
            Err(error) => return vec![Err(error)],
        };
        self.begin_query_string(&statements);
        let mut outputs = Vec::with_capacity(statements.len());
        let mut succeeded = true;
        for statement in statements.iter() {
            let result = self.execute(statement, &[]).await;
            succeeded = result.is_ok();
            outputs.push(result);
            if !succeeded {
                break;
            }
        }
        if let Err(error) = self.end_query_string(succeeded).await {
            outputs.push(Err(error));
        }
        outputs
    }

    /// The statements of a simple-protocol query string; a string the
    /// session parsed before is not parsed again.
    pub fn parse_query(&mut self, sql: &str) -> Result<Arc<[Statement]>> {
        self.parsed.parse(sql)
    }

    /// Before the statements of one simple-protocol query string: as in
    /// PostgreSQL, several statements outside a block run as one implicit
    /// transaction (all or nothing), unless one of them changes the catalog,
    /// which tempora does not run inside a block.
    pub fn begin_query_string(&mut self, statements: &[Statement]) {
        if statements.len() > 1 && !statements.iter().any(|s| catalog_change(s).is_some()) {
            self.begin_implicit();
        }
    }

    /// After the statements of one query string: commits its implicit
    /// transaction if all of them succeeded, else discards it.
    pub async fn end_query_string(&mut self, succeeded: bool) -> Result<()> {
        self.end_implicit(succeeded).await
    }

    /// Whether an extended-protocol Execute of `statement` is staged in the
    /// implicit transaction of its pipeline (the messages up to Sync)
    /// rather than committed on its own: a plain INSERT outside a block.
    /// As in PostgreSQL, a pipeline of such INSERTs (asyncpg's
    /// `executemany`, a JDBC batch) then commits at Sync, all or nothing,
    /// with one WAL flush. UPDATE, DELETE and upserts are not staged: in a
    /// block they are checked against concurrent writers at commit
    /// (serialization failures), where autocommit waits for them instead.
    pub fn stages(&self, statement: &Statement) -> bool {
        let explicit = self.transaction.as_ref().is_some_and(|t| !t.implicit);
        !explicit
            && matches!(statement, Statement::Insert(insert)
                if insert.on.is_none() && insert.returning.is_none())
    }

    /// Before an extended-protocol Execute: opens the pipeline's implicit
    /// transaction for a staged statement (see `stages`); reads and
    /// transaction control join it; any other statement commits it first
    /// and runs on its own.
    pub async fn before_execute(&mut self, statement: &Statement) -> Result<()> {
        if self.stages(statement) {
            self.begin_implicit();
            return Ok(());
        }
        match statement {
            Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. } => Ok(()),
            Statement::Query(_) if catalog_change(statement).is_none() => Ok(()),
            _ => self.end_implicit(true).await,
        }
    }

    /// At Sync: commits the implicit transaction of the pipeline, or
    /// discards it if a message of the pipeline failed (`failed`: also a
    /// Bind or Describe error, which never reached the session).
    pub async fn sync(&mut self, failed: bool) -> Result<()> {
        self.end_implicit(!failed).await
    }

    /// Parses one statement for the extended protocol.
    pub fn prepare(&self, sql: &str, declared_types: Vec<Option<PgType>>) -> Result<Prepared> {
        let mut statements = parse(sql)?;
        if statements.len() > 1 {
            return Err(Error::Syntax {
                message: "cannot insert multiple commands into a prepared statement".to_owned(),
            });
        }
        Ok(Prepared {
            sql: sql.to_owned(),
            statement: statements.pop(),
            declared_types,
        })
    }

    /// Parameter types and result columns of a prepared statement, without running it.
    pub async fn describe(
        &mut self,
        prepared: &Prepared,
    ) -> Result<(Vec<PgType>, Option<SchemaRef>)> {
        let Some(statement) = &prepared.statement else {
            return Ok((Vec::new(), None));
        };
        // `$1::float8` says the parameter's type where DataFusion's inference cannot.
        let mut cast_types: HashMap<usize, PgType> = HashMap::new();
        let _ = ast::visit_expressions(statement, |expr| {
            if let Expr::Cast {
                expr: inner,
                data_type,
                ..
            } = expr
                && let Expr::Value(value) = inner.as_ref()
                && let ast::Value::Placeholder(name) = &value.value
                && let Ok(n) = name.trim_start_matches('$').parse::<usize>()
                && n >= 1
                && let Some(pg_type) = tempora_query::types::pg_type_of_sql(data_type)
            {
                cast_types.entry(n - 1).or_insert(pg_type);
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        let known = prepared
            .declared_types
            .len()
            .max(cast_types.keys().map(|i| i + 1).max().unwrap_or(0));
        let declared_types: Vec<Option<PgType>> = (0..known)
            .map(|i| {
                prepared
                    .declared_types
                    .get(i)
                    .copied()
                    .flatten()
                    .or_else(|| cast_types.get(&i).copied())
            })
            .collect();
        let declared = |index: usize| declared_types.get(index).copied().flatten();
        match statement {
            Statement::Query(query) if timescale::api_call(query).is_none() => {
                let plan = self.plan(statement).await?;
                let inferred = plan.get_parameter_types()?;
                let count = placeholder_count(&inferred, declared_types.len());
                let types = (0..count)
                    .map(|i| {
                        declared(i).unwrap_or_else(|| {
                            inferred
                                .get(&format!("${}", i + 1))
                                .cloned()
                                .flatten()
                                .and_then(|t| PgType::of_arrow(&t).ok())
                                .unwrap_or(PgType::Text)
                        })
                    })
                    .collect();
                Ok((types, Some(Arc::new(plan.schema().as_arrow().clone()))))
            }
            Statement::Insert(insert_statement) => {
                let (types, returning) =
                    insert::describe(self, insert_statement, &declared_types).await?;
                Ok((types, returning))
            }
            Statement::Update(_) | Statement::Delete(_) => {
                crate::dml::describe(self, statement, &declared_types).await
            }
            Statement::Explain { .. } => Ok((Vec::new(), Some(text_schema(EXPLAIN_COLUMN)))),
            Statement::ShowVariable { variable } => {
                let (_, column) = crate::settings::show_names(variable);
                let schema = match column.as_str() {
                    "all" => crate::settings::show_all_schema(),
                    _ => text_schema(&column),
                };
                Ok((Vec::new(), Some(schema)))
            }
            Statement::Query(query) => {
                // TimescaleDB API calls change the catalog, so they are described
                // from their signature, never by running them.
                let schema = timescale::api_call(query)
                    .map(|call| timescale::result_schema(&call))
                    .unwrap_or_else(|| text_schema("?column?"));
                Ok((Vec::new(), Some(schema)))
            }
            _ => Ok((
                (0..declared_types.len())
                    .map(|i| declared(i).unwrap_or(PgType::Text))
                    .collect(),
                None,
            )),
        }
    }

    /// Executes one statement with text-form parameters (`$1` is `params[0]`).
    pub async fn execute(
        &mut self,
        statement: &Statement,
        params: &[Option<String>],
    ) -> Result<Output> {
        let output = self.run(statement, Parameters::One(params)).await?;
        // One set of parameters always runs (see `execute_parameters`).
        Ok(output.unwrap_or(Output::Empty))
    }

    /// Executes a staged INSERT (see `stages`) once for each set of
    /// parameters in `rows`, in order, as the Executes of a pipeline do.
    /// Returns the command tags of those that ran, and the error that
    /// stopped the next one.
    ///
    /// An INSERT of one VALUES row of literals and parameters runs once
    /// for all of them, one batch written; if that fails, nothing of it
    /// was written, and the sets run one by one, so the error is the one
    /// the first failing set gives, after the sets before it (a cancel
    /// stops them all at once).
    pub async fn execute_pipelined(
        &mut self,
        statement: &Statement,
        rows: &ParamRows,
    ) -> (Vec<String>, Option<Error>) {
        if rows.len() > 1 {
            match self.run(statement, Parameters::Many(rows)).await {
                Ok(Some(_)) => return (vec!["INSERT 0 1".to_owned(); rows.len()], None),
                // A cancel or timeout stops them all: none of them ran (and
                // the next statement to start would forget the request).
                Err(error @ Error::Canceled { .. }) => {
                    self.statement_failed();
                    return (Vec::new(), Some(error));
                }
                Ok(None) | Err(_) => {}
            }
        }
        let mut tags = Vec::with_capacity(rows.len());
        for params in rows.rows() {
            let params = match params.to_text() {
                Ok(params) => params,
                Err(error) => return (tags, Some(error)),
            };
            match self.execute(statement, &params).await {
                Ok(Output::Command { tag }) => tags.push(tag),
                Ok(other) => {
                    return (
                        tags,
                        Some(Error::not_supported(format!(
                            "a pipelined INSERT that answers {other:?}"
                        ))),
                    );
                }
                Err(error) => return (tags, Some(error)),
            }
        }
        (tags, None)
    }

    /// Runs a statement: None if it was for many sets of parameters and
    /// cannot run for them at once (see `execute_parameters`).
    async fn run(
        &mut self,
        statement: &Statement,
        params: Parameters<'_>,
    ) -> Result<Option<Output>> {
        self.reads.begin_statement();
        if self.stream_failed.swap(false, Ordering::Relaxed) {
            self.statement_failed();
        }
        self.check_not_failed(statement)?;
        let ddl = catalog_change(statement).is_some();
        let generation = self.info.generation();
        let timeout = match self.timeout {
            (parsed, timeout) if parsed == generation => timeout,
            _ => {
                let timeout =
                    crate::cancel::parse_timeout(&self.settings.get("statement_timeout")?)?;
                self.timeout = (generation, timeout);
                timeout
            }
        };
        let running = self.cancel.start(timeout);
        let cancel = self.cancel.clone();
        let canceled = || {
            cancel.check().err().unwrap_or(Error::Canceled {
                message: "canceling statement due to user request".to_owned(),
            })
        };
        let reads_only = reads_only(statement);
        let result = async {
            tokio::select! {
                locked = self.lock_named_tables(statement, ddl) => locked?,
                () = cancel.canceled() => return Err(canceled()),
            }
            // A read stops where it is; a write is only refused before its
            // commit (see `cancel`).
            let output = if reads_only {
                tokio::select! {
                    output = self.execute_parameters(statement, params) => output?,
                    () = cancel.canceled() => return Err(canceled()),
                }
            } else {
                self.execute_parameters(statement, params).await?
            };
            if ddl {
                self.after_block_ddl(statement).await?;
            }
            Ok(output)
        }
        .await;
        let result = result.map(|output| {
            output.map(|output| match output {
                Output::Stream {
                    schema,
                    stream,
                    tag,
                } => Output::Stream {
                    schema,
                    stream: Box::pin(crate::cancel::CancelableStream::new(stream, running)),
                    tag,
                },
                Output::CopyOut {
                    format,
                    schema,
                    stream,
                } => Output::CopyOut {
                    format,
                    schema,
                    stream: Box::pin(crate::cancel::CancelableStream::new(stream, running)),
                },
                other => other,
            })
        });
        // Many sets that failed at once run again one by one, and the one
        // that fails then fails the block.
        if result.is_err() && matches!(params, Parameters::One(_)) {
            self.statement_failed();
        }
        result
    }

    async fn execute_parameters(
        &mut self,
        statement: &Statement,
        params: Parameters<'_>,
    ) -> Result<Option<Output>> {
        match (params, statement) {
            (Parameters::One(params), _) => {
                Ok(Some(self.execute_statement(statement, params).await?))
            }
            (Parameters::Many(rows), Statement::Insert(insert)) => {
                Ok(insert::execute_many(self, insert, rows)
                    .await?
                    .map(|written| Output::Command {
                        tag: format!("INSERT 0 {written}"),
                    }))
            }
            (Parameters::Many(_), _) => Ok(None),
        }
    }

    async fn execute_statement(
        &mut self,
        statement: &Statement,
        params: &[Option<String>],
    ) -> Result<Output> {
        match statement {
            Statement::Query(query) => {
                if let Some(call) = timescale::api_call(query) {
                    return timescale::execute(self, call, params).await;
                }
                self.query(statement, params).await
            }
            Statement::Insert(insert_statement) => {
                insert::execute(self, insert_statement, params).await
            }
            Statement::Update(update) => crate::dml::update(self, update, params).await,
            Statement::Delete(delete) => crate::dml::delete(self, delete, params).await,
            Statement::CreateTable(create) => ddl::create_table(self, create).await,
            Statement::Drop {
                object_type: ast::ObjectType::View,
                if_exists,
                names,
                cascade,
                ..
            } => crate::views::drop_views(self, *if_exists, *cascade, names),
            Statement::Drop {
                object_type: ast::ObjectType::Index,
                if_exists,
                names,
                cascade,
                ..
            } => {
                if *cascade {
                    return Err(Error::not_supported("DROP INDEX ... CASCADE"));
                }
                crate::indexes::drop_indexes(self, names, *if_exists).await
            }
            Statement::Drop {
                object_type,
                if_exists,
                names,
                ..
            } => ddl::drop(self, *object_type, *if_exists, names),
            Statement::CreateIndex(create) => crate::indexes::create_index(self, create).await,
            Statement::CreateView(create) => crate::views::create_view(self, create).await,
            Statement::CreateExtension(create) => ddl::create_extension(self, create),
            Statement::AlterTable(alter) => crate::alter::alter_table(self, alter).await,
            Statement::Truncate(truncate) => crate::alter::truncate(self, truncate),
            Statement::CreateSequence {
                temporary,
                if_not_exists,
                name,
                data_type,
                sequence_options,
                owned_by,
            } => ddl::create_sequence(
                self,
                *temporary,
                *if_not_exists,
                name,
                data_type.as_ref(),
                sequence_options,
                owned_by.as_ref(),
            ),
            Statement::Copy {
                source,
                to,
                target,
                options,
                legacy_options,
                values,
            } => {
                crate::copy::start(self, source, *to, target, options, legacy_options, values).await
            }
            Statement::Explain {
                analyze,
                statement: inner,
                options,
                ..
            } => {
                self.explain(
                    inner,
                    *analyze || has_analyze_option(options.as_deref()),
                    params,
                )
                .await
            }
            Statement::Deallocate { name, .. } => {
                let all = name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all");
                Ok(Output::Deallocate {
                    name: (!all).then(|| crate::names::ident(name)),
                    tag: if all { "DEALLOCATE ALL" } else { "DEALLOCATE" }.to_owned(),
                })
            }
            Statement::Discard { object_type } => self.discard(*object_type),
            Statement::CreateRole(create) => crate::roles::create_role(self, create, false),
            Statement::AlterRole { name, operation } => {
                crate::roles::alter_role(self, name, operation)
            }
            Statement::Set(set) => self.set(set),
            Statement::Reset(reset) => {
                match &reset.reset {
                    ast::Reset::ALL => self.settings.reset_all(),
                    ast::Reset::ConfigurationParameter(name) => {
                        self.settings.reset(&name.to_string())
                    }
                }
                Ok(Output::Command {
                    tag: "RESET".to_owned(),
                })
            }
            // tempora has no cursors and no notification channels: closing
            // all of them and stopping to listen change nothing.
            Statement::Close {
                cursor: ast::CloseCursor::All,
            } => Ok(Output::Command {
                tag: "CLOSE CURSOR ALL".to_owned(),
            }),
            Statement::UNLISTEN { .. } => Ok(Output::Command {
                tag: "UNLISTEN".to_owned(),
            }),
            Statement::LISTEN { .. } | Statement::NOTIFY { .. } => Err(Error::not_supported(
                "LISTEN and NOTIFY (notification channels)",
            )),
            Statement::ShowVariable { variable } => self.show(variable),
            Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. } => self.transaction_control(statement).await,
            Statement::CreateTrigger(_) | Statement::DropTrigger(_) => Err(Error::Unsupported {
                message: "triggers are not supported: for dual writes during a migration, write to both tables from the application, or backfill with INSERT ... SELECT".to_owned(),
            }),
            Statement::CreateFunction(_) | Statement::CreateProcedure { .. } => Err(Error::Unsupported {
                message: "user-defined functions and procedures (PL/pgSQL) are not supported".to_owned(),
            }),
            other => Err(Error::not_supported(format!(
                "the statement \"{}\"",
                statement_kind(other)
            ))),
        }
    }

    /// Plans a statement with DataFusion.
    pub(crate) async fn plan(&self, statement: &Statement) -> Result<LogicalPlan> {
        let state = self.context.state();
        let catalog = self.engine.store().catalog().snapshot();
        let expanded = crate::views::expand(&catalog, statement)?;
        let statement = expanded.as_ref().unwrap_or(statement);
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(
                crate::rewrite::for_datafusion(statement),
            )))
            .await?;
        Ok(function_parameter_types(plan)?)
    }

    /// Binds text parameters to a plan's placeholders, parsing each as its inferred type.
    pub(crate) fn bind(&self, plan: LogicalPlan, params: &[Option<String>]) -> Result<LogicalPlan> {
        let inferred = plan.get_parameter_types()?;
        if inferred.is_empty() && params.is_empty() {
            return Ok(plan);
        }
        let count = placeholder_count(&inferred, params.len());
        if params.len() < count {
            return Err(Error::InvalidParameter {
                message: format!(
                    "bind message supplies {} parameters, but prepared statement requires {count}",
                    params.len()
                ),
            });
        }
        let mut values = Vec::with_capacity(params.len());
        for (index, param) in params.iter().enumerate() {
            let data_type = inferred.get(&format!("${}", index + 1)).cloned().flatten();
            values.push(param_value(param.as_deref(), data_type.as_ref())?.into());
        }
        Ok(plan.with_param_values(ParamValues::List(values))?)
    }

    pub(crate) async fn query(
        &mut self,
        statement: &Statement,
        params: &[Option<String>],
    ) -> Result<Output> {
        let catalog = self.engine.store().catalog().snapshot();
        let settings = self.info.generation();
        let kept = match params {
            [] => self.plans.get(statement, &catalog, settings),
            _ => None,
        };
        let (schema, stream) = match kept {
            // A plan registers its metrics with each run: each run gets
            // its own copy of the kept one.
            Some(kept) => (
                kept.schema.clone(),
                execute_stream(reset_plan_states(kept.plan.clone())?, kept.task.clone())?,
            ),
            None => {
                let plan = self.plan(statement).await?;
                let may_keep = params.is_empty() && crate::plan_cache::may_keep(&plan);
                let plan = self.bind(plan, params)?;
                let frame = self.context.execute_logical_plan(plan).await?;
                let schema = postgres_names(statement, frame.schema().as_arrow());
                let task = Arc::new(frame.task_ctx());
                let plan = frame.create_physical_plan().await?;
                if may_keep {
                    self.plans
                        .keep(statement, &plan, &schema, &task, &catalog, settings);
                }
                (schema, execute_stream(plan, task)?)
            }
        };
        let target = schema.clone();
        let renamed = schema.fields() != stream.schema().fields();
        let failed = self.stream_failed.clone();
        let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
            schema.clone(),
            futures::StreamExt::map(stream, move |batch| {
                let batch = match batch {
                    Ok(batch) if renamed => {
                        RecordBatch::try_new(target.clone(), batch.columns().to_vec())
                            .map_err(Into::into)
                    }
                    other => other,
                };
                if batch.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                batch
            }),
        ));
        Ok(Output::Stream {
            schema,
            stream,
            tag: "SELECT".to_owned(),
        })
    }

    async fn explain(
        &mut self,
        inner: &Statement,
        analyze: bool,
        params: &[Option<String>],
    ) -> Result<Output> {
        // UPDATE and DELETE show the scan that finds their rows under a line
        // naming the change, as PostgreSQL's "Update on t" node does.
        let (header, inner) = match inner {
            Statement::Query(_) => (None, inner.clone()),
            Statement::Update(_) | Statement::Delete(_) if !analyze => {
                let (header, scan) = crate::dml::explain_scan(self, inner)?;
                (Some(header), scan)
            }
            _ => {
                return Err(Error::not_supported(if analyze {
                    "EXPLAIN ANALYZE of statements other than SELECT"
                } else {
                    "EXPLAIN of statements other than SELECT, UPDATE and DELETE"
                }));
            }
        };
        let inner = &inner;
        // DataFusion's EXPLAIN [ANALYZE] yields (plan_type, plan) rows; PostgreSQL
        // prints one "QUERY PLAN" column with a row per line of the executed plan.
        let explain = Statement::Explain {
            describe_alias: ast::DescribeAlias::Explain,
            analyze,
            verbose: false,
            query_plan: false,
            estimate: false,
            statement: Box::new(inner.clone()),
            format: None,
            options: None,
        };
        let plan = self.plan(&explain).await?;
        let plan = self.bind(plan, params)?;
        let batches = self
            .context
            .execute_logical_plan(plan)
            .await?
            .collect()
            .await?;
        let mut lines = Vec::new();
        for batch in &batches {
            let kinds = batch.column(0).as_any().downcast_ref::<StringArray>();
            let plans = batch.column(1).as_any().downcast_ref::<StringArray>();
            let (Some(kinds), Some(plans)) = (kinds, plans) else {
                continue;
            };
            for row in 0..batch.num_rows() {
                let kind = kinds.value(row);
                if kind == "physical_plan" || kind == "Plan with Metrics" {
                    lines.extend(plans.value(row).lines().map(|l| l.trim_end().to_owned()));
                }
            }
        }
        if let Some(header) = header {
            lines = std::iter::once(header)
                .chain(lines.into_iter().map(|l| format!("  {l}")))
                .collect();
        }
        text_rows(EXPLAIN_COLUMN, lines, "EXPLAIN")
    }

    fn set(&mut self, set: &ast::Set) -> Result<Output> {
        match set {
            ast::Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string();
                let value = values
                    .iter()
                    .map(setting_value)
                    .collect::<Vec<_>>()
                    .join(", ");
                if name.to_ascii_lowercase().starts_with("datafusion.") {
                    // DataFusion's own options (target_partitions, batch_size, ...).
                    let state = self.context.state_ref();
                    let mut state = state.write();
                    state
                        .config_mut()
                        .options_mut()
                        .set(&name.to_ascii_lowercase(), &value)?;
                    drop(state);
                    self.plans.clear();
                } else if value.eq_ignore_ascii_case("default") {
                    self.settings.reset(&name);
                } else {
                    self.settings.set(&name, &value)?;
                }
                Ok(Output::Command {
                    tag: "SET".to_owned(),
                })
            }
            ast::Set::SetTimeZone { value, .. } => {
                self.settings.set("timezone", &setting_value(value))?;
                Ok(Output::Command {
                    tag: "SET".to_owned(),
                })
            }
            ast::Set::SetNames { charset_name, .. } => {
                self.settings
                    .set("client_encoding", &charset_name.to_string())?;
                Ok(Output::Command {
                    tag: "SET".to_owned(),
                })
            }
            other => Err(Error::not_supported(format!("SET form \"{other}\""))),
        }
    }

    /// `DISCARD`: ALL resets the session as a new connection has it (its
    /// settings, cached plans, sequence values; the protocol layer drops the
    /// prepared statements), and is refused inside a block, as in PostgreSQL.
    fn discard(&mut self, what: ast::DiscardObject) -> Result<Output> {
        let command = |tag: &str| Output::Command {
            tag: tag.to_owned(),
        };
        match what {
            ast::DiscardObject::ALL => {
                if self.transaction.is_some() {
                    return Err(Error::Transaction {
                        code: crate::SqlState::ActiveSqlTransaction,
                        message: "DISCARD ALL cannot run inside a transaction block".to_owned(),
                    });
                }
                self.settings.reset_all();
                self.point_plans = Default::default();
                self.plans.clear();
                self.engine.advisory_locks.unlock_all(self.id);
                self.forget_sequence_values();
                Ok(Output::Deallocate {
                    name: None,
                    tag: "DISCARD ALL".to_owned(),
                })
            }
            ast::DiscardObject::PLANS => {
                self.point_plans = Default::default();
                self.plans.clear();
                Ok(command("DISCARD PLANS"))
            }
            ast::DiscardObject::SEQUENCES => {
                self.forget_sequence_values();
                Ok(command("DISCARD SEQUENCES"))
            }
            ast::DiscardObject::TEMP => Ok(command("DISCARD TEMP")),
        }
    }

    fn forget_sequence_values(&mut self) {
        *self.sequence_values.lock() = Default::default();
    }

    fn show(&mut self, variable: &[ast::Ident]) -> Result<Output> {
        let (name, column) = crate::settings::show_names(variable);
        if name == "all" {
            return Ok(Output::Batches {
                schema: crate::settings::show_all_schema(),
                batches: vec![self.settings.show_all()?],
                tag: "SHOW".to_owned(),
            });
        }
        let value = self.settings.get(&name)?;
        text_rows(&column, vec![value], "SHOW")
    }

    /// Runs a query to completion and returns its batches.
    pub(crate) async fn collect(
        &self,
        statement: &Statement,
        params: &[Option<String>],
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let plan = self.plan(statement).await?;
        let plan = self.bind(plan, params)?;
        let frame = self.context.execute_logical_plan(plan).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        Ok((schema, frame.collect().await?))
    }

    /// The physical plan of a query, parameters bound.
    pub(crate) async fn physical_plan(
        &self,
        statement: &Statement,
        params: &[Option<String>],
    ) -> Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let plan = self.plan(statement).await?;
        let plan = self.bind(plan, params)?;
        let frame = self.context.execute_logical_plan(plan).await?;
        Ok(frame.create_physical_plan().await?)
    }

    /// Runs a physical plan to its end.
    pub(crate) async fn run_plan(
        &self,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    ) -> Result<Vec<RecordBatch>> {
        Ok(datafusion::physical_plan::collect(plan, self.context.task_ctx()).await?)
    }

    /// Evaluates a constant expression (`interval '1 day'`, `now() - interval '7 days'`).
    pub(crate) async fn evaluate(
        &self,
        expr: &Expr,
        params: &[Option<String>],
    ) -> Result<ScalarValue> {
        let query = query_of(select_of(
            vec![ast::SelectItem::UnnamedExpr(expr.clone())],
            vec![],
        ));
        let (_, batches) = self
            .collect(&Statement::Query(Box::new(query)), params)
            .await?;
        let batch =
            batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .ok_or_else(|| Error::InvalidParameter {
                    message: "expression produced no value".to_owned(),
                })?;
        Ok(ScalarValue::try_from_array(batch.column(0), 0)?)
    }
}

/// The command name of a statement that changes the catalog, which tempora
/// does not run inside a transaction block.
/// Gives a parameter that is a function's argument the type the function
/// takes there, where DataFusion left it untyped (`pg_cancel_backend($1)`
/// takes an integer), as PostgreSQL infers parameter types.
fn function_parameter_types(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::{Expr as DfExpr, TypeSignature};
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|expr| {
            expr.transform_up(|e| {
                let DfExpr::ScalarFunction(mut call) = e else {
                    return Ok(Transformed::no(e));
                };
                // The first exact signature of the call's arity.
                let arity = call.args.len();
                let signature = &call.func.signature().type_signature;
                let exact = match signature {
                    TypeSignature::OneOf(list) => list.iter().find_map(|s| match s {
                        TypeSignature::Exact(types) if types.len() == arity => Some(types.clone()),
                        _ => None,
                    }),
                    TypeSignature::Exact(types) if types.len() == arity => Some(types.clone()),
                    _ => None,
                };
                let Some(types) = exact else {
                    return Ok(Transformed::no(DfExpr::ScalarFunction(call)));
                };
                let mut changed = false;
                for (arg, data_type) in call.args.iter_mut().zip(types) {
                    if let DfExpr::Placeholder(placeholder) = arg
                        && placeholder.field.is_none()
                    {
                        placeholder.field = Some(std::sync::Arc::new(
                            datafusion::arrow::datatypes::Field::new("", data_type, true),
                        ));
                        changed = true;
                    }
                }
                Ok(if changed {
                    Transformed::yes(DfExpr::ScalarFunction(call))
                } else {
                    Transformed::no(DfExpr::ScalarFunction(call))
                })
            })
        })
    })
    .map(|t| t.data)
}

/// Whether a statement only reads, so that canceling it can stop it at
/// any point.
fn reads_only(statement: &Statement) -> bool {
    match statement {
        Statement::Query(query) => timescale::api_call(query).is_none(),
        Statement::Explain {
            statement: inner,
            analyze,
            ..
        } => !*analyze || matches!(inner.as_ref(), Statement::Query(_)),
        Statement::ShowVariable { .. } => true,
        _ => false,
    }
}

fn catalog_change(statement: &Statement) -> Option<&'static str> {
    match statement {
        Statement::CreateTable(_) => Some("CREATE TABLE"),
        Statement::CreateView(_) => Some("CREATE VIEW"),
        Statement::CreateIndex(_) => Some("CREATE INDEX"),
        Statement::CreateSequence { .. } => Some("CREATE SEQUENCE"),
        // Renaming a table is staged like a write (see `transaction`).
        Statement::AlterTable(alter)
            if matches!(
                alter.operations.as_slice(),
                [ast::AlterTableOperation::RenameTable { .. }]
            ) =>
        {
            None
        }
        Statement::AlterTable(_) => Some("ALTER TABLE"),
        Statement::Truncate(_) => Some("TRUNCATE"),
        Statement::Drop { .. } => Some("DROP"),
        Statement::CreateExtension(_) => Some("CREATE EXTENSION"),
        Statement::CreateRole(_) => Some("CREATE ROLE"),
        Statement::AlterRole { .. } => Some("ALTER ROLE"),
        Statement::Query(query) => match timescale::api_call(query)?.name.as_str() {
            "show_chunks" => None,
            "create_hypertable" => Some("create_hypertable()"),
            "set_chunk_time_interval" => Some("set_chunk_time_interval()"),
            "drop_chunks" => Some("drop_chunks()"),
            _ => Some("this TimescaleDB function"),
        },
        _ => None,
    }
}

/// The output column names PostgreSQL gives a SELECT's items: the alias, or
/// for an unaliased item the name [`expression_name`] figures.
pub(crate) fn postgres_names(statement: &Statement, schema: &Schema) -> SchemaRef {
    let renamed = || -> Option<Vec<String>> {
        let Statement::Query(query) = statement else {
            return None;
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            return None;
        };
        let wildcards = select
            .projection
            .iter()
            .filter(|item| {
                matches!(
                    item,
                    ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..)
                )
            })
            .count();
        if wildcards > 1 {
            return None;
        }
        let expanded = schema
            .fields()
            .len()
            .checked_sub(select.projection.len() - wildcards)?;
        let mut names = Vec::with_capacity(schema.fields().len());
        let mut index = 0;
        for item in &select.projection {
            match item {
                ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                    names.extend(
                        schema.fields()[index..index + expanded]
                            .iter()
                            .map(|f| f.name().clone()),
                    );
                    index += expanded;
                }
                // Named by the original alias: planning may have given a
                // duplicate a private one (see `rewrite`).
                ast::SelectItem::ExprWithAlias { alias, .. } => {
                    names.push(crate::names::ident(alias));
                    index += 1;
                }
                ast::SelectItem::ExprWithAliases { .. } => {
                    names.push(schema.fields().get(index)?.name().clone());
                    index += 1;
                }
                ast::SelectItem::UnnamedExpr(expr) => {
                    names.push(expression_name(expr));
                    index += 1;
                }
            }
        }
        (names.len() == schema.fields().len()).then_some(names)
    };
    match renamed() {
        Some(names) => Arc::new(Schema::new_with_metadata(
            schema
                .fields()
                .iter()
                .zip(names)
                .map(|(field, name)| field.as_ref().clone().with_name(name))
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        )),
        None => Arc::new(schema.clone()),
    }
}

/// The name PostgreSQL gives an unnamed select item (its FigureColname):
/// `?column?` when nothing in it names it.
pub(crate) fn expression_name(expr: &Expr) -> String {
    figured_name(expr)
        .map(|(name, _)| name)
        .unwrap_or_else(|| "?column?".to_owned())
}

/// How surely a name was figured: a cast's type names its value only when
/// nothing inside it names it surely (`x::text` is `x`, `'1'::int` and
/// `(a + b)::text` are named by the type).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Naming {
    Weak,
    Strong,
}

fn figured_name(expr: &Expr) -> Option<(String, Naming)> {
    let strong = |name: &str| Some((name.to_owned(), Naming::Strong));
    let type_name = |data_type: &ast::DataType| {
        tempora_query::types::pg_type_of_sql(data_type)
            .map(|t| (t.typname().to_owned(), Naming::Weak))
    };
    match expr {
        Expr::Identifier(ident) => Some((crate::names::ident(ident), Naming::Strong)),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .map(|part| (crate::names::ident(part), Naming::Strong)),
        Expr::Function(function) => match function.name.0.last() {
            Some(ast::ObjectNamePart::Identifier(ident)) => {
                Some((crate::names::ident(ident), Naming::Strong))
            }
            _ => None,
        },
        Expr::Cast {
            expr, data_type, ..
        } => match figured_name(expr) {
            Some(named) if named.1 == Naming::Strong => Some(named),
            _ => type_name(data_type),
        },
        Expr::Nested(inner) => figured_name(inner),
        // A CASE is named by its ELSE, if that names it surely.
        Expr::Case { else_result, .. } => match else_result.as_deref().and_then(figured_name) {
            Some(named) if named.1 == Naming::Strong => Some(named),
            _ => Some(("case".to_owned(), Naming::Weak)),
        },
        Expr::Exists { .. } => strong("exists"),
        Expr::Extract { .. } => strong("extract"),
        Expr::Substring { .. } => strong("substring"),
        Expr::Trim { .. } => strong("btrim"),
        Expr::Position { .. } => strong("position"),
        Expr::Ceil { .. } => strong("ceil"),
        Expr::Floor { .. } => strong("floor"),
        Expr::TypedString(typed) => type_name(&typed.data_type),
        Expr::Array(_) => strong("array"),
        Expr::AtTimeZone { .. } => strong("timezone"),
        // A scalar subquery is named by its one item.
        Expr::Subquery(query) => match query.body.as_ref() {
            SetExpr::Select(select) => match select.projection.first()? {
                ast::SelectItem::ExprWithAlias { alias, .. } => {
                    Some((crate::names::ident(alias), Naming::Strong))
                }
                ast::SelectItem::UnnamedExpr(inner) => figured_name(inner)
                    .map(|(name, _)| (name, Naming::Strong))
                    .or_else(|| strong("?column?")),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A query of one plain SELECT.
pub(crate) fn query_of(select: ast::Select) -> ast::Query {
    ast::Query {
        with: None,
        body: Box::new(SetExpr::Select(Box::new(select))),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    }
}

/// A SELECT with the given projection and FROM list, everything else empty.
pub(crate) fn select_of(
    projection: Vec<ast::SelectItem>,
    from: Vec<ast::TableWithJoins>,
) -> ast::Select {
    ast::Select {
        select_token: ast::helpers::attached_token::AttachedToken::empty(),
        optimizer_hints: vec![],
        distinct: None,
        select_modifiers: None,
        top: None,
        top_before_distinct: false,
        projection,
        exclude: None,
        into: None,
        from,
        lateral_views: vec![],
        prewhere: None,
        selection: None,
        connect_by: vec![],
        group_by: ast::GroupByExpr::Expressions(vec![], vec![]),
        cluster_by: vec![],
        distribute_by: vec![],
        sort_by: vec![],
        having: None,
        named_window: vec![],
        qualify: None,
        window_before_qualify: false,
        value_table_mode: None,
        flavor: ast::SelectFlavor::Standard,
    }
}

fn placeholder_count(inferred: &HashMap<String, Option<DataType>>, declared: usize) -> usize {
    inferred
        .keys()
        .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
        .max()
        .unwrap_or(0)
        .max(declared)
}

/// A text parameter as a value of `data_type` (text when unknown).
pub(crate) fn param_value(text: Option<&str>, data_type: Option<&DataType>) -> Result<ScalarValue> {
    let Some(data_type) = data_type else {
        return Ok(ScalarValue::Utf8(text.map(str::to_owned)));
    };
    let Some(text) = text else {
        return Ok(ScalarValue::try_from(data_type)?);
    };
    let pg_type = PgType::of_arrow(data_type)?;
    let mut builder = ColumnBuilder::new(pg_type, 1)?;
    builder.append_text(text)?;
    let array = builder.finish();
    let array = if array.data_type() == data_type {
        array
    } else {
        datafusion::arrow::compute::cast(&array, data_type)?
    };
    Ok(ScalarValue::try_from_array(&array, 0)?)
}

/// The one column PostgreSQL's EXPLAIN returns.
const EXPLAIN_COLUMN: &str = "QUERY PLAN";

/// Rows of one text column (SHOW, EXPLAIN, the TimescaleDB API functions).
pub(crate) fn text_rows(column: &str, values: Vec<String>, tag: &str) -> Result<Output> {
    let schema = text_schema(column);
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(values))])?;
    Ok(Output::Batches {
        schema,
        batches: vec![batch],
        tag: tag.to_owned(),
    })
}

pub(crate) fn text_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![PgType::Text.arrow_field(name, true)]))
}

fn has_analyze_option(options: Option<&[ast::UtilityOption]>) -> bool {
    options.is_some_and(|options| {
        options.iter().any(|o| {
            o.name.value.eq_ignore_ascii_case("analyze")
                && o.arg
                    .as_ref()
                    .is_none_or(|a| !a.to_string().eq_ignore_ascii_case("false"))
        })
    })
}

fn setting_value(expr: &Expr) -> String {
    match expr {
        Expr::Value(value) => match &value.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Wraps already-computed batches as a stream.
pub(crate) fn batches_stream(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> SendableRecordBatchStream {
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(batches.into_iter().map(Ok)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_read_like_postgres() {
        assert_eq!(
            syntax_message(
                "sql parser error: Expected: an SQL statement, found: SELEC at Line: 1, Column: 1"
            ),
            "syntax error at or near \"SELEC\""
        );
        assert_eq!(
            syntax_message("sql parser error: Expected: end of statement, found: EOF"),
            "syntax error at end of input"
        );
    }
}
