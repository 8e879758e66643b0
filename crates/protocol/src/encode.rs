//! Arrow batches to DataRow and CopyData messages.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::future::Either;
use futures::{Stream, StreamExt};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;

use tempora_sql::CopyFormat;
use tempora_types::PgType;
use tempora_types::wire::WireColumn;

fn user_error(error: tempora_sql::Error) -> PgWireError {
    PgWireError::UserError(Box::new(crate::error_info(&error)))
}

/// The pgwire type of a PgType.
pub(crate) fn wire_type(pg_type: PgType) -> Type {
    Type::from_oid(pg_type.oid()).unwrap_or(Type::TEXT)
}

/// The PgType of a type OID a client declared for a parameter.
pub(crate) fn pg_type_of_oid(oid: u32) -> Option<PgType> {
    Some(match oid {
        16 => PgType::Bool,
        17 => PgType::Bytea,
        20 => PgType::Int8,
        21 => PgType::Int2,
        23 => PgType::Int4,
        25 | 1042 => PgType::Text,
        19 => PgType::Name,
        114 => PgType::Json,
        700 => PgType::Float4,
        701 => PgType::Float8,
        1043 => PgType::Varchar { max_chars: None },
        1082 => PgType::Date,
        1114 => PgType::Timestamp,
        1184 => PgType::Timestamptz,
        1186 => PgType::Interval,
        1700 => PgType::Numeric {
            precision: None,
            scale: None,
        },
        2950 => PgType::Uuid,
        3802 => PgType::Jsonb,
        26 => PgType::Oid,
        18 => PgType::Char,
        1000 => PgType::BoolArray,
        1005 => PgType::Int2Array,
        1007 => PgType::Int4Array,
        1016 => PgType::Int8Array,
        1009 | 1015 => PgType::TextArray,
        1021 | 1022 => PgType::Float8Array,
        1028 => PgType::OidArray,
        1003 => PgType::NameArray,
        _ => return None,
    })
}

/// RowDescription fields for a result schema in the requested formats.
pub(crate) fn fields(schema: &SchemaRef, formats: &Format) -> PgWireResult<Arc<Vec<FieldInfo>>> {
    let mut fields = Vec::with_capacity(schema.fields().len());
    for (index, field) in schema.fields().iter().enumerate() {
        let pg_type = PgType::of_field(field).map_err(|e| user_error(e.into()))?;
        let info = FieldInfo::new(
            field.name().clone(),
            None,
            None,
            wire_type(pg_type),
            formats.format_for(index),
        )
        .with_type_size(pg_type.type_size())
        .with_type_modifier(pg_type.type_modifier());
        fields.push(info);
    }
    Ok(Arc::new(fields))
}

/// RowDescription fields for Describe; a statement without rows has none.
pub(crate) fn described_fields(
    schema: Option<SchemaRef>,
    formats: &Format,
) -> PgWireResult<Vec<FieldInfo>> {
    match schema {
        Some(schema) => Ok(fields(&schema, formats)?.as_ref().clone()),
        None => Ok(Vec::new()),
    }
}

/// Encodes batches into DataRows, keeping its column buffers from batch to batch.
struct RowEncoder {
    pg_types: Vec<PgType>,
    binary: Vec<bool>,
    columns: Vec<WireColumn>,
}

impl RowEncoder {
    fn new(schema: &SchemaRef, fields: &[FieldInfo]) -> Self {
        Self {
            pg_types: schema
                .fields()
                .iter()
                .map(|f| PgType::of_field(f).unwrap_or(PgType::Text))
                .collect(),
            binary: fields
                .iter()
                .map(|field| field.format() == FieldFormat::Binary)
                .collect(),
            columns: schema.fields().iter().map(|_| WireColumn::new()).collect(),
        }
    }

    /// The batch's rows: its columns are encoded one at a time, then laid
    /// out row by row in one buffer that the DataRows share.
    fn encode(&mut self, batch: &RecordBatch) -> PgWireResult<Vec<DataRow>> {
        let mut size = 4 * batch.num_columns() * batch.num_rows();
        for (index, array) in batch.columns().iter().enumerate() {
            let column = &mut self.columns[index];
            column
                .encode(array.as_ref(), self.pg_types[index], self.binary[index])
                .map_err(|e| user_error(e.into()))?;
            size += column.bytes().len();
        }
        let mut buffer = BytesMut::with_capacity(size);
        let mut offsets = vec![0usize; self.columns.len()];
        let mut rows = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            for (column, offset) in self.columns.iter().zip(offsets.iter_mut()) {
                let length = column.lengths()[row];
                buffer.put_i32(length);
                if length > 0 {
                    let end = *offset + length as usize;
                    buffer.put_slice(&column.bytes()[*offset..end]);
                    *offset = end;
                }
            }
            rows.push(DataRow::new(buffer.split(), batch.num_columns() as i16));
        }
        Ok(rows)
    }
}

/// DataRows for every row of a record batch stream.
pub(crate) fn rows(
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let mut encoder = RowEncoder::new(&schema, &fields);
    stream
        .map(move |batch| {
            let rows = batch
                .map_err(|error| user_error(error.into()))
                .and_then(|batch| encoder.encode(&batch));
            match rows {
                Ok(rows) => Either::Left(futures::stream::iter(rows.into_iter().map(Ok))),
                Err(error) => Either::Right(futures::stream::once(async { Err(error) })),
            }
        })
        .flatten()
}

/// One CopyData per row (pgwire counts rows by messages for the COPY tag).
pub(crate) fn copy_rows(
    format: CopyFormat,
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
) -> impl Stream<Item = PgWireResult<CopyData>> + Send + 'static {
    stream
        .map(move |batch| -> Vec<PgWireResult<CopyData>> {
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => return vec![Err(user_error(error.into()))],
            };
            match tempora_sql::copy::format_rows(&format, &schema, &batch) {
                Ok(rows) => rows
                    .into_iter()
                    .map(|row| Ok(CopyData::new(row.into())))
                    .collect(),
                Err(error) => vec![Err(user_error(error))],
            }
        })
        .flat_map(futures::stream::iter)
}
