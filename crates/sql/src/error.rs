//! Errors of statement execution and their PostgreSQL SQLSTATEs.
//!
//! [`Error::sqlstate`] is the one mapping from every failure to a SQLSTATE.
//! It matches every variant of ours and of DataFusion's error without a
//! catch-all arm, so a new variant cannot slip through unmapped; DataFusion's
//! free-text Plan/Execution errors are classified by their wording.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// PostgreSQL error codes tempora reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlState {
    SuccessfulCompletion,
    Warning,
    SyntaxError,
    UndefinedTable,
    UndefinedColumn,
    UndefinedFunction,
    UndefinedObject,
    UndefinedSchema,
    DuplicateTable,
    DuplicateObject,
    AmbiguousColumn,
    DatatypeMismatch,
    InvalidParameterValue,
    InvalidTextRepresentation,
    InvalidBinaryRepresentation,
    InvalidDatetimeFormat,
    DatetimeFieldOverflow,
    NumericValueOutOfRange,
    DivisionByZero,
    StringDataRightTruncation,
    NotNullViolation,
    FeatureNotSupported,
    InvalidTableDefinition,
    ObjectNotInPrerequisiteState,
    InvalidParameterReference,
    InsufficientResources,
    QueryCanceled,
    DataCorrupted,
    IoError,
    InternalError,
    ProtocolViolation,
    BadCopyFileFormat,
    DependentObjectsStillExist,
    DuplicateColumn,
    SequenceLimitExceeded,
    GeneratedAlways,
    ActiveSqlTransaction,
    NoActiveSqlTransaction,
    InFailedSqlTransaction,
    ReadOnlySqlTransaction,
    SerializationFailure,
    DeadlockDetected,
    WrongObjectType,
    InvalidObjectDefinition,
    InvalidSavepointSpecification,
    InvalidSqlStatementName,
    ObjectInUse,
    InvalidPassword,
    /// TimescaleDB: the table is already a hypertable (TS110).
    TsHypertableExists,
    /// TimescaleDB: the table is not a hypertable (TS001).
    TsHypertableNotExists,
    /// TimescaleDB: `create_hypertable` on a table with rows, without `migrate_data` (TS110 family).
    TsTableNotEmpty,
    UniqueViolation,
    CheckViolation,
    InvalidColumnReference,
    CardinalityViolation,
    InvalidEscapeSequence,
    CharacterNotInRepertoire,
    InvalidRegularExpression,
}

impl SqlState {
    /// The five-character code sent in ErrorResponse.
    pub fn code(self) -> &'static str {
        match self {
            SqlState::SuccessfulCompletion => "00000",
            SqlState::Warning => "01000",
            SqlState::SyntaxError => "42601",
            SqlState::UndefinedTable => "42P01",
            SqlState::UndefinedColumn => "42703",
            SqlState::UndefinedFunction => "42883",
            SqlState::UndefinedObject => "42704",
            SqlState::UndefinedSchema => "3F000",
            SqlState::DuplicateTable => "42P07",
            SqlState::DuplicateObject => "42710",
            SqlState::AmbiguousColumn => "42702",
            SqlState::DatatypeMismatch => "42804",
            SqlState::InvalidParameterValue => "22023",
            SqlState::InvalidEscapeSequence => "22025",
            SqlState::CharacterNotInRepertoire => "22021",
            SqlState::InvalidRegularExpression => "2201B",
            SqlState::InvalidTextRepresentation => "22P02",
            SqlState::InvalidBinaryRepresentation => "22P03",
            SqlState::InvalidDatetimeFormat => "22007",
            SqlState::DatetimeFieldOverflow => "22008",
            SqlState::NumericValueOutOfRange => "22003",
            SqlState::DivisionByZero => "22012",
            SqlState::StringDataRightTruncation => "22001",
            SqlState::NotNullViolation => "23502",
            SqlState::FeatureNotSupported => "0A000",
            SqlState::InvalidTableDefinition => "42P16",
            SqlState::ObjectNotInPrerequisiteState => "55000",
            SqlState::InvalidParameterReference => "42P02",
            SqlState::InsufficientResources => "53000",
            SqlState::QueryCanceled => "57014",
            SqlState::DataCorrupted => "XX001",
            SqlState::IoError => "58030",
            SqlState::InternalError => "XX000",
            SqlState::ProtocolViolation => "08P01",
            SqlState::BadCopyFileFormat => "22P04",
            SqlState::DependentObjectsStillExist => "2BP01",
            SqlState::DuplicateColumn => "42701",
            SqlState::SequenceLimitExceeded => "2200H",
            SqlState::GeneratedAlways => "428C9",
            SqlState::ActiveSqlTransaction => "25001",
            SqlState::NoActiveSqlTransaction => "25P01",
            SqlState::InFailedSqlTransaction => "25P02",
            SqlState::ReadOnlySqlTransaction => "25006",
            SqlState::SerializationFailure => "40001",
            SqlState::DeadlockDetected => "40P01",
            SqlState::WrongObjectType => "42809",
            SqlState::InvalidObjectDefinition => "42P17",
            SqlState::InvalidSavepointSpecification => "3B001",
            SqlState::InvalidSqlStatementName => "26000",
            SqlState::ObjectInUse => "55006",
            SqlState::InvalidPassword => "28P01",
            SqlState::TsHypertableExists => "TS110",
            SqlState::TsHypertableNotExists => "TS001",
            SqlState::TsTableNotEmpty => "TS110",
            SqlState::UniqueViolation => "23505",
            SqlState::CheckViolation => "23514",
            SqlState::InvalidColumnReference => "42P10",
            SqlState::CardinalityViolation => "21000",
        }
    }
}

