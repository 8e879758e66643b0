//! Building the in-memory tables the system catalogs are made of: a list of
//! typed columns and rows of [`Cell`]s, turned into one Arrow batch.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Int16Builder, Int32Builder, Int64Builder,
    ListBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::MemTable;

use tempora_types::{PgType, UTC_ZONE};

/// One value of a catalog row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f32),
    Text(String),
    Ints(Vec<i64>),
}

impl From<bool> for Cell {
    fn from(value: bool) -> Self {
        Cell::Bool(value)
    }
}
impl From<i16> for Cell {
    fn from(value: i16) -> Self {
        Cell::Int(value as i64)
    }
}
impl From<i32> for Cell {
    fn from(value: i32) -> Self {
        Cell::Int(value as i64)
    }
}
impl From<i64> for Cell {
    fn from(value: i64) -> Self {
        Cell::Int(value)
    }
}
impl From<u32> for Cell {
    fn from(value: u32) -> Self {
        Cell::Int(value as i64)
    }
}
impl From<usize> for Cell {
    fn from(value: usize) -> Self {
        Cell::Int(value as i64)
    }
}
impl From<f32> for Cell {
    fn from(value: f32) -> Self {
        Cell::Float(value)
    }
}
impl From<&str> for Cell {
    fn from(value: &str) -> Self {
        Cell::Text(value.to_owned())
    }
}
impl From<String> for Cell {
    fn from(value: String) -> Self {
        Cell::Text(value)
    }
}
impl From<char> for Cell {
    fn from(value: char) -> Self {
        Cell::Text(value.to_string())
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(value: Option<T>) -> Self {
        value.map_or(Cell::Null, Into::into)
    }
}

/// A row: `row![a, b, c]` turns each value into a [`Cell`].
macro_rules! row {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::catalog_table::Cell::from($value)),*]
    };
}
pub(crate) use row;

/// The columns of a catalog table.
pub(crate) type Columns = &'static [(&'static str, PgType)];

fn mismatch(column: &str, cell: &Cell) -> DataFusionError {
    DataFusionError::Internal(format!(
        "catalog column {column} cannot hold the value {cell:?}"
    ))
}

fn build_column(name: &str, pg_type: PgType, cells: &[&Cell]) -> Result<ArrayRef> {
    macro_rules! primitive {
        ($builder:expr, $variant:ident, $convert:expr) => {{
            let mut builder = $builder;
            for cell in cells {
                match cell {
                    Cell::Null => builder.append_null(),
                    Cell::$variant(v) => builder.append_value($convert(v)),
                    other => return Err(mismatch(name, other)),
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    Ok(match pg_type {
        PgType::Bool => primitive!(BooleanBuilder::new(), Bool, |v: &bool| *v),
        PgType::Int2 => primitive!(Int16Builder::new(), Int, |v: &i64| *v as i16),
        PgType::Int4 => primitive!(Int32Builder::new(), Int, |v: &i64| *v as i32),
        PgType::Int8 => primitive!(Int64Builder::new(), Int, |v: &i64| *v),
        PgType::Oid => primitive!(UInt32Builder::new(), Int, |v: &i64| *v as u32),
        PgType::Float4 => primitive!(Float32Builder::new(), Float, |v: &f32| *v),
        PgType::Timestamptz => primitive!(
            TimestampMicrosecondBuilder::new().with_timezone(UTC_ZONE),
            Int,
            |v: &i64| *v
        ),
        PgType::Text | PgType::Name | PgType::Char | PgType::Varchar { .. } | PgType::Json => {
            primitive!(StringBuilder::new(), Text, |v: &String| v.clone())
        }
        PgType::Int2Array | PgType::Int2Vector => {
            let mut builder = ListBuilder::new(Int16Builder::new());
            for cell in cells {
                match cell {
                    Cell::Null => builder.append_null(),
                    Cell::Ints(values) => {
                        for v in values {
                            builder.values().append_value(*v as i16);
                        }
                        builder.append(true);
                    }
                    other => return Err(mismatch(name, other)),
                }
            }
            Arc::new(builder.finish())
        }
        PgType::OidArray | PgType::OidVector => {
            let mut builder = ListBuilder::new(UInt32Builder::new());
            for cell in cells {
                match cell {
                    Cell::Null => builder.append_null(),
                    Cell::Ints(values) => {
                        for v in values {
                            builder.values().append_value(*v as u32);
                        }
                        builder.append(true);
                    }
                    other => return Err(mismatch(name, other)),
                }
            }
            Arc::new(builder.finish())
        }
        PgType::TextArray | PgType::NameArray | PgType::CharArray => {
            let mut builder = ListBuilder::new(StringBuilder::new());
            for cell in cells {
                match cell {
                    Cell::Null => builder.append_null(),
                    other => return Err(mismatch(name, other)),
                }
            }
            Arc::new(builder.finish())
        }
        other => {
            return Err(DataFusionError::Internal(format!(
                "catalog column {name} has type {other}, which catalog tables do not use"
            )));
        }
    })
}

/// One record batch of `rows` under `columns`, each field carrying its PgType.
pub(crate) fn batch(columns: Columns, rows: &[Vec<Cell>]) -> Result<RecordBatch> {
    let fields: Vec<_> = columns
        .iter()
        .map(|(name, pg_type)| pg_type.arrow_field(name, true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut arrays = Vec::with_capacity(columns.len());
    for (index, (name, pg_type)) in columns.iter().enumerate() {
        let cells: Vec<&Cell> = rows
            .iter()
            .map(|row| row.get(index).unwrap_or(&Cell::Null))
            .collect();
        arrays.push(build_column(name, *pg_type, &cells)?);
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// A table provider over `rows`.
pub(crate) fn table(columns: Columns, rows: Vec<Vec<Cell>>) -> Result<Arc<dyn TableProvider>> {
    if let Some(row) = rows.iter().find(|r| r.len() != columns.len()) {
        return Err(DataFusionError::Internal(format!(
            "catalog row has {} values for {} columns",
            row.len(),
            columns.len()
        )));
    }
    let batch = batch(columns, &rows)?;
    Ok(Arc::new(MemTable::try_new(
        batch.schema(),
        vec![vec![batch]],
    )?))
}
