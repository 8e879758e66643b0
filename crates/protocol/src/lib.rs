//! The PostgreSQL wire protocol (v3) on top of pgwire.
//!
//! ```text
//! socket ─ pgwire framing ─ Handler
//!   startup   : check user/database, ParameterStatus, BackendKeyData
//!   simple    : Query ─> Session::execute_sql ─> RowDescription/DataRow/CommandComplete
//!   extended  : Parse ─> Session::prepare; Describe ─> Session::describe;
//!               Bind+Execute ─> Session::execute (parameters decoded to text)
//!   COPY      : CopyIn fed by CopyData, finished by CopyDone; CopyOut streamed
//! ```
//!
//! Each connection owns one [`tempora_sql::Session`], kept in pgwire's
//! per-connection extensions. Rows are encoded straight from Arrow batches
//! in the format each column asks for (text or binary).

mod encode;
mod unflushed;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::auth::driver::{AuthDriver, AuthOutcome};
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler,
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::{
    CopyHandler, send_copy_both_response, send_copy_in_response, send_copy_out_response,
};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{
    ExtendedQueryHandler, SimpleQueryHandler, send_execution_response, send_query_response,
    send_ready_for_query,
};
use pgwire::api::results::{
    CopyResponse, DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, DEFAULT_NAME, METADATA_DATABASE, METADATA_USER,
    PgWireConnectionState, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Flush, Parse, ParseComplete,
    Sync as PgSync, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{
    EmptyQueryResponse, NoticeResponse, ReadyForQuery, TransactionStatus,
};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Mutex;

use tempora_sql::{CopyIn, Engine, Output, ParamRef, ParamRows, Prepared, Session};
use tempora_types::PgType;
use unflushed::Unflushed;

/// The superuser and database of the embedded default, as in a fresh PostgreSQL.
pub const SUPERUSER: &str = "postgres";
pub const DATABASE: &str = "postgres";

/// One connection's state.
struct Connection {
    session: Session,
    copy_in: Option<Box<CopyIn>>,
    /// Names of the statements Parse has stored (pgwire's store cannot list
    /// them), for `DEALLOCATE ALL` and `DISCARD ALL`.
    prepared: std::collections::BTreeSet<String>,
    /// The CommandComplete of the last staged INSERT of a pipeline (see
    /// `on_execute`), sent before the answer to the next message.
    held: Option<Tag>,
    /// Executes of one staged INSERT not yet run (see `on_execute`).
    deferred: Option<Deferred>,
    /// The types the last statement's binary parameters are read as (see
    /// `parameter_types`): a pipeline runs one statement many times.
    types: Option<ParameterTypes>,
}

/// The types a statement's binary parameters are read as.
struct ParameterTypes {
    /// Holding the statement keeps it alive, so the pointer comparison
    /// cannot match a different one.
    statement: Arc<StoredStatement<Prepared>>,
    /// Whether they were inferred (a binary parameter had no declared type).
    inferred: bool,
    types: Vec<PgType>,
}

/// The Executes of one staged INSERT in a row in a pipeline, with the
/// Binds between them, not yet run: they run together, as one statement
/// (see `Session::execute_pipelined`), before the next other message or
/// once there are `DEFERRED_MESSAGES` of them, and their answers are sent
/// then, in order.
struct Deferred {
    statement: Arc<StoredStatement<Prepared>>,
    /// The portal they are bound to.
    portal: String,
    /// The messages owed an answer, in order.
    owed: Vec<Owed>,
    /// The parameters of the Executes, in order.
    params: ParamRows,
}

impl Deferred {
    fn push(&mut self, message: Owed) {
        // A pipeline past a few messages is sized for a whole part at
        // once: growing a doubling at a time moved it to fresh pages again
        // and again (13% of a fresh server's first executemany, in perf,
        // was the kernel zeroing those pages).
        if self.owed.len() == self.owed.capacity() {
            self.owed
                .reserve_exact(DEFERRED_MESSAGES.saturating_sub(self.owed.len()).max(1));
            self.params.reserve_rows(DEFERRED_MESSAGES / 2);
        }
        self.owed.push(message);
    }
}

/// The deferred messages (Binds and Executes) at which they run without
/// waiting for another message: 4 096 rows, about a staged batch's worth.
const DEFERRED_MESSAGES: usize = 8192;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Owed {
    /// A Bind of the statement: BindComplete.
    Bind,
    /// An Execute (its parameters in `Deferred::params`): CommandComplete.
    Execute,
}

/// `DEALLOCATE` and `DISCARD ALL`: drops prepared statements from the
/// connection's store (all of them without a `name`).
fn deallocate<C>(
    client: &C,
    connection: &mut Connection,
    name: Option<String>,
    tag: &str,
) -> Result<Response, tempora_sql::Error>
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    let store = client.portal_store();
    match name {
        Some(name) => {
            if store.get_statement(&name).is_none() {
                return Err(tempora_sql::Error::UndefinedPreparedStatement { name });
            }
            store.rm_statement(&name);
            connection.prepared.remove(&name);
        }
        None => {
            for name in std::mem::take(&mut connection.prepared) {
                store.rm_statement(&name);
            }
            if tag == "DISCARD ALL" {
                store.clear_portals();
            }
        }
    }
    Ok(Response::Execution(Tag::new(tag)))
}