/// A statement failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Syntax { message: String },
    #[error("relation \"{name}\" does not exist")]
    UndefinedTable { name: String },
    #[error("prepared statement \"{name}\" does not exist")]
    UndefinedPreparedStatement { name: String },
    /// 57014: a cancel request or `statement_timeout`.
    #[error("{message}")]
    Canceled { message: String },
    #[error("column \"{column}\" of relation \"{table}\" does not exist")]
    UndefinedColumn { table: String, column: String },
    #[error("schema \"{name}\" does not exist")]
    UndefinedSchema { name: String },
    #[error("relation \"{name}\" already exists")]
    DuplicateTable { name: String },
    #[error("column \"{name}\" specified more than once")]
    DuplicateColumn { name: String },
    #[error("column \"{column}\" of relation \"{table}\" already exists")]
    DuplicateColumnInTable { table: String, column: String },
    #[error("type \"{name}\" does not exist")]
    UndefinedType { name: String },
    #[error("function {signature} does not exist")]
    UndefinedFunction { signature: String },
    #[error("{message}")]
    InvalidParameter { message: String },
    #[error("{feature} is not supported")]
    NotSupported { feature: String },
    /// Not supported, with a message that also says what to do instead.
    #[error("{message}")]
    Unsupported { message: String },
    /// A fault of tempora's own, such as a storage call that panicked (XX000).
    #[error("{message}")]
    Internal { message: String },
    #[error(
        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
    )]
    NotNull { table: String, column: String },
    #[error("{message}")]
    DatatypeMismatch { message: String },
    #[error("{source}")]
    Value {
        #[source]
        source: tempora_types::Error,
    },
    #[error("{message}")]
    Copy { message: String, code: SqlState },
    #[error(
        "cannot insert a non-DEFAULT value into column \"{column}\"\nDETAIL: Column \"{column}\" is an identity column defined as GENERATED ALWAYS."
    )]
    IdentityAlways { column: String },
    #[error(
        "column \"{column}\" can only be updated to DEFAULT\nDETAIL: Column \"{column}\" is an identity column defined as GENERATED ALWAYS."
    )]
    IdentityUpdate { column: String },
    /// A definition that cannot be made (42P16), such as a view replaced
    /// without one of its columns.
    #[error("{message}")]
    InvalidTableDefinition { message: String },
    /// An object whose definition is unusable (42P17), such as a view that
    /// reads itself.
    #[error("{message}")]
    InvalidObjectDefinition { message: String },
    /// A statement for one kind of relation names another kind (42809).
    #[error("{message}")]
    WrongObjectType { message: String },
    /// DROP of an object others depend on, without CASCADE (2BP01).
    #[error("{message}\nDETAIL: {detail}")]
    DependentObjects { message: String, detail: String },
    /// Transaction control and transaction-state errors (25xxx, 3B001).
    #[error("{message}")]
    Transaction { message: String, code: SqlState },
    /// An error PostgreSQL defines by its SQLSTATE and message alone.
    #[error("{message}")]
    Coded { message: String, code: SqlState },
    #[error("{message}")]
    UndefinedObject { message: String },
    #[error("table \"{name}\" is already a hypertable")]
    AlreadyHypertable { name: String },
    #[error("table \"{name}\" is not a hypertable")]
    NotHypertable { name: String },
    #[error("table \"{name}\" is not empty")]
    TableNotEmpty { name: String },
    #[error("extension \"{name}\" is not available")]
    ExtensionNotAvailable { name: String },
    #[error("extension \"{name}\" already exists")]
    DuplicateExtension { name: String },
    #[error("unrecognized configuration parameter \"{name}\"")]
    UnknownSetting { name: String },
    #[error(transparent)]
    DataFusion {
        #[from]
        source: DataFusionError,
    },
    #[error(transparent)]
    Storage {
        #[from]
        source: tempora_storage::Error,
    },
    #[error(transparent)]
    Catalog {
        #[from]
        source: tempora_catalog::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tempora_types::Error> for Error {
    fn from(source: tempora_types::Error) -> Self {
        Error::Value { source }
    }
}

impl From<ArrowError> for Error {
    fn from(source: ArrowError) -> Self {
        Error::DataFusion {
            source: DataFusionError::ArrowError(Box::new(source), None),
        }
    }
}

impl Error {
    pub fn not_supported(feature: impl Into<String>) -> Error {
        Error::NotSupported {
            feature: feature.into(),
        }
    }

    /// Text that is not UTF-8, as PostgreSQL reports it: the bytes of the
    /// first bad sequence (as many as its first byte says it has).
    pub fn invalid_utf8(bytes: &[u8]) -> Error {
        let at = std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to());
        let first = bytes.get(at).copied().unwrap_or(0);
        let length = match first {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        let shown: Vec<String> = bytes[at.min(bytes.len())..]
            .iter()
            .take(length)
            .map(|b| format!("0x{b:02x}"))
            .collect();
        Error::Coded {
            message: format!(
                "invalid byte sequence for encoding \"UTF8\": {}",
                shown.join(" ")
            ),
            code: SqlState::CharacterNotInRepertoire,
        }
    }

    /// The SQLSTATE a client sees for this error.
    pub fn sqlstate(&self) -> SqlState {
        match self {
            Error::Syntax { .. } => SqlState::SyntaxError,
            Error::UndefinedTable { .. } => SqlState::UndefinedTable,
            Error::UndefinedPreparedStatement { .. } => SqlState::InvalidSqlStatementName,
            Error::Canceled { .. } => SqlState::QueryCanceled,
            Error::UndefinedColumn { .. } => SqlState::UndefinedColumn,
            Error::UndefinedSchema { .. } => SqlState::UndefinedSchema,
            Error::DuplicateTable { .. } => SqlState::DuplicateTable,
            Error::DuplicateColumn { .. } => SqlState::DuplicateObject,
            Error::DuplicateColumnInTable { .. } => SqlState::DuplicateColumn,
            Error::UndefinedType { .. } => SqlState::UndefinedObject,
            Error::UndefinedFunction { .. } => SqlState::UndefinedFunction,
            Error::InvalidParameter { .. } => SqlState::InvalidParameterValue,
            Error::NotSupported { .. } | Error::Unsupported { .. } => SqlState::FeatureNotSupported,
            Error::Internal { .. } => SqlState::InternalError,
            Error::NotNull { .. } => SqlState::NotNullViolation,
            Error::DatatypeMismatch { .. } => SqlState::DatatypeMismatch,
            Error::Value { source } => value_sqlstate(source),
            Error::Copy { code, .. }
            | Error::Transaction { code, .. }
            | Error::Coded { code, .. } => *code,
            Error::UndefinedObject { .. } => SqlState::UndefinedObject,
            Error::DependentObjects { .. } => SqlState::DependentObjectsStillExist,
            Error::WrongObjectType { .. } => SqlState::WrongObjectType,
            Error::InvalidTableDefinition { .. } => SqlState::InvalidTableDefinition,
            Error::InvalidObjectDefinition { .. } => SqlState::InvalidObjectDefinition,
            Error::IdentityAlways { .. } | Error::IdentityUpdate { .. } => {
                SqlState::GeneratedAlways
            }
            Error::AlreadyHypertable { .. } => SqlState::TsHypertableExists,
            Error::NotHypertable { .. } => SqlState::TsHypertableNotExists,
            Error::TableNotEmpty { .. } => SqlState::TsTableNotEmpty,
            Error::ExtensionNotAvailable { .. } => SqlState::FeatureNotSupported,
            Error::DuplicateExtension { .. } => SqlState::DuplicateObject,
            Error::UnknownSetting { .. } => SqlState::UndefinedObject,
            Error::DataFusion { source } => datafusion_sqlstate(source),
            Error::Storage { source } => storage_sqlstate(source),
            Error::Catalog { source } => catalog_sqlstate(source),
        }
    }

    /// The message a client sees: ours verbatim, DataFusion's without its
    /// internal prefixes ("Error during planning: ...").
    pub fn client_message(&self) -> String {
        match self {
            Error::DataFusion { source } => datafusion_message(source),
            Error::Storage {
                source: tempora_storage::Error::Catalog { source },
            }
            | Error::Catalog { source } => source.to_string(),
            other => other.to_string(),
        }
    }
}

fn value_sqlstate(error: &tempora_types::Error) -> SqlState {
    match error {
        // PostgreSQL's date and time input reports bad syntax as 22007.
        tempora_types::Error::InvalidText { type_name, .. }
            if ["timestamp", "date", "interval", "time "]
                .iter()
                .any(|word| type_name.starts_with(word)) =>
        {
            SqlState::InvalidDatetimeFormat
        }
        tempora_types::Error::InvalidText { .. } => SqlState::InvalidTextRepresentation,
        tempora_types::Error::OutOfRange { .. } => SqlState::NumericValueOutOfRange,
        tempora_types::Error::DatetimeOutOfRange { .. } => SqlState::DatetimeFieldOverflow,
        tempora_types::Error::StringTooLong { .. } => SqlState::StringDataRightTruncation,
        tempora_types::Error::InvalidBinary { .. } => SqlState::InvalidBinaryRepresentation,
        tempora_types::Error::UnsupportedArrowType { .. } => SqlState::FeatureNotSupported,
    }
}

fn query_sqlstate(error: &tempora_query::error::Error) -> SqlState {
    use tempora_query::error::Error as E;
    match error {
        E::UndefinedRelation { .. } => SqlState::UndefinedTable,
        E::UndefinedType { .. } | E::UnknownSetting { .. } => SqlState::UndefinedObject,
        E::UndefinedSchema { .. } => SqlState::UndefinedSchema,
        E::InvalidParameter { .. } => SqlState::InvalidParameterValue,
        E::SubqueryRows => SqlState::CardinalityViolation,
        E::InvalidEscape => SqlState::InvalidEscapeSequence,
        E::InvalidRegex { .. } => SqlState::InvalidRegularExpression,
    }
}

fn storage_sqlstate(error: &tempora_storage::Error) -> SqlState {
    match error {
        tempora_storage::Error::Io { .. } => SqlState::IoError,
        tempora_storage::Error::Corrupt { .. } | tempora_storage::Error::CorruptRecord { .. } => {
            SqlState::DataCorrupted
        }
        tempora_storage::Error::WalFailed { .. } => SqlState::IoError,
        tempora_storage::Error::Locked { .. } => SqlState::ObjectNotInPrerequisiteState,
        tempora_storage::Error::Arrow { .. } | tempora_storage::Error::Parquet { .. } => {
            SqlState::InternalError
        }
        tempora_storage::Error::Catalog { source } => catalog_sqlstate(source),
        tempora_storage::Error::NullTime { .. } => SqlState::NotNullViolation,
        tempora_storage::Error::SchemaMismatch { .. } => SqlState::DatatypeMismatch,
        tempora_storage::Error::TableDropped { .. } => SqlState::UndefinedTable,
        tempora_storage::Error::ContainsNulls { .. } => SqlState::NotNullViolation,
        tempora_storage::Error::Conflict { .. } => SqlState::SerializationFailure,
        tempora_storage::Error::UniqueViolation { .. } => SqlState::UniqueViolation,
        tempora_storage::Error::TentativeDataChange { .. } => SqlState::ActiveSqlTransaction,
    }
}

fn catalog_sqlstate(error: &tempora_catalog::Error) -> SqlState {
    match error {
        tempora_catalog::Error::Database { .. } => SqlState::IoError,
        tempora_catalog::Error::Corrupt { .. } => SqlState::DataCorrupted,
        tempora_catalog::Error::TableExists { .. }
        | tempora_catalog::Error::SequenceExists { .. } => SqlState::DuplicateTable,
        tempora_catalog::Error::TableNotFound { .. }
        | tempora_catalog::Error::SequenceNotFound { .. } => SqlState::UndefinedTable,
        tempora_catalog::Error::SequenceExhausted { .. } => SqlState::SequenceLimitExceeded,
        tempora_catalog::Error::Conflict { .. } => SqlState::SerializationFailure,
    }
}

/// PostgreSQL's words for Arrow's "Can't cast value 40000 to type Int16",
/// a number that does not fit the integer type it is cast to.
fn cast_out_of_range(message: &str) -> Option<&'static str> {
    let (_, rest) = message.split_once("Can't cast value ")?;
    let (value, target) = rest.split_once(" to type ")?;
    value.parse::<f64>().ok()?;
    match target.trim() {
        "Int16" => Some("smallint out of range"),
        "Int32" => Some("integer out of range"),
        "Int64" => Some("bigint out of range"),
        _ => None,
    }
}

