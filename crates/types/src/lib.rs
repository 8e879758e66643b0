//! PostgreSQL types as tempora stores and prints them.
//!
//! Every column has a [`PgType`]: the type the client sees (its OID, its name,
//! its text and binary wire formats). Underneath, each PgType is stored as one
//! Arrow type; types Arrow has no name for (uuid, json, jsonb) are stored as
//! Arrow `Utf8` with the PgType recorded in the field metadata under
//! [`PG_TYPE_METADATA_KEY`], so result columns keep their PostgreSQL identity.
//!
//! ```text
//!  wire text / COPY text ──parse──> Arrow value ──format──> wire text
//!  wire binary ─────────decode────>             ──encode──> wire binary
//! ```
//!
//! Time is microseconds (DESIGN.md decision 3): `timestamptz` is
//! `Timestamp(Microsecond, "+00:00")`, `timestamp` is `Timestamp(Microsecond)`.

pub mod binary;
pub mod datetime;
pub mod json;
pub mod storage_size;
pub mod text;
pub mod wire;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use serde::{Deserialize, Serialize};

/// Field metadata key that carries the PostgreSQL type of an Arrow field.
pub const PG_TYPE_METADATA_KEY: &str = "tempora.pg_type";

/// The time zone string tempora gives every `timestamptz` Arrow type. It is
/// DataFusion's own default, so `now()` and stored columns compare without casts.
pub const UTC_ZONE: &str = "+00:00";