type SharedConnection = Arc<Mutex<Connection>>;

/// The protocol handlers, shared by all connections.
pub struct Handler {
    engine: Arc<Engine>,
    parser: Arc<StatementParser>,
    pids: RandomPidSecretKeyGenerator,
    auth: AuthMode,
    scram: ScramAuth,
    driver: AuthDriver<Arc<Parameters>>,
}

impl Handler {
    pub fn new(engine: Arc<Engine>, auth: AuthMode) -> Arc<Handler> {
        let scram = ScramAuth::new(Arc::new(RoleVerifiers {
            engine: engine.clone(),
        }));
        Arc::new(Handler {
            engine,
            parser: Arc::new(StatementParser),
            pids: RandomPidSecretKeyGenerator::default(),
            auth,
            scram,
            driver: AuthDriver::new(Arc::new(Parameters)),
        })
    }

    /// The connection's transaction status, from its session.
    async fn status<C: ClientInfo>(&self, client: &C) -> TransactionStatus {
        let connection = self.connection(client);
        let connection = connection.lock().await;
        wire_status(&connection.session)
    }

    /// Runs the deferred Executes and sends the CommandComplete held back
    /// by `on_execute`: every handler of a frontend message calls this
    /// first, so answers keep their order. An error of a deferred Execute
    /// is returned after the answers to the messages before it: the
    /// message being handled is then skipped, as everything up to the Sync
    /// is after an error.
    async fn release_held<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Boxed: every handler awaits this, and each handler's future would
        // otherwise hold (and move, for every message) the whole state of
        // running a statement.
        if self.connection(client).lock().await.deferred.is_some()
            && let Some(error) = Box::pin(self.run_deferred(client)).await?
        {
            return Err(user_error(&error));
        }
        let held = self.connection(client).lock().await.held.take();
        if let Some(tag) = held {
            client
                .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                .await?;
        }
        Ok(())
    }

    /// Runs the deferred Executes, if any, and answers them and the Binds
    /// between them; the last CommandComplete is held, as a staged
    /// INSERT's is (see `on_sync`). Returns the error of the Execute that
    /// failed, not yet sent.
    async fn run_deferred<C>(&self, client: &mut C) -> PgWireResult<Option<tempora_sql::Error>>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = self.connection(client);
        let mut connection = connection.lock().await;
        let Some(deferred) = connection.deferred.take() else {
            return Ok(None);
        };
        let Some(statement) = deferred.statement.statement.statement.as_ref() else {
            return Ok(None);
        };
        let (tags, error) = match connection.session.before_execute(statement).await {
            Ok(()) => {
                connection
                    .session
                    .execute_pipelined(statement, &deferred.params)
                    .await
            }
            Err(error) => (Vec::new(), Some(error)),
        };
        send_notices(client, &mut connection.session).await?;
        // Answers stop at the first Execute without a tag: the failed one.
        // Each CommandComplete waits for the next answer, so the last one
        // can be held.
        let mut tags = tags.into_iter();
        let mut last: Option<String> = None;
        for message in deferred.owed {
            let is_execute = message == Owed::Execute;
            let next = if is_execute {
                match tags.next() {
                    Some(tag) => last.replace(tag),
                    None => break,
                }
            } else {
                last.take()
            };
            if let Some(tag) = next {
                feed_command_complete(client, &tag).await?;
            }
            if !is_execute {
                client
                    .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
                    .await?;
            }
        }
        if error.is_none() {
            connection.held = last.map(|tag| command_tag(&tag));
        } else if let Some(tag) = last {
            feed_command_complete(client, &tag).await?;
        }
        Ok(error)
    }

    fn connection<C: ClientInfo>(&self, client: &C) -> SharedConnection {
        let engine = self.engine.clone();
        let (pid, secret) = client.pid_and_secret_key();
        let connection: Arc<SharedConnection> =
            client.session_extensions().get_or_insert_with(|| {
                let session = engine.session();
                session.set_backend(pid, secret.to_bytes().to_vec());
                Arc::new(Mutex::new(Connection {
                    session,
                    copy_in: None,
                    prepared: Default::default(),
                    held: None,
                    deferred: None,
                    types: None,
                }))
            });
        (*connection).clone()
    }
}