fn arrow_sqlstate(error: &ArrowError) -> SqlState {
    match error {
        ArrowError::CastError(message) | ArrowError::ParseError(message) => {
            if message.contains("overflow")
                || cast_out_of_range(message).is_some()
                || message.contains("too large")
                || message.contains("out of range")
            {
                SqlState::NumericValueOutOfRange
            } else {
                SqlState::InvalidTextRepresentation
            }
        }
        ArrowError::DivideByZero => SqlState::DivisionByZero,
        ArrowError::ArithmeticOverflow(_) => SqlState::NumericValueOutOfRange,
        ArrowError::MemoryError(_) => SqlState::InsufficientResources,
        ArrowError::IoError(_, _) => SqlState::IoError,
        ArrowError::ExternalError(inner) => match inner.downcast_ref::<DataFusionError>() {
            Some(inner) => datafusion_sqlstate(inner),
            None => SqlState::InternalError,
        },
        ArrowError::InvalidArgumentError(message) | ArrowError::ComputeError(message) => {
            message_sqlstate(message).unwrap_or(SqlState::InternalError)
        }
        ArrowError::NotYetImplemented(_) => SqlState::FeatureNotSupported,
        ArrowError::SchemaError(_)
        | ArrowError::CsvError(_)
        | ArrowError::JsonError(_)
        | ArrowError::AvroError(_)
        | ArrowError::IpcError(_)
        | ArrowError::ParquetError(_)
        | ArrowError::CDataInterface(_)
        | ArrowError::DictionaryKeyOverflowError
        | ArrowError::RunEndIndexOverflowError
        | ArrowError::OffsetOverflowError(_) => SqlState::InternalError,
    }
}

