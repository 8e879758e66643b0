//! Catalog views built from the catalog snapshot each time a query names them:
//! `timescaledb_information.{hypertables, dimensions, chunks}` with the columns
//! TimescaleDB documents.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int16Array, Int64Array, IntervalMonthDayNanoArray, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{IntervalMonthDayNano, Schema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::MemTable;

use tempora_catalog::{CHUNK_SCHEMA, CatalogState, DEFAULT_SCHEMA};
use tempora_storage::Store;
use tempora_types::datetime::MICROS_PER_DAY;
use tempora_types::{PgType, UTC_ZONE};

pub const TIMESCALEDB_INFORMATION: &str = "timescaledb_information";
pub use crate::pg_catalog::{META_TIMESCALEDB_INSTALLED, TIMESCALEDB_VERSION};

/// The owner every object reports: the embedded superuser.
const OWNER: &str = "postgres";

fn table(columns: Vec<(&str, PgType, ArrayRef)>) -> Result<Arc<dyn TableProvider>> {
    let fields: Vec<_> = columns
        .iter()
        .map(|(name, pg_type, _)| pg_type.arrow_field(name, true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays: Vec<ArrayRef> = columns.into_iter().map(|(_, _, array)| array).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn text(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn hypertables(state: &CatalogState) -> Result<Arc<dyn TableProvider>> {
    let tables: Vec<_> = state.hypertables().collect();
    table(vec![
        (
            "hypertable_schema",
            PgType::Text,
            text(
                tables
                    .iter()
                    .map(|_| Some(DEFAULT_SCHEMA.to_owned()))
                    .collect(),
            ),
        ),
        (
            "hypertable_name",
            PgType::Text,
            text(tables.iter().map(|t| Some(t.name.clone())).collect()),
        ),
        (
            "owner",
            PgType::Text,
            text(tables.iter().map(|_| Some(OWNER.to_owned())).collect()),
        ),
        (
            "num_dimensions",
            PgType::Int2,
            Arc::new(Int16Array::from(vec![1i16; tables.len()])),
        ),
        (
            "num_chunks",
            PgType::Int8,
            Arc::new(Int64Array::from(
                tables
                    .iter()
                    .map(|t| state.chunks_of(t.id).len() as i64)
                    .collect::<Vec<_>>(),
            )),
        ),
        (
            "compression_enabled",
            PgType::Bool,
            Arc::new(BooleanArray::from(vec![false; tables.len()])),
        ),
        (
            "tablespaces",
            PgType::TextArray,
            datafusion::arrow::array::new_null_array(&PgType::TextArray.arrow_type(), tables.len()),
        ),
    ])
}

fn dimensions(state: &CatalogState) -> Result<Arc<dyn TableProvider>> {
    let tables: Vec<_> = state.hypertables().collect();
    let column_type = |t: &tempora_catalog::TableDef| {
        let h = t.hypertable.as_ref()?;
        let column = t.columns.iter().find(|c| c.name == h.time_column)?;
        Some(column.pg_type.to_string())
    };
    table(vec![
        (
            "hypertable_schema",
            PgType::Text,
            text(
                tables
                    .iter()
                    .map(|_| Some(DEFAULT_SCHEMA.to_owned()))
                    .collect(),
            ),
        ),
        (
            "hypertable_name",
            PgType::Text,
            text(tables.iter().map(|t| Some(t.name.clone())).collect()),
        ),
        (
            "dimension_number",
            PgType::Int8,
            Arc::new(Int64Array::from(vec![1i64; tables.len()])),
        ),
        (
            "column_name",
            PgType::Text,
            text(
                tables
                    .iter()
                    .map(|t| t.hypertable.as_ref().map(|h| h.time_column.clone()))
                    .collect(),
            ),
        ),
        (
            "column_type",
            PgType::Text,
            text(tables.iter().map(|t| column_type(t)).collect()),
        ),
        (
            "dimension_type",
            PgType::Text,
            text(tables.iter().map(|_| Some("Time".to_owned())).collect()),
        ),
        (
            "time_interval",
            PgType::Interval,
            Arc::new(IntervalMonthDayNanoArray::from(
                tables
                    .iter()
                    .map(|t| {
                        // Shown in days and time, as TimescaleDB converts the stored microseconds.
                        t.hypertable.as_ref().filter(|h| !h.integer_time).map(|h| {
                            IntervalMonthDayNano {
                                months: 0,
                                days: (h.chunk_interval / MICROS_PER_DAY) as i32,
                                nanoseconds: (h.chunk_interval % MICROS_PER_DAY)
                                    .saturating_mul(1_000),
                            }
                        })
                    })
                    .collect::<Vec<_>>(),
            )),
        ),
        (
            "integer_interval",
            PgType::Int8,
            Arc::new(Int64Array::from(
                tables
                    .iter()
                    .map(|t| {
                        t.hypertable
                            .as_ref()
                            .filter(|h| h.integer_time)
                            .map(|h| h.chunk_interval)
                    })
                    .collect::<Vec<_>>(),
            )),
        ),
        (
            "integer_now_func",
            PgType::Text,
            text(vec![None; tables.len()]),
        ),
        (
            "num_partitions",
            PgType::Int2,
            Arc::new(Int16Array::from(vec![None::<i16>; tables.len()])),
        ),
    ])
}

fn chunks(state: &CatalogState) -> Result<Arc<dyn TableProvider>> {
    let mut rows = Vec::new();
    for table in state.hypertables() {
        let Some(h) = &table.hypertable else { continue };
        let time_type = table
            .columns
            .iter()
            .find(|c| c.name == h.time_column)
            .map(|c| c.pg_type.to_string());
        for chunk in state.chunks_of(table.id) {
            rows.push((table.clone(), h.clone(), time_type.clone(), chunk));
        }
    }
    let time_bound = |value: i64, integer: bool| (!integer).then_some(value);
    let int_bound = |value: i64, integer: bool| integer.then_some(value);
    table(vec![
        (
            "hypertable_schema",
            PgType::Text,
            text(
                rows.iter()
                    .map(|_| Some(DEFAULT_SCHEMA.to_owned()))
                    .collect(),
            ),
        ),
        (
            "hypertable_name",
            PgType::Text,
            text(rows.iter().map(|r| Some(r.0.name.clone())).collect()),
        ),
        (
            "chunk_schema",
            PgType::Text,
            text(rows.iter().map(|_| Some(CHUNK_SCHEMA.to_owned())).collect()),
        ),
        (
            "chunk_name",
            PgType::Text,
            text(
                rows.iter()
                    .map(|r| Some(r.3.table_name(r.1.hypertable_id)))
                    .collect(),
            ),
        ),
        (
            "primary_dimension",
            PgType::Text,
            text(rows.iter().map(|r| Some(r.1.time_column.clone())).collect()),
        ),
        (
            "primary_dimension_type",
            PgType::Text,
            text(rows.iter().map(|r| r.2.clone()).collect()),
        ),
        (
            "range_start",
            PgType::Timestamptz,
            Arc::new(
                TimestampMicrosecondArray::from(
                    rows.iter()
                        .map(|r| time_bound(r.3.range_start, r.1.integer_time))
                        .collect::<Vec<_>>(),
                )
                .with_timezone(UTC_ZONE),
            ),
        ),
        (
            "range_end",
            PgType::Timestamptz,
            Arc::new(
                TimestampMicrosecondArray::from(
                    rows.iter()
                        .map(|r| time_bound(r.3.range_end, r.1.integer_time))
                        .collect::<Vec<_>>(),
                )
                .with_timezone(UTC_ZONE),
            ),
        ),
        (
            "range_start_integer",
            PgType::Int8,
            Arc::new(Int64Array::from(
                rows.iter()
                    .map(|r| int_bound(r.3.range_start, r.1.integer_time))
                    .collect::<Vec<_>>(),
            )),
        ),
        (
            "range_end_integer",
            PgType::Int8,
            Arc::new(Int64Array::from(
                rows.iter()
                    .map(|r| int_bound(r.3.range_end, r.1.integer_time))
                    .collect::<Vec<_>>(),
            )),
        ),
        (
            "is_compressed",
            PgType::Bool,
            Arc::new(BooleanArray::from(vec![false; rows.len()])),
        ),
        (
            "chunk_tablespace",
            PgType::Text,
            text(vec![None; rows.len()]),
        ),
    ])
}

/// `timescaledb_information`.
#[derive(Debug)]
pub struct TimescaleInformation {
    store: Arc<Store>,
}

impl TimescaleInformation {
    pub fn new(store: Arc<Store>) -> Self {
        TimescaleInformation { store }
    }
}

const INFORMATION_VIEWS: [&str; 3] = ["hypertables", "dimensions", "chunks"];

#[async_trait]
impl SchemaProvider for TimescaleInformation {
    fn table_names(&self) -> Vec<String> {
        INFORMATION_VIEWS.iter().map(|s| s.to_string()).collect()
    }
    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let state = self.store.catalog().snapshot();
        Ok(Some(match name {
            "hypertables" => hypertables(&state)?,
            "dimensions" => dimensions(&state)?,
            "chunks" => chunks(&state)?,
            _ => return Ok(None),
        }))
    }
    fn table_exist(&self, name: &str) -> bool {
        INFORMATION_VIEWS.contains(&name)
    }
}