/// The error a client sees for a failed statement.
pub fn error_info(error: &tempora_sql::Error) -> ErrorInfo {
    let message = error.client_message();
    let (message, context) = match message.split_once("\nCONTEXT: ") {
        Some((message, context)) => (message.to_owned(), Some(context.to_owned())),
        None => (message, None),
    };
    let (message, hint) = match message.split_once("\nHINT: ") {
        Some((message, hint)) => (message.to_owned(), Some(hint.to_owned())),
        None => (message, None),
    };
    let (message, detail) = match message.split_once("\nDETAIL: ") {
        Some((message, detail)) => (message.to_owned(), Some(detail.to_owned())),
        None => (message, None),
    };
    let mut info = ErrorInfo::new(
        "ERROR".to_owned(),
        error.sqlstate().code().to_owned(),
        message,
    );
    info.where_context = context;
    info.detail = detail;
    info.hint = hint;
    if let tempora_sql::Error::TableNotEmpty { .. } = error {
        info.hint = Some(
            "You can migrate data by specifying 'migrate_data => true' when calling this function."
                .to_owned(),
        );
    }
    info
}

fn user_error(error: &tempora_sql::Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(error)))
}

async fn send_notices<C>(client: &mut C, session: &mut Session) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for (name, value) in session.take_parameter_changes() {
        client
            .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name, value,
            )))
            .await?;
    }
    for notice in session.take_notices() {
        let info = ErrorInfo::new(
            notice.severity.to_owned(),
            notice.code.to_owned(),
            notice.message,
        );
        client
            .feed(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
                info,
            )))
            .await?;
    }
    Ok(())
}

/// The session's transaction state as ReadyForQuery reports it.
fn wire_status(session: &Session) -> TransactionStatus {
    match session.transaction_status() {
        tempora_sql::TransactionStatus::Idle => TransactionStatus::Idle,
        tempora_sql::TransactionStatus::InBlock => TransactionStatus::Transaction,
        tempora_sql::TransactionStatus::Failed => TransactionStatus::Error,
    }
}

/// Turns a statement's output into a pgwire response.
fn into_response(
    output: Output,
    formats: &Format,
    connection: &mut Connection,
) -> PgWireResult<Response> {
    Ok(match output {
        Output::Stream {
            schema,
            stream,
            tag,
        } => {
            let fields = encode::fields(&schema, formats)?;
            let mut response =
                QueryResponse::new(fields.clone(), encode::rows(schema, stream, fields));
            response.set_command_tag(&tag);
            Response::Query(response)
        }
        Output::Batches {
            schema,
            batches,
            tag,
        } => {
            let fields = encode::fields(&schema, formats)?;
            let stream = futures::stream::iter(batches.into_iter().map(Ok));
            let stream = Box::pin(
                datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                    schema.clone(),
                    stream,
                ),
            );
            let mut response =
                QueryResponse::new(fields.clone(), encode::rows(schema, stream, fields));
            response.set_command_tag(&tag);
            Response::Query(response)
        }
        Output::Command { tag } => Response::Execution(command_tag(&tag)),
        Output::Empty => Response::EmptyQuery,
        // The query paths drop the statements first (see `deallocate`).
        Output::Deallocate { tag, .. } => Response::Execution(Tag::new(&tag)),
        Output::CopyIn(copy_in) => {
            let columns = copy_in.column_count();
            let code = copy_in.format().wire_code();
            connection.copy_in = Some(copy_in);
            Response::CopyIn(CopyResponse::new(code, columns, futures::stream::empty()))
        }
        Output::CopyOut {
            format,
            schema,
            stream,
        } => {
            let columns = schema.fields().len();
            Response::CopyOut(CopyResponse::new(
                format.wire_code(),
                columns,
                encode::copy_rows(format, schema, stream),
            ))
        }
    })
}

/// Sends every row of an Execute without a row limit as it is encoded, and
/// finishes the portal; what is left to send is the CommandComplete.
/// pgwire's Execute would gather all rows of the portal in memory first:
/// the client waited for the last row before it saw the first, and a large
/// result had to fit in the server's memory.
async fn send_all_rows<C>(
    client: &mut C,
    portal: &Portal<Prepared>,
    mut response: QueryResponse,
) -> PgWireResult<Response>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    *portal.state().lock().await = PortalExecutionState::Finished;
    let tag = response.command_tag().to_owned();
    let rows = response.data_rows();
    let mut count = 0;
    while let Some(row) = rows.next().await {
        client.feed(PgWireBackendMessage::DataRow(row?)).await?;
        count += 1;
    }
    Ok(Response::Execution(Tag::new(&tag).with_rows(count)))
}

async fn feed_command_complete<C>(client: &mut C, tag: &str) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    client
        .feed(PgWireBackendMessage::CommandComplete(
            command_tag(tag).into(),
        ))
        .await?;
    Ok(())
}