/// Classifies DataFusion's plan and execution errors, which are free text.
fn message_sqlstate(message: &str) -> Option<SqlState> {
    let lower = message.to_ascii_lowercase();
    let rules: [(&str, SqlState); 15] = [
        // A function's own argument check: "function f(text) does not exist".
        ("coercion failed", SqlState::UndefinedFunction),
        ("not found", SqlState::UndefinedTable),
        ("does not exist", SqlState::UndefinedTable),
        ("no field named", SqlState::UndefinedColumn),
        ("invalid function", SqlState::UndefinedFunction),
        ("no function matches", SqlState::UndefinedFunction),
        ("does not support", SqlState::DatatypeMismatch),
        ("cannot be cast", SqlState::DatatypeMismatch),
        ("cannot infer common", SqlState::DatatypeMismatch),
        ("divide by zero", SqlState::DivisionByZero),
        ("overflow", SqlState::NumericValueOutOfRange),
        ("unsupported", SqlState::FeatureNotSupported),
        ("not supported", SqlState::FeatureNotSupported),
        ("not implemented", SqlState::FeatureNotSupported),
        ("ambiguous", SqlState::AmbiguousColumn),
    ];
    if lower.contains("function") && (lower.contains("not found") || lower.contains("invalid")) {
        return Some(SqlState::UndefinedFunction);
    }
    if lower.contains("column") && (lower.contains("not found") || lower.contains("no field")) {
        return Some(SqlState::UndefinedColumn);
    }
    if lower.contains("type coercion")
        || lower.contains("coerce")
        || lower.contains("cannot get result type")
    {
        return Some(SqlState::UndefinedFunction);
    }
    if lower.contains("timestamp out of range")
        || lower.contains("date out of range")
        || lower.contains("interval out of range")
    {
        return Some(SqlState::DatetimeFieldOverflow);
    }
    if lower.contains("time_bucket width") {
        return Some(SqlState::InvalidParameterValue);
    }
    rules
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|(_, state)| *state)
}

