//! Errors raised by the query layer's own functions, with what they mean,
//! so the sql layer can give each its SQLSTATE. They travel inside
//! DataFusion's `External` error.

use datafusion::common::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 42P01.
    #[error("relation \"{name}\" does not exist")]
    UndefinedRelation { name: String },
    /// 42704.
    #[error("type \"{name}\" does not exist")]
    UndefinedType { name: String },
    /// 3F000.
    #[error("schema \"{name}\" does not exist")]
    UndefinedSchema { name: String },
    /// 42704.
    #[error("unrecognized configuration parameter \"{name}\"")]
    UnknownSetting { name: String },
    /// 22023.
    #[error("{message}")]
    InvalidParameter { message: String },
    /// 21000.
    #[error("more than one row returned by a subquery used as an expression")]
    SubqueryRows,
    /// 22025.
    #[error("invalid escape string")]
    InvalidEscape,
    /// 2201B.
    #[error("{message}")]
    InvalidRegex { message: String },
}

impl From<Error> for DataFusionError {
    fn from(error: Error) -> Self {
        DataFusionError::External(Box::new(error))
    }
}

/// An error of tempora's type functions, carried as DataFusion carries
/// external errors (the sql layer reads its SQLSTATE from it).
pub(crate) fn from_types(error: tempora_types::Error) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}