/// A full command tag ("INSERT 0 5", "CREATE TABLE") as pgwire's Tag.
fn command_tag(tag: &str) -> Tag {
    match tag.rsplit_once(' ') {
        Some((command, rows)) if rows.chars().all(|c| c.is_ascii_digit()) && !rows.is_empty() => {
            let rows: usize = rows.parse().unwrap_or(0);
            match command.split_once(' ') {
                Some((name, oid)) if oid.chars().all(|c| c.is_ascii_digit()) => Tag::new(name)
                    .with_oid(oid.parse().unwrap_or(0))
                    .with_rows(rows),
                _ => Tag::new(command).with_rows(rows),
            }
        }
        _ => Tag::new(tag),
    }
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    /// Runs a query string and answers it. pgwire's default derives the
    /// transaction status from the kinds of responses; ours comes from the
    /// session, which alone knows, e.g., that ROLLBACK TO SAVEPOINT revived a
    /// failed block.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.release_held(client).await?;
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let responses = SimpleQueryHandler::do_query(self, client, &query.query).await?;
        let mut copy_in = false;
        for response in responses {
            let sent = match response {
                Response::EmptyQuery => client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await
                    .map_err(PgWireError::from),
                Response::Query(results) => send_query_response(client, results, true).await,
                Response::Execution(tag)
                | Response::TransactionStart(tag)
                | Response::TransactionEnd(tag) => send_execution_response(client, tag).await,
                Response::Error(error) => client
                    .feed(PgWireBackendMessage::ErrorResponse((*error).into()))
                    .await
                    .map_err(PgWireError::from),
                Response::CopyIn(result) => {
                    copy_in = true;
                    send_copy_in_response(client, result).await
                }
                Response::CopyOut(result) => send_copy_out_response(client, result).await,
                Response::CopyBoth(result) => {
                    copy_in = true;
                    send_copy_both_response(client, result).await
                }
            };
            if let Err(error) = sent {
                // Rows failed while being sent: the session already knows (the
                // stream told it); pgwire reports the error and ReadyForQuery
                // from the status set here.
                let status = self.status(client).await;
                client.set_transaction_status(status);
                return Err(error);
            }
        }
        if copy_in {
            // CopyDone or CopyFail ends the query; ReadyForQuery follows them.
            client.set_state(PgWireConnectionState::CopyInProgress(false));
        } else {
            let status = self.status(client).await;
            client.set_state(PgWireConnectionState::ReadyForQuery);
            client.set_transaction_status(status);
            send_ready_for_query(client, status).await?;
        }
        Ok(())
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = self.connection(client);
        let mut connection = connection.lock().await;
        if let Some(result) = connection.session.execute_fast_path(query).await {
            send_notices(client, &mut connection.session).await?;
            return Ok(vec![match result {
                Ok(output) => into_response(output, &Format::UnifiedText, &mut connection)?,
                Err(error) => Response::Error(Box::new(error_info(&error))),
            }]);
        }
        let statements = match connection.session.parse_query(query) {
            Ok(statements) => statements,
            Err(error) => {
                connection.session.statement_failed();
                return Ok(vec![Response::Error(Box::new(error_info(&error)))]);
            }
        };
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        connection.session.begin_query_string(&statements);
        let mut responses = Vec::with_capacity(statements.len());
        let mut succeeded = true;
        let count = statements.len();
        for (index, statement) in statements.iter().enumerate() {
            let result = connection.session.execute(statement, &[]).await;
            send_notices(client, &mut connection.session).await?;
            match result {
                Ok(Output::CopyIn(_)) if index + 1 < count => {
                    let error = tempora_sql::Error::not_supported(
                        "COPY FROM STDIN followed by more statements in one query string",
                    );
                    connection.session.statement_failed();
                    responses.push(Response::Error(Box::new(error_info(&error))));
                    succeeded = false;
                    break;
                }
                Ok(Output::Deallocate { name, tag }) => {
                    match deallocate(client, &mut connection, name, &tag) {
                        Ok(response) => responses.push(response),
                        Err(error) => {
                            connection.session.statement_failed();
                            responses.push(Response::Error(Box::new(error_info(&error))));
                            succeeded = false;
                            break;
                        }
                    }
                }
                Ok(output) => responses.push(into_response(
                    output,
                    &Format::UnifiedText,
                    &mut connection,
                )?),
                Err(error) => {
                    // PostgreSQL stops a multi-statement query at its first error.
                    responses.push(Response::Error(Box::new(error_info(&error))));
                    succeeded = false;
                    break;
                }
            }
        }
        if let Err(error) = connection.session.end_query_string(succeeded).await {
            responses.push(Response::Error(Box::new(error_info(&error))));
        }
        Ok(responses)
    }
}

/// Parses statements for the extended protocol; types and result columns are
/// answered by the handler's describe methods, which can reach the session.
pub struct StatementParser;

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = tempora_sql::parse(sql).map_err(|e| user_error(&e))?;
        if statements.len() > 1 {
            return Err(user_error(&tempora_sql::Error::Syntax {
                message: "cannot insert multiple commands into a prepared statement".to_owned(),
            }));
        }
        let declared = types
            .iter()
            .map(|t| t.as_ref().and_then(|t| encode::pg_type_of_oid(t.oid())))
            .collect();
        Ok(Some(Prepared {
            sql: sql.to_owned(),
            statement: statements.pop(),
            declared_types: declared,
        }))
    }

    fn get_parameter_types(&self, _stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(Vec::new())
    }

    fn get_result_schema(
        &self,
        _stmt: &Prepared,
        _format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(Vec::new())
    }
}

