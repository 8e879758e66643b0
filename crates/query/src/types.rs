//! SQL type names to PostgreSQL types, and the DataFusion type planner that
//! makes `::timestamptz`, `::jsonb`, `::numeric` and friends mean what they
//! mean in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::{self, ExactNumberInfo, TimezoneInfo};

use tempora_types::PgType;

/// The PostgreSQL type a SQL type name denotes, or None if tempora lacks it.
/// Serial types map to their integer type; the caller adds the sequence.
pub fn pg_type_of_sql(data_type: &ast::DataType) -> Option<PgType> {
    use ast::DataType as D;
    Some(match data_type {
        D::Boolean | D::Bool => PgType::Bool,
        D::SmallInt(_) | D::Int2(_) => PgType::Int2,
        D::Int(_) | D::Integer(_) | D::Int4(_) => PgType::Int4,
        D::BigInt(_) | D::Int8(_) => PgType::Int8,
        D::Real | D::Float4 => PgType::Float4,
        D::DoublePrecision | D::Float8 | D::Double(_) => PgType::Float8,
        D::Float(info) => match info {
            ExactNumberInfo::Precision(p) | ExactNumberInfo::PrecisionAndScale(p, _)
                if *p <= 24 =>
            {
                PgType::Float4
            }
            _ => PgType::Float8,
        },
        D::Numeric(info) | D::Decimal(info) | D::Dec(info) => match info {
            ExactNumberInfo::None => PgType::Numeric {
                precision: None,
                scale: None,
            },
            ExactNumberInfo::Precision(p) => PgType::Numeric {
                precision: Some(u8::try_from(*p).ok().filter(|p| (1..=38).contains(p))?),
                scale: Some(0),
            },
            ExactNumberInfo::PrecisionAndScale(p, s) => PgType::Numeric {
                precision: Some(u8::try_from(*p).ok().filter(|p| (1..=38).contains(p))?),
                scale: Some(
                    i8::try_from(*s)
                        .ok()
                        .filter(|s| *s >= 0 && (*s as u64) <= *p)?,
                ),
            },
        },
        D::Text | D::String(_) => PgType::Text,
        D::Varchar(length) | D::CharacterVarying(length) | D::CharVarying(length) => {
            PgType::Varchar {
                max_chars: match length {
                    Some(ast::CharacterLength::IntegerLength { length, .. }) => {
                        Some(u32::try_from(*length).ok()?)
                    }
                    _ => None,
                },
            }
        }
        // char(n) is stored as varchar; blank padding is not emulated.
        D::Char(_) | D::Character(_) => PgType::Text,
        D::Bytea => PgType::Bytea,
        D::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => PgType::Timestamptz,
        D::Timestamp(_, _) => PgType::Timestamp,
        D::Date => PgType::Date,
        D::Interval { .. } => PgType::Interval,
        D::Uuid => PgType::Uuid,
        D::JSON => PgType::Json,
        D::JSONB => PgType::Jsonb,
        D::Custom(name, modifiers) if modifiers.is_empty() => {
            let name = name.to_string().to_ascii_lowercase();
            let name = name.trim_start_matches("pg_catalog.");
            match name {
                "serial" | "serial4" => PgType::Int4,
                "bigserial" | "serial8" => PgType::Int8,
                "smallserial" | "serial2" => PgType::Int2,
                other => PgType::parse_name(other)?,
            }
        }
        D::Array(ast::ArrayElemTypeDef::SquareBracket(inner, _)) => {
            pg_type_of_sql(inner)?.array_of()?
        }
        _ => return None,
    })
}

/// Whether the SQL type is a serial pseudo-type (an integer with a sequence default).
pub fn is_serial(data_type: &ast::DataType) -> bool {
    matches!(data_type, ast::DataType::Custom(name, _)
        if matches!(name.to_string().to_ascii_lowercase().as_str(),
            "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"))
}

/// Plans SQL types in casts the PostgreSQL way.
#[derive(Debug, Default)]
pub struct PgTypePlanner;

impl TypePlanner for PgTypePlanner {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> Result<Option<FieldRef>> {
        Ok(pg_type_of_sql(sql_type)
            .map(|pg_type| Arc::new(pg_type.arrow_field("", true)) as Arc<Field>))
    }
}