fn datafusion_sqlstate(error: &DataFusionError) -> SqlState {
    match error {
        DataFusionError::ArrowError(inner, _) => arrow_sqlstate(inner),
        DataFusionError::ParquetError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::IoError(_) => SqlState::IoError,
        DataFusionError::SQL(_, _) => SqlState::SyntaxError,
        DataFusionError::NotImplemented(_)
        | DataFusionError::Substrait(_)
        | DataFusionError::Ffi(_) => SqlState::FeatureNotSupported,
        DataFusionError::Internal(_) => SqlState::InternalError,
        DataFusionError::Plan(message) => {
            message_sqlstate(message).unwrap_or(SqlState::SyntaxError)
        }
        DataFusionError::Configuration(_) => SqlState::InvalidParameterValue,
        DataFusionError::SchemaError(inner, _) => match inner.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { .. } => SqlState::UndefinedColumn,
            datafusion::common::SchemaError::AmbiguousReference { .. } => SqlState::AmbiguousColumn,
            datafusion::common::SchemaError::DuplicateQualifiedField { .. }
            | datafusion::common::SchemaError::DuplicateUnqualifiedField { .. } => {
                SqlState::DuplicateObject
            }
        },
        DataFusionError::Execution(message) => {
            message_sqlstate(message).unwrap_or(SqlState::InternalError)
        }
        DataFusionError::ExecutionJoin(_) => SqlState::InternalError,
        DataFusionError::ResourcesExhausted(_) => SqlState::InsufficientResources,
        DataFusionError::External(inner) => {
            if let Some(error) = inner.downcast_ref::<Error>() {
                error.sqlstate()
            } else if let Some(error) = inner.downcast_ref::<tempora_types::Error>() {
                value_sqlstate(error)
            } else if let Some(error) = inner.downcast_ref::<tempora_query::error::Error>() {
                query_sqlstate(error)
            } else if let Some(error) = inner.downcast_ref::<tempora_storage::Error>() {
                storage_sqlstate(error)
            } else if let Some(error) = inner.downcast_ref::<DataFusionError>() {
                datafusion_sqlstate(error)
            } else if let Some(error) = inner.downcast_ref::<ArrowError>() {
                arrow_sqlstate(error)
            } else {
                SqlState::InternalError
            }
        }
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            datafusion_sqlstate(inner)
        }
        DataFusionError::Shared(inner) => datafusion_sqlstate(inner),
        DataFusionError::Collection(errors) => errors
            .first()
            .map(datafusion_sqlstate)
            .unwrap_or(SqlState::InternalError),
    }
}