/// Appends `portal`'s parameters to `rows`, binary ones read as the types
/// `types` gives (see `parameter_types`); nothing if a text one is not
/// UTF-8.
fn push_parameters(
    rows: &mut ParamRows,
    portal: &Portal<Prepared>,
    types: &[PgType],
) -> PgWireResult<()> {
    check_text_parameters(portal)?;
    rows.push_row(portal.parameters.iter().enumerate().map(|(index, value)| {
        let Some(bytes) = value else {
            return ParamRef::Null;
        };
        if portal.parameter_format.is_binary(index) {
            ParamRef::Binary(types.get(index).copied().unwrap_or(PgType::Text), bytes)
        } else {
            // Checked above.
            ParamRef::Text(std::str::from_utf8(bytes).unwrap_or_default())
        }
    }));
    Ok(())
}

/// Whether a binary parameter of `portal` has no declared type.
fn needs_inference(portal: &Portal<Prepared>) -> bool {
    let declared = &portal.statement.statement.declared_types;
    (0..portal.parameters.len()).any(|i| {
        portal.parameter_format.is_binary(i) && declared.get(i).copied().flatten().is_none()
    })
}

/// Makes `connection.types` the types binary parameters of `portal` are
/// read as: the declared ones, inferred for the rest when a binary one has
/// none (Text where nothing says otherwise).
async fn parameter_types(
    connection: &mut Connection,
    portal: &Portal<Prepared>,
) -> PgWireResult<()> {
    let inferring = needs_inference(portal);
    let known = connection.types.as_ref().is_some_and(|known| {
        Arc::ptr_eq(&known.statement, &portal.statement) && known.inferred == inferring
    });
    if known {
        return Ok(());
    }
    let prepared = &portal.statement.statement;
    let types = if inferring {
        // Boxed: planning's state would make every call's future large.
        Box::pin(connection.session.describe(prepared))
            .await
            .map_err(|e| user_error(&e))?
            .0
    } else {
        prepared
            .declared_types
            .iter()
            .map(|t| t.unwrap_or(PgType::Text))
            .collect()
    };
    connection.types = Some(ParameterTypes {
        statement: portal.statement.clone(),
        inferred: inferring,
        types,
    });
    Ok(())
}

/// The types `parameter_types` last made.
fn known_types(types: &Option<ParameterTypes>) -> &[PgType] {
    types.as_ref().map_or(&[][..], |known| &known.types)
}

/// A portal whose text parameters are not all UTF-8 fails its Bind, as in
/// PostgreSQL (22021).
fn check_text_parameters(portal: &Portal<Prepared>) -> PgWireResult<()> {
    for (index, value) in portal.parameters.iter().enumerate() {
        if let Some(bytes) = value
            && !portal.parameter_format.is_binary(index)
            && std::str::from_utf8(bytes).is_err()
        {
            return Err(invalid_utf8(bytes));
        }
    }
    Ok(())
}

fn utf8_parameter(bytes: &[u8]) -> PgWireResult<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid_utf8(bytes))
}

fn invalid_utf8(bytes: &[u8]) -> PgWireError {
    user_error(&tempora_sql::Error::invalid_utf8(bytes))
}

/// The bound parameters of `portal` as text.
async fn text_parameters(
    connection: &mut Connection,
    portal: &Portal<Prepared>,
) -> PgWireResult<Vec<Option<String>>> {
    parameter_types(connection, portal).await?;
    parameters_as_text(portal, known_types(&connection.types))
}

/// Decodes bound parameters into their text forms.
fn parameters_as_text(
    portal: &Portal<Prepared>,
    types: &[PgType],
) -> PgWireResult<Vec<Option<String>>> {
    portal
        .parameters
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let Some(bytes) = value else { return Ok(None) };
            if portal.parameter_format.is_binary(index) {
                let pg_type = types.get(index).copied().unwrap_or(PgType::Text);
                tempora_types::binary::decode_to_text(pg_type, bytes)
                    .map(Some)
                    .map_err(|e| user_error(&e.into()))
            } else {
                utf8_parameter(bytes).map(Some)
            }
        })
        .collect()
}

