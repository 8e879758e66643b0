//! Parameters of pipelined Executes, kept as the client sent them until the
//! batch that reads them: a binary value goes straight into its column
//! (see `tempora_types::binary::append_binary`) instead of being printed
//! as text and read back.

use bytes::Bytes;
use tempora_types::PgType;

use crate::error::Result;

/// One bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Text(String),
    /// Sent in binary, as a value of this type.
    Binary(PgType, Bytes),
}

impl Param {
    /// The parameter's text form (None for NULL), for the statements that
    /// read parameters as text.
    pub fn to_text(&self) -> Result<Option<String>> {
        Ok(match self {
            Param::Null => None,
            Param::Text(text) => Some(text.clone()),
            Param::Binary(pg_type, bytes) => {
                Some(tempora_types::binary::decode_to_text(*pg_type, bytes)?)
            }
        })
    }
}

/// A parameter as a batch reads it.
pub(crate) enum ParamRef<'a> {
    Null,
    Text(&'a str),
    Binary(PgType, &'a [u8]),
}

/// The parameters of one Execute, `$1` at index 0.
pub(crate) trait ParamSet {
    fn param(&self, index: usize) -> Option<ParamRef<'_>>;
}

impl ParamSet for [Option<String>] {
    fn param(&self, index: usize) -> Option<ParamRef<'_>> {
        Some(match self.get(index)? {
            Some(text) => ParamRef::Text(text),
            None => ParamRef::Null,
        })
    }
}

impl ParamSet for [Param] {
    fn param(&self, index: usize) -> Option<ParamRef<'_>> {
        Some(match self.get(index)? {
            Param::Null => ParamRef::Null,
            Param::Text(text) => ParamRef::Text(text),
            Param::Binary(pg_type, bytes) => ParamRef::Binary(*pg_type, bytes),
        })
    }
}