/// DataFusion's message without the "Error during planning: " style prefixes.
fn datafusion_message(error: &DataFusionError) -> String {
    match error {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            datafusion_message(inner)
        }
        DataFusionError::Shared(inner) => datafusion_message(inner),
        DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
            ArrowError::CastError(m) | ArrowError::ParseError(m) | ArrowError::ComputeError(m) => {
                cast_out_of_range(m).map_or_else(|| m.clone(), str::to_owned)
            }
            ArrowError::DivideByZero => "division by zero".to_owned(),
            other => other.to_string(),
        },
        DataFusionError::Plan(m)
        | DataFusionError::Execution(m)
        | DataFusionError::NotImplemented(m) => postgres_wording(&first_line(m)),
        DataFusionError::SchemaError(inner, _) => match inner.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { field, .. } => {
                format!("column \"{}\" does not exist", field.name)
            }
            other => first_line(&other.to_string()),
        },
        DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
            Some(error) => error.client_message(),
            None => inner.to_string(),
        },
        other => first_line(&other.to_string()),
    }
}

/// DataFusion's wording of common errors, reworded as PostgreSQL words them.
fn postgres_wording(message: &str) -> String {
    if message.eq_ignore_ascii_case("timestamp out of range") {
        return "timestamp out of range".to_owned();
    }
    if let Some(words) = cast_out_of_range(message) {
        return words.to_owned();
    }
    // "table 'postgres.public.nope' not found"
    if let Some(rest) = message.strip_prefix("table '")
        && let Some(name) = rest.strip_suffix("' not found")
    {
        let name = name.rsplit('.').next().unwrap_or(name);
        return format!("relation \"{name}\" does not exist");
    }
    // "Function 'sum' user-defined coercion failed with: Error during
    // planning: function sum(text) does not exist. No function matches ...":
    // the function's own words.
    if let Some((_, reason)) = message.split_once("coercion failed with: ") {
        let reason = reason
            .strip_prefix("Error during planning: ")
            .unwrap_or(reason);
        let reason = reason
            .split(". No function matches")
            .next()
            .unwrap_or(reason);
        return reason.to_owned();
    }
    // "... No function matches the given name and argument types
    // 'f(Int64, Utf8)'. ...": named with PostgreSQL's type names.
    if let Some((_, rest)) =
        message.split_once("No function matches the given name and argument types '")
        && let Some((signature, _)) = rest.split_once('\'')
        && let Some((name, arguments)) = signature.split_once('(')
    {
        let arguments: Vec<String> = arguments
            .trim_end_matches(')')
            .split(", ")
            .filter(|a| !a.is_empty())
            .map(|argument| {
                argument
                    .parse::<datafusion::arrow::datatypes::DataType>()
                    .ok()
                    .and_then(|t| tempora_types::PgType::of_arrow(&t).ok())
                    .map_or_else(|| argument.to_owned(), |t| t.without_modifier().to_string())
            })
            .collect();
        return format!("function {name}({}) does not exist", arguments.join(", "));
    }
    // "Invalid function 'nope'."
    if let Some(rest) = message.strip_prefix("Invalid function '")
        && let Some((name, _)) = rest.split_once('\'')
    {
        return format!("function {name} does not exist");
    }
    message.to_owned()
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_precisely() {
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::Syntax {
                    message: "x".into(),
                },
                "42601",
            ),
            (Error::UndefinedTable { name: "t".into() }, "42P01"),
            (
                Error::UndefinedColumn {
                    table: "t".into(),
                    column: "c".into(),
                },
                "42703",
            ),
            (Error::DuplicateTable { name: "t".into() }, "42P07"),
            (Error::not_supported("triggers"), "0A000"),
            (
                Error::NotNull {
                    table: "t".into(),
                    column: "c".into(),
                },
                "23502",
            ),
            (
                tempora_types::text::parse_int4("x").unwrap_err().into(),
                "22P02",
            ),
            (
                tempora_types::text::parse_int2("99999").unwrap_err().into(),
                "22003",
            ),
            (
                Error::Canceled {
                    message: "canceling statement due to statement timeout".into(),
                },
                "57014",
            ),
            (
                DataFusionError::Plan("table 'postgres.public.nope' not found".into()).into(),
                "42P01",
            ),
            (
                DataFusionError::Plan("Invalid function 'nope'".into()).into(),
                "42883",
            ),
            (
                DataFusionError::ArrowError(Box::new(ArrowError::DivideByZero), None).into(),
                "22012",
            ),
            (
                DataFusionError::Context(
                    "ctx".into(),
                    Box::new(DataFusionError::NotImplemented("x".into())),
                )
                .into(),
                "0A000",
            ),
            (
                DataFusionError::External(Box::new(Error::NotNull {
                    table: "t".into(),
                    column: "c".into(),
                }))
                .into(),
                "23502",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.sqlstate().code(), code, "{error:?}");
        }
    }

    #[test]
    fn datafusion_prefixes_are_stripped() {
        let error: Error =
            DataFusionError::Plan("table 'postgres.public.x' not found".into()).into();
        assert_eq!(error.client_message(), "relation \"x\" does not exist");
        let error: Error = DataFusionError::Execution("something broke\nmore detail".into()).into();
        assert_eq!(error.client_message(), "something broke");
    }
}