#[async_trait]
impl ExtendedQueryHandler for Handler {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    /// Sync: commits the implicit transaction of the pipeline since the
    /// last Sync (see `Session::before_execute`), or discards it if a
    /// message failed (pgwire then skipped to this Sync), then
    /// ReadyForQuery with the session's transaction status (see
    /// `on_query`). The CommandComplete of the last staged INSERT follows
    /// the commit, so a client that stops reading at it (tokio-postgres
    /// does) learns of a failed commit: the error takes its place.
    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let deferred_failed = match Box::pin(self.run_deferred(client)).await? {
            Some(error) => {
                client
                    .feed(PgWireBackendMessage::ErrorResponse(
                        error_info(&error).into(),
                    ))
                    .await?;
                true
            }
            None => false,
        };
        client.portal_store().rm_portal(DEFAULT_NAME);
        let failed =
            deferred_failed || matches!(client.state(), PgWireConnectionState::AwaitingSync);
        let (held, committed) = {
            let connection = self.connection(client);
            let mut connection = connection.lock().await;
            let held = connection.held.take();
            (held, connection.session.sync(failed).await)
        };
        let answer = match committed {
            Ok(()) => held.map(|tag| PgWireBackendMessage::CommandComplete(tag.into())),
            Err(error) => Some(PgWireBackendMessage::ErrorResponse(
                error_info(&error).into(),
            )),
        };
        if let Some(answer) = answer {
            client.feed(answer).await?;
        }
        let status = self.status(client).await;
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        Ok(())
    }

    /// Execute. A staged INSERT (see `Session::stages`) is deferred: the
    /// Executes of one in a row run together before the next other
    /// message, or in parts of `DEFERRED_MESSAGES` (see `Deferred`), and
    /// the last one's CommandComplete is held until the message after
    /// that: a Sync commits before sending it (see `on_sync`). Everything
    /// else runs through pgwire's Execute, its answers waiting for the
    /// Sync or Flush (see `unflushed`); a result without a row limit
    /// streams (see `send_all_rows`).
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let connection = self.connection(client);
        let mut guard = connection.lock().await;
        let staged = match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) => {
                let statement = portal.statement.statement.statement.as_ref();
                statement
                    .is_some_and(|s| guard.session.stages(s))
                    .then_some(portal)
            }
            _ => None,
        };
        let Some(portal) = staged else {
            drop(guard);
            self.release_held(client).await?;
            // Boxed, so the deferring path does not move its state around.
            return Box::pin(self._on_execute(&mut Unflushed::new(client), message)).await;
        };
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            drop(guard);
            self.release_held(client).await?;
            return Err(PgWireError::NotReadyForQuery);
        }
        let matching = guard.deferred.as_ref().is_some_and(|deferred| {
            Arc::ptr_eq(&deferred.statement, &portal.statement) && deferred.portal == name
        });
        // A new part's parameters are read before the one it follows runs
        // (in release_held), so that an error in them answers this Execute.
        let mut params = ParamRows::default();
        let pushed = match parameter_types(&mut guard, &portal).await {
            Ok(()) => {
                let Connection {
                    types, deferred, ..
                } = &mut *guard;
                let types = known_types(types);
                match (matching, deferred) {
                    (true, Some(deferred)) => push_parameters(&mut deferred.params, &portal, types),
                    _ => push_parameters(&mut params, &portal, types),
                }
            }
            Err(error) => Err(error),
        };
        if let Err(error) = pushed {
            drop(guard);
            self.release_held(client).await?;
            return Err(error);
        }
        if matching && let Some(deferred) = &mut guard.deferred {
            deferred.push(Owed::Execute);
            let full = deferred.owed.len() >= DEFERRED_MESSAGES;
            drop(guard);
            // A long pipeline runs in parts, so that its parameters and
            // batches stay small in memory; all of it still commits at Sync.
            if full && let Some(error) = Box::pin(self.run_deferred(client)).await? {
                return Err(user_error(&error));
            }
            return Ok(());
        }
        drop(guard);
        self.release_held(client).await?;
        let mut owed = Vec::with_capacity(8);
        owed.push(Owed::Execute);
        connection.lock().await.deferred = Some(Deferred {
            statement: portal.statement.clone(),
            portal: name.to_owned(),
            owed,
            params,
        });
        Ok(())
    }

    /// Bind, as pgwire's, after a held CommandComplete and the deferred
    /// Executes (unless it binds their statement again, see `on_execute`).
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        // A Bind between deferred Executes of its statement is answered
        // with them.
        {
            let connection = self.connection(client);
            let mut connection = connection.lock().await;
            if let Some(deferred) = &mut connection.deferred
                && deferred.portal == portal_name
                && let Some(Entry::Value(statement)) =
                    client.portal_store().get_statement(statement_name)
                && Arc::ptr_eq(&statement, &deferred.statement)
            {
                let portal = Portal::try_new(&message, statement)
                    .and_then(|portal| check_text_parameters(&portal).map(|()| portal));
                match portal {
                    Ok(portal) => {
                        client.portal_store().put_portal(Arc::new(portal));
                        deferred.push(Owed::Bind);
                        return Ok(());
                    }
                    Err(error) => {
                        drop(connection);
                        self.release_held(client).await?;
                        return Err(error);
                    }
                }
            }
        }
        self.release_held(client).await?;
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                check_text_parameters(&portal)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) if message.parameters.is_empty() => {
                client.portal_store().put_empty_portal(portal_name);
            }
            Some(Entry::Empty) => {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "ERROR".to_owned(),
                    "08P01".to_owned(),
                    format!(
                        "bind message supplies {} parameters, but prepared statement \"{}\" requires 0",
                        message.parameters.len(),
                        statement_name
                    ),
                ))));
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// Describe, as pgwire's, after a held CommandComplete; its answers
    /// wait for the Sync or Flush (see `unflushed`).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.release_held(client).await?;
        self._on_describe(&mut Unflushed::new(client), message)
            .await
    }

    /// Flush, after a held CommandComplete.
    async fn on_flush<C>(&self, client: &mut C, _message: Flush) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.release_held(client).await?;
        client.flush().await?;
        Ok(())
    }

    /// Close, as pgwire's, after a held CommandComplete.
    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.release_held(client).await?;
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => client.portal_store().rm_statement(name),
            TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
            _ => {}
        }
        client
            .feed(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<Prepared>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = self.connection(client);
        let mut connection = connection.lock().await;
        let (params, schema) = connection
            .session
            .describe(&target.statement)
            .await
            .map_err(|e| user_error(&e))?;
        let param_types = params.iter().map(|t| encode::wire_type(*t)).collect();
        let fields = encode::described_fields(schema, &Format::UnifiedText)?;
        Ok(DescribeStatementResponse::new(param_types, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        target: &Portal<Prepared>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = self.connection(client);
        let mut connection = connection.lock().await;
        let (_, schema) = connection
            .session
            .describe(&target.statement.statement)
            .await
            .map_err(|e| user_error(&e))?;
        let fields = encode::described_fields(schema, &target.result_column_format)?;
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = self.connection(client);
        let mut connection = connection.lock().await;
        let prepared = &portal.statement.statement;
        let Some(statement) = &prepared.statement else {
            return Ok(Response::EmptyQuery);
        };
        let params = text_parameters(&mut connection, portal).await?;
        connection
            .session
            .before_execute(statement)
            .await
            .map_err(|e| user_error(&e))?;
        let result = connection.session.execute(statement, &params).await;
        send_notices(client, &mut connection.session).await?;
        match result {
            Ok(Output::Deallocate { name, tag }) => deallocate(client, &mut connection, name, &tag)
                .map_err(|error| {
                    connection.session.statement_failed();
                    user_error(&error)
                }),
            Ok(output) => {
                let response =
                    into_response(output, &portal.result_column_format, &mut connection)?;
                drop(connection);
                match response {
                    Response::Query(rows) if max_rows == 0 => {
                        send_all_rows(client, portal, rows).await
                    }
                    response => Ok(response),
                }
            }
            Err(error) => Err(user_error(&error)),
        }
    }

    /// Parse, as pgwire's, also noting the statement's name for
    /// `DEALLOCATE ALL`.
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.release_held(client).await?;
        let name = message
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(statement) => client.portal_store().put_statement(Arc::new(statement)),
            None => client.portal_store().put_empty_statement(&name),
        }
        if name != DEFAULT_NAME {
            let connection = self.connection(client);
            connection.lock().await.prepared.insert(name);
        }
        client
            .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl CopyHandler for Handler {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = self.connection(client);
        let mut connection = connection.lock().await;
        if let Some(copy_in) = connection.copy_in.as_mut() {
            copy_in.feed(&copy_data.data);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = self.connection(client);
        let mut connection = connection.lock().await;
        let Some(copy_in) = connection.copy_in.take() else {
            return Err(user_error(&tempora_sql::Error::not_supported(
                "CopyDone outside COPY",
            )));
        };
        let result = copy_in.finish(&mut connection.session).await;
        if result.is_err() {
            connection.session.statement_failed();
        }
        client.set_transaction_status(wire_status(&connection.session));
        let rows = result.map_err(|e| user_error(&e))?;
        client
            .send(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows as usize).into(),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = self.connection(client);
        let mut connection = connection.lock().await;
        connection.copy_in = None;
        connection.session.statement_failed();
        client.set_transaction_status(wire_status(&connection.session));
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".to_owned(),
            "57014".to_owned(),
            format!("COPY from stdin failed: {}", fail.message),
        )))
    }
}