/// Errors converting values between their wire formats and Arrow.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// The text is not a valid value of the type (SQLSTATE 22P02, or 22007/22008 for dates).
    #[error("invalid input syntax for type {type_name}: \"{input}\"")]
    InvalidText { type_name: String, input: String },
    /// The value does not fit the type (SQLSTATE 22003).
    #[error("{message}")]
    OutOfRange { message: String },
    /// A date/time field is out of range (SQLSTATE 22008).
    #[error("date/time field value out of range: \"{input}\"")]
    DatetimeOutOfRange { input: String },
    /// A string is longer than its `varchar(n)` (SQLSTATE 22001).
    #[error("value too long for type character varying({max_chars})")]
    StringTooLong { max_chars: u32 },
    /// A binary value has the wrong length or layout (SQLSTATE 22P03).
    #[error("incorrect binary data format for type {type_name}")]
    InvalidBinary { type_name: String },
    /// The Arrow type cannot be shown to a client.
    #[error("type {data_type} cannot be sent to a client")]
    UnsupportedArrowType { data_type: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A PostgreSQL column type tempora supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric(precision, scale)`; unconstrained `numeric` is stored as
    /// `numeric(38, 10)` and printed without trailing zeros.
    Numeric {
        precision: Option<u8>,
        scale: Option<i8>,
    },
    Text,
    Varchar {
        max_chars: Option<u32>,
    },
    Bytea,
    Timestamptz,
    Timestamp,
    Date,
    Interval,
    Uuid,
    Json,
    Jsonb,
    /// A one-dimensional array of int8 (what `histogram` returns).
    Int8Array,
    /// A one-dimensional array of text.
    TextArray,
    /// A one-dimensional array of float8.
    Float8Array,
    Int2Array,
    Int4Array,
    BoolArray,
    /// The system catalogs' types: object identifiers, names, single-byte
    /// `"char"` codes, the vectors of `pg_index` and `pg_proc`.
    Oid,
    Name,
    Char,
    Int2Vector,
    OidVector,
    OidArray,
    NameArray,
    CharArray,
    /// A composite value (an Arrow struct), as a function returns one.
    Record,
}

/// Precision and scale used for an unconstrained `numeric`.
pub const NUMERIC_DEFAULT_PRECISION: u8 = 38;
pub const NUMERIC_DEFAULT_SCALE: i8 = 10;

impl PgType {
    /// The type's OID in `pg_type`.
    pub fn oid(&self) -> u32 {
        match self {
            PgType::Bool => 16,
            PgType::Bytea => 17,
            PgType::Int8 => 20,
            PgType::Int2 => 21,
            PgType::Int4 => 23,
            PgType::Text => 25,
            PgType::Json => 114,
            PgType::Float4 => 700,
            PgType::Float8 => 701,
            PgType::Varchar { .. } => 1043,
            PgType::Date => 1082,
            PgType::Timestamp => 1114,
            PgType::Timestamptz => 1184,
            PgType::Interval => 1186,
            PgType::Numeric { .. } => 1700,
            PgType::Uuid => 2950,
            PgType::Jsonb => 3802,
            PgType::Int8Array => 1016,
            PgType::TextArray => 1009,
            PgType::Float8Array => 1022,
            PgType::Int2Array => 1005,
            PgType::Int4Array => 1007,
            PgType::BoolArray => 1000,
            PgType::Oid => 26,
            PgType::Name => 19,
            PgType::Char => 18,
            PgType::Int2Vector => 22,
            PgType::OidVector => 30,
            PgType::OidArray => 1028,
            PgType::NameArray => 1003,
            PgType::CharArray => 1002,
            PgType::Record => 2249,
        }
    }

    /// The element type of an array (or catalog vector) type.
    pub fn element(&self) -> Option<PgType> {
        Some(match self {
            PgType::Int8Array => PgType::Int8,
            PgType::TextArray => PgType::Text,
            PgType::Float8Array => PgType::Float8,
            PgType::Int2Array | PgType::Int2Vector => PgType::Int2,
            PgType::Int4Array => PgType::Int4,
            PgType::BoolArray => PgType::Bool,
            PgType::OidArray | PgType::OidVector => PgType::Oid,
            PgType::NameArray => PgType::Name,
            PgType::CharArray => PgType::Char,
            _ => return None,
        })
    }

    /// The array type whose elements are of this type, if tempora has it.
    pub fn array_of(&self) -> Option<PgType> {
        Some(match self {
            PgType::Int8 => PgType::Int8Array,
            PgType::Text | PgType::Varchar { .. } => PgType::TextArray,
            PgType::Float8 | PgType::Float4 => PgType::Float8Array,
            PgType::Int2 => PgType::Int2Array,
            PgType::Int4 => PgType::Int4Array,
            PgType::Bool => PgType::BoolArray,
            PgType::Oid => PgType::OidArray,
            PgType::Name => PgType::NameArray,
            PgType::Char => PgType::CharArray,
            _ => return None,
        })
    }

    /// Whether the text form separates elements by spaces, without braces
    /// (`int2vector`, `oidvector`), rather than `{1,2}`.
    pub fn is_vector(&self) -> bool {
        matches!(self, PgType::Int2Vector | PgType::OidVector)
    }

    /// `pg_attribute.atttypmod` for this type: -1 when unconstrained.
    pub fn type_modifier(&self) -> i32 {
        match self {
            PgType::Varchar { max_chars: Some(n) } => *n as i32 + 4,
            PgType::Numeric {
                precision: Some(p),
                scale,
            } => ((*p as i32) << 16) + (scale.unwrap_or(0) as i32 & 0xffff) + 4,
            _ => -1,
        }
    }

    /// `pg_type.typlen`: the fixed width in bytes, or -1 for variable width.
    pub fn type_size(&self) -> i16 {
        match self {
            PgType::Bool => 1,
            PgType::Int2 => 2,
            PgType::Int4 | PgType::Float4 | PgType::Date => 4,
            PgType::Int8 | PgType::Float8 | PgType::Timestamp | PgType::Timestamptz => 8,
            PgType::Interval | PgType::Uuid => 16,
            PgType::Oid => 4,
            PgType::Char => 1,
            PgType::Name => 64,
            _ => -1,
        }
    }

    /// The Arrow type values of this PgType are stored as.
    pub fn arrow_type(&self) -> DataType {
        match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            PgType::Numeric { precision, scale } => {
                let precision = precision.unwrap_or(NUMERIC_DEFAULT_PRECISION);
                let scale = match (self.is_unconstrained_numeric(), scale) {
                    (true, _) => NUMERIC_DEFAULT_SCALE,
                    (false, scale) => scale.unwrap_or(0),
                };
                DataType::Decimal128(precision, scale)
            }
            PgType::Text
            | PgType::Varchar { .. }
            | PgType::Uuid
            | PgType::Json
            | PgType::Jsonb
            | PgType::Name
            | PgType::Char => DataType::Utf8,
            PgType::Oid => DataType::UInt32,
            PgType::Bytea => DataType::Binary,
            PgType::Timestamptz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC_ZONE)))
            }
            PgType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgType::Date => DataType::Date32,
            PgType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            PgType::Int8Array
            | PgType::TextArray
            | PgType::Float8Array
            | PgType::Int2Array
            | PgType::Int4Array
            | PgType::BoolArray
            | PgType::Int2Vector
            | PgType::OidVector
            | PgType::OidArray
            | PgType::NameArray
            | PgType::CharArray => {
                let element = self.element().unwrap_or(PgType::Text).arrow_type();
                DataType::List(Arc::new(Field::new_list_field(element, true)))
            }
            // Records are only ever computed; their fields come with them.
            PgType::Record => DataType::Struct(Default::default()),
        }
    }

    fn is_unconstrained_numeric(&self) -> bool {
        matches!(
            self,
            PgType::Numeric {
                precision: None,
                ..
            }
        )
    }

    /// Whether numeric output drops trailing fractional zeros (unconstrained numeric).
    pub fn trims_numeric_zeros(&self) -> bool {
        self.is_unconstrained_numeric()
    }

    /// An Arrow field of this type, carrying the PgType in its metadata.
    /// (Not for records, whose Arrow type depends on their fields.)
    pub fn arrow_field(&self, name: &str, nullable: bool) -> Field {
        let metadata = HashMap::from([(PG_TYPE_METADATA_KEY.to_owned(), self.to_string())]);
        Field::new(name, self.arrow_type(), nullable).with_metadata(metadata)
    }

    /// The PgType of an Arrow field: its metadata if present, else derived from the Arrow type.
    pub fn of_field(field: &Field) -> Result<PgType> {
        if let Some(name) = field.metadata().get(PG_TYPE_METADATA_KEY)
            && let Some(pg_type) = PgType::parse_name(name)
            && pg_type.arrow_type() == *field.data_type()
        {
            return Ok(pg_type);
        }
        PgType::of_arrow(field.data_type())
    }

    /// The PgType a client sees for a computed value of this Arrow type.
    pub fn of_arrow(data_type: &DataType) -> Result<PgType> {
        Ok(match data_type {
            DataType::Boolean => PgType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2,
            DataType::Int32 | DataType::UInt16 => PgType::Int4,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => PgType::Int8,
            DataType::Float16 | DataType::Float32 => PgType::Float4,
            DataType::Float64 => PgType::Float8,
            DataType::Decimal32(p, s)
            | DataType::Decimal64(p, s)
            | DataType::Decimal128(p, s)
            | DataType::Decimal256(p, s) => PgType::Numeric {
                precision: Some(*p),
                scale: Some(*s),
            },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                PgType::Text
            }
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => PgType::Bytea,
            DataType::Timestamp(_, Some(_)) => PgType::Timestamptz,
            DataType::Timestamp(_, None) => PgType::Timestamp,
            DataType::Date32 | DataType::Date64 => PgType::Date,
            DataType::Interval(_) | DataType::Duration(_) => PgType::Interval,
            DataType::Dictionary(_, value) => PgType::of_arrow(value)?,
            DataType::Struct(_) => PgType::Record,
            DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => {
                match item.data_type() {
                    DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2Array,
                    DataType::Int32 | DataType::UInt16 => PgType::Int4Array,
                    DataType::UInt32 => PgType::OidArray,
                    DataType::Int64 | DataType::UInt64 => PgType::Int8Array,
                    DataType::Boolean => PgType::BoolArray,
                    DataType::Float32 | DataType::Float64 => PgType::Float8Array,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PgType::TextArray,
                    other => {
                        return Err(Error::UnsupportedArrowType {
                            data_type: format!("{other}[]"),
                        });
                    }
                }
            }
            other => {
                return Err(Error::UnsupportedArrowType {
                    data_type: other.to_string(),
                });
            }
        })
    }

    /// Parse a type name as written by [`fmt::Display`] (and accepted in SQL).
    pub fn parse_name(name: &str) -> Option<PgType> {
        let lower = name.trim().to_ascii_lowercase();
        let (base, args) = match lower.find('(') {
            Some(open) => {
                let close = lower.rfind(')')?;
                (lower[..open].trim(), Some(&lower[open + 1..close]))
            }
            None => (lower.as_str(), None),
        };
        let numbers: Vec<i64> = match args {
            Some(args) => args
                .split(',')
                .map(|part| part.trim().parse::<i64>().ok())
                .collect::<Option<Vec<_>>>()?,
            None => Vec::new(),
        };
        Some(match (base, numbers.as_slice()) {
            ("bool" | "boolean", []) => PgType::Bool,
            ("int2" | "smallint" | "smallserial" | "serial2", []) => PgType::Int2,
            ("int4" | "int" | "integer" | "serial" | "serial4", []) => PgType::Int4,
            ("int8" | "bigint" | "bigserial" | "serial8", []) => PgType::Int8,
            ("float4" | "real", []) => PgType::Float4,
            ("float8" | "double precision" | "float", []) => PgType::Float8,
            ("numeric" | "decimal", []) => PgType::Numeric {
                precision: None,
                scale: None,
            },
            ("numeric" | "decimal", [p]) => PgType::Numeric {
                precision: Some(u8::try_from(*p).ok()?),
                scale: Some(0),
            },
            ("numeric" | "decimal", [p, s]) => PgType::Numeric {
                precision: Some(u8::try_from(*p).ok()?),
                scale: Some(i8::try_from(*s).ok()?),
            },
            ("text", []) => PgType::Text,
            ("varchar" | "character varying", []) => PgType::Varchar { max_chars: None },
            ("varchar" | "character varying", [n]) => PgType::Varchar {
                max_chars: Some(u32::try_from(*n).ok()?),
            },
            ("bytea", []) => PgType::Bytea,
            ("timestamptz" | "timestamp with time zone", []) => PgType::Timestamptz,
            ("timestamp" | "timestamp without time zone", []) => PgType::Timestamp,
            ("date", []) => PgType::Date,
            ("interval", []) => PgType::Interval,
            ("uuid", []) => PgType::Uuid,
            ("json", []) => PgType::Json,
            ("jsonb", []) => PgType::Jsonb,
            ("bigint[]" | "int8[]", []) => PgType::Int8Array,
            ("text[]", []) => PgType::TextArray,
            ("double precision[]" | "float8[]", []) => PgType::Float8Array,
            ("smallint[]" | "int2[]", []) => PgType::Int2Array,
            ("integer[]" | "int4[]" | "int[]", []) => PgType::Int4Array,
            ("boolean[]" | "bool[]", []) => PgType::BoolArray,
            ("oid", []) => PgType::Oid,
            ("name", []) => PgType::Name,
            ("\"char\"" | "char", []) => PgType::Char,
            ("int2vector", []) => PgType::Int2Vector,
            ("oidvector", []) => PgType::OidVector,
            ("oid[]", []) => PgType::OidArray,
            ("name[]", []) => PgType::NameArray,
            ("\"char\"[]" | "char[]", []) => PgType::CharArray,
            ("record", []) => PgType::Record,
            _ => return None,
        })
    }

    /// The name `pg_type.typname` gives this type.
    pub fn typname(&self) -> &'static str {
        match self {
            PgType::Bool => "bool",
            PgType::Int2 => "int2",
            PgType::Int4 => "int4",
            PgType::Int8 => "int8",
            PgType::Float4 => "float4",
            PgType::Float8 => "float8",
            PgType::Numeric { .. } => "numeric",
            PgType::Text => "text",
            PgType::Varchar { .. } => "varchar",
            PgType::Bytea => "bytea",
            PgType::Timestamptz => "timestamptz",
            PgType::Timestamp => "timestamp",
            PgType::Date => "date",
            PgType::Interval => "interval",
            PgType::Uuid => "uuid",
            PgType::Json => "json",
            PgType::Jsonb => "jsonb",
            PgType::Int8Array => "_int8",
            PgType::TextArray => "_text",
            PgType::Float8Array => "_float8",
            PgType::Int2Array => "_int2",
            PgType::Int4Array => "_int4",
            PgType::BoolArray => "_bool",
            PgType::Oid => "oid",
            PgType::Name => "name",
            PgType::Char => "char",
            PgType::Int2Vector => "int2vector",
            PgType::OidVector => "oidvector",
            PgType::OidArray => "_oid",
            PgType::NameArray => "_name",
            PgType::CharArray => "_char",
            PgType::Record => "record",
        }
    }

    /// The type without its modifier (`numeric(10,2)` is `numeric`), as
    /// `pg_typeof` and `format_type(oid, NULL)` name it.
    pub fn without_modifier(&self) -> PgType {
        match self {
            PgType::Numeric { .. } => PgType::Numeric {
                precision: None,
                scale: None,
            },
            PgType::Varchar { .. } => PgType::Varchar { max_chars: None },
            other => *other,
        }
    }

    /// Whether values of this type are integers usable as an integer time dimension.
    pub fn is_integer(&self) -> bool {
        matches!(self, PgType::Int2 | PgType::Int4 | PgType::Int8)
    }
}

/// Formats the type as `format_type()` does (`timestamp with time zone`, `numeric(10,2)`).
impl fmt::Display for PgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgType::Bool => f.write_str("boolean"),
            PgType::Int2 => f.write_str("smallint"),
            PgType::Int4 => f.write_str("integer"),
            PgType::Int8 => f.write_str("bigint"),
            PgType::Float4 => f.write_str("real"),
            PgType::Float8 => f.write_str("double precision"),
            PgType::Numeric {
                precision: Some(p),
                scale,
            } => write!(f, "numeric({},{})", p, scale.unwrap_or(0)),
            PgType::Numeric {
                precision: None, ..
            } => f.write_str("numeric"),
            PgType::Text => f.write_str("text"),
            PgType::Varchar { max_chars: Some(n) } => write!(f, "character varying({n})"),
            PgType::Varchar { max_chars: None } => f.write_str("character varying"),
            PgType::Bytea => f.write_str("bytea"),
            PgType::Timestamptz => f.write_str("timestamp with time zone"),
            PgType::Timestamp => f.write_str("timestamp without time zone"),
            PgType::Date => f.write_str("date"),
            PgType::Interval => f.write_str("interval"),
            PgType::Uuid => f.write_str("uuid"),
            PgType::Json => f.write_str("json"),
            PgType::Jsonb => f.write_str("jsonb"),
            PgType::Int8Array => f.write_str("bigint[]"),
            PgType::TextArray => f.write_str("text[]"),
            PgType::Float8Array => f.write_str("double precision[]"),
            PgType::Int2Array => f.write_str("smallint[]"),
            PgType::Int4Array => f.write_str("integer[]"),
            PgType::BoolArray => f.write_str("boolean[]"),
            PgType::Oid => f.write_str("oid"),
            PgType::Name => f.write_str("name"),
            PgType::Char => f.write_str("\"char\""),
            PgType::Int2Vector => f.write_str("int2vector"),
            PgType::OidVector => f.write_str("oidvector"),
            PgType::OidArray => f.write_str("oid[]"),
            PgType::NameArray => f.write_str("name[]"),
            PgType::CharArray => f.write_str("\"char\"[]"),
            PgType::Record => f.write_str("record"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let all = [
            PgType::Bool,
            PgType::Int2,
            PgType::Int4,
            PgType::Int8,
            PgType::Float4,
            PgType::Float8,
            PgType::Numeric {
                precision: Some(12),
                scale: Some(4),
            },
            PgType::Numeric {
                precision: None,
                scale: None,
            },
            PgType::Text,
            PgType::Varchar {
                max_chars: Some(20),
            },
            PgType::Varchar { max_chars: None },
            PgType::Bytea,
            PgType::Timestamptz,
            PgType::Timestamp,
            PgType::Date,
            PgType::Interval,
            PgType::Uuid,
            PgType::Json,
            PgType::Jsonb,
            PgType::Int8Array,
            PgType::TextArray,
            PgType::Float8Array,
            PgType::Int2Array,
            PgType::Int4Array,
            PgType::BoolArray,
            PgType::Oid,
            PgType::Name,
            PgType::Char,
            PgType::Int2Vector,
            PgType::OidVector,
            PgType::OidArray,
            PgType::NameArray,
            PgType::CharArray,
        ];
        for pg_type in all {
            assert_eq!(PgType::parse_name(&pg_type.to_string()), Some(pg_type));
            let field = pg_type.arrow_field("c", true);
            assert_eq!(PgType::of_field(&field).unwrap(), pg_type);
        }
    }

    #[test]
    fn type_modifiers_match_postgres() {
        assert_eq!(
            PgType::Varchar {
                max_chars: Some(10)
            }
            .type_modifier(),
            14
        );
        let numeric = PgType::Numeric {
            precision: Some(10),
            scale: Some(2),
        };
        assert_eq!(numeric.type_modifier(), 655366);
        assert_eq!(PgType::Int4.type_modifier(), -1);
    }
}