/// ParameterStatus values sent at startup, as PostgreSQL 15 sends them.
struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let mut parameters: HashMap<String, String> = [
            ("server_version", tempora_sql::SERVER_VERSION),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("is_superuser", "on"),
            ("default_transaction_read_only", "off"),
            ("in_hot_standby", "off"),
            ("scram_iterations", "4096"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        parameters.insert("session_authorization".to_owned(), user);
        parameters.insert(
            "application_name".to_owned(),
            client
                .metadata()
                .get("application_name")
                .cloned()
                .unwrap_or_default(),
        );
        Some(parameters)
    }
}

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Any client that names a role that may log in (the embedded default,
    /// on loopback only).
    Trust,
    /// SCRAM-SHA-256 against the role's stored verifier.
    Scram,
}

/// The roles' SCRAM verifiers, as pgwire's SCRAM exchange asks for them.
#[derive(Debug)]
struct RoleVerifiers {
    engine: Arc<Engine>,
}

// The trait elides LoginInfo's lifetime; async_trait needs the impl to match.
#[allow(elided_lifetimes_in_paths)]
#[async_trait]
impl AuthSource for RoleVerifiers {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        Err(PgWireError::InvalidPassword(
            login.user().unwrap_or_default().to_owned(),
        ))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let user = login.user().unwrap_or_default();
        // A role without a password cannot log in with one, as in PostgreSQL.
        let verifier = self
            .engine
            .role(user)
            .and_then(|role| role.password_verifier)
            .and_then(|v| tempora_sql::roles::parse_verifier(&v))
            .ok_or_else(|| PgWireError::InvalidPassword(user.to_owned()))?;
        Ok((
            ScramSecret::Verifier {
                salt: verifier.salt,
                iterations: verifier.iterations,
                stored_key: verifier.stored_key,
                server_key: verifier.server_key,
            },
            None,
        ))
    }
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message,
    )))
}

impl Handler {
    /// After the client proved itself: the session is made (and can be
    /// canceled) before AuthenticationOk, ParameterStatus, BackendKeyData
    /// and ReadyForQuery go out.
    async fn complete_startup<C>(
        &self,
        client: &mut C,
        final_message: Option<pgwire::messages::startup::Authentication>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(message) = final_message {
            client
                .send(PgWireBackendMessage::Authentication(message))
                .await?;
        }
        let (pid, secret) = self.pids.generate(client);
        client.set_pid_and_secret_key(pid, secret);
        let connection = self.connection(client);
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        connection.lock().await.session.set_user(&user);
        finish_authentication(client, &Parameters).await
    }
}

#[async_trait]
impl StartupHandler for Handler {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(startup) => {
                protocol_negotiation(client, &startup).await?;
                save_startup_parameters_to_metadata(client, &startup);
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let database = client
                    .metadata()
                    .get(METADATA_DATABASE)
                    .cloned()
                    .unwrap_or_else(|| user.clone());
                if self.auth == AuthMode::Trust {
                    match self.engine.role(&user) {
                        None => {
                            return Err(fatal("28000", format!("role \"{user}\" does not exist")));
                        }
                        Some(role) if !role.login => {
                            return Err(fatal(
                                "28000",
                                format!("role \"{user}\" is not permitted to log in"),
                            ));
                        }
                        Some(_) => {}
                    }
                }
                if database != DATABASE {
                    return Err(fatal(
                        "3D000",
                        format!("database \"{database}\" does not exist"),
                    ));
                }
                match self.auth {
                    AuthMode::Trust => self.complete_startup(client, None).await,
                    AuthMode::Scram => {
                        let mechanism = self.scram.create();
                        match self.driver.begin_authentication(client, mechanism).await? {
                            AuthOutcome::InProgress => Ok(()),
                            AuthOutcome::Authenticated { final_message, .. } => {
                                self.complete_startup(client, final_message).await
                            }
                        }
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                match self.driver.advance_authentication(client, message).await {
                    Ok(AuthOutcome::InProgress) => Ok(()),
                    Ok(AuthOutcome::Authenticated { final_message, .. }) => {
                        // A role that may not log in is refused only once it
                        // proved who it is, as PostgreSQL does.
                        let user = client
                            .metadata()
                            .get(METADATA_USER)
                            .cloned()
                            .unwrap_or_default();
                        if !self.engine.role(&user).is_some_and(|r| r.login) {
                            return Err(fatal(
                                "28000",
                                format!("role \"{user}\" is not permitted to log in"),
                            ));
                        }
                        self.complete_startup(client, final_message).await
                    }
                    Err(PgWireError::InvalidPassword(_)) => {
                        let user = client
                            .metadata()
                            .get(METADATA_USER)
                            .cloned()
                            .unwrap_or_default();
                        Err(fatal(
                            "28P01",
                            format!("password authentication failed for user \"{user}\""),
                        ))
                    }
                    Err(error) => Err(error),
                }
            }
            _ => Ok(()),
        }
    }
}

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("TLS certificate and key do not fit together: {0}")]
    Config(#[from] tokio_rustls::rustls::Error),
}

/// The TLS acceptor for a PEM certificate chain and private key, with
/// rustls and the ring provider; clients that ask for SSL (`sslmode=require`)
/// get TLS, others stay plain.
pub fn tls_acceptor(
    certificate: &std::path::Path,
    key: &std::path::Path,
) -> Result<pgwire::tokio::TlsAcceptor, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let pem_error = |path: &std::path::Path, e: rustls_pki_types::pem::Error| TlsError::Pem {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| pem_error(certificate, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(certificate, e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}

/// The handler set pgwire serves a socket with.
pub struct Handlers {
    handler: Arc<Handler>,
}

impl Handlers {
    pub fn new(engine: Arc<Engine>, auth: AuthMode) -> Arc<Handlers> {
        Arc::new(Handlers {
            handler: Handler::new(engine, auth),
        })
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handler.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.handler.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.handler.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.handler.clone()
    }
}

/// A CancelRequest (psql's Ctrl-C) cancels the statement of the session
/// with that process id and secret key; the reply is closing the socket.
#[async_trait]
impl CancelHandler for Handler {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.engine
            .backends()
            .cancel_request(request.pid, &request.secret_key.to_bytes());
    }
}

/// Serves one accepted connection until it closes.
pub async fn serve_connection(
    socket: tokio::net::TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: Arc<Handlers>,
) {
    if let Err(error) = pgwire::tokio::process_socket(socket, tls, handlers).await {
        tracing::debug!(%error, "connection ended with an I/O error");
    }
}
