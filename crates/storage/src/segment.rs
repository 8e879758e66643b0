//! Segment files: the immutable columnar form of a chunk's flushed rows.
//!
//! A segment is an Apache Parquet file (magic `PAR1` at both ends, format
//! version in its footer), rows sorted by the table's time column, zstd
//! compressed, with per-column min/max statistics per row group and page that
//! DataFusion uses to skip data. Floats use BYTE_STREAM_SPLIT, which lets zstd
//! find the shared exponent bytes of slowly varying measurements. Integers,
//! dates and timestamps use DELTA_BINARY_PACKED (deltas, bit-packed); the
//! sorted time column's deltas are so small that it is left uncompressed,
//! which reads faster at no cost in size. The catalog
//! records each file's length and CRC-32, checked before the file is first read
//! (see `docs/formats/segment.md`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::{
    SortColumn, concat_batches, lexsort_to_indices, take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use tempora_catalog::{ROWID_COLUMN, SegmentDef};

use crate::{Error, Result, io_error};

/// Rows per Parquet row group: large enough for good compression, small enough
/// that statistics prune usefully inside one chunk.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Rows per data page at most: pages are what the page index prunes, so a
/// lookup of a few rows by time, or of one row by id, decodes a few
/// thousand values per column, not a megabyte. A point UPDATE decompresses
/// one page of every column: 2K rather than 4K rows made it about a fifth
/// faster in the benchmark (1.0-1.2 ms against 1.4-1.5 ms) for 3.6% more
/// bytes on disk; 16K rows cost it three times as much.
pub(crate) const PAGE_ROWS: usize = 2 * 1024;

/// Passes bytes through while computing their CRC-32 and count.
struct ChecksumWriter<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Write for ChecksumWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Sorts rows by the time column (if any) into one batch.
pub(crate) fn sorted_rows(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    time_column: Option<usize>,
) -> Result<RecordBatch> {
    let batch = concat_batches(schema, batches)?;
    let Some(time_index) = time_column else {
        return Ok(batch);
    };
    let indices = lexsort_to_indices(
        &[SortColumn {
            values: batch.column(time_index).clone(),
            options: None,
        }],
        None,
    )?;
    Ok(take_record_batch(&batch, &indices)?)
}

fn writer_properties(schema: &SchemaRef, time_column: Option<usize>) -> Result<WriterProperties> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_dictionary_enabled(true);
    for (index, field) in schema.fields().iter().enumerate() {
        let path = ColumnPath::from(field.name().as_str());
        match field.data_type() {
            DataType::Float32 | DataType::Float64 => {
                builder = builder
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT);
            }
            DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Timestamp(..) => {
                builder = builder
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path.clone(), Encoding::DELTA_BINARY_PACKED);
                // The time column is read by every scan's filter and the
                // row id column by every point read: both decode without a
                // decompression, and delta packing already makes the row
                // ids (ascending runs) a few bits each.
                if time_column == Some(index) || field.name() == ROWID_COLUMN {
                    builder = builder.set_column_compression(path, Compression::UNCOMPRESSED);
                }
            }
            _ => {}
        }
    }
    Ok(builder.build())
}

/// Writes `batch` as a new segment file `dir/file_name` and fsyncs it.
pub(crate) fn write_segment(
    dir: &Path,
    file_name: &str,
    batch: &RecordBatch,
    time_column: Option<usize>,
) -> Result<SegmentDef> {
    let path = dir.join(file_name);
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    let mut sink = ChecksumWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: crc32fast::Hasher::new(),
        written: 0,
    };
    {
        let stored = to_stored(batch)?;
        let mut writer = ArrowWriter::try_new(
            &mut sink,
            stored.schema(),
            Some(writer_properties(&stored.schema(), time_column)?),
        )?;
        writer.write(&stored)?;
        writer.close()?;
    }
    let ChecksumWriter {
        inner,
        hasher,
        written,
    } = sink;
    let file = inner
        .into_inner()
        .map_err(|e| io_error(&path, e.into_error()))?;
    file.sync_all().map_err(|e| io_error(&path, e))?;
    Ok(SegmentDef {
        file_name: file_name.to_owned(),
        row_count: batch.num_rows() as u64,
        byte_size: written,
        crc32: hasher.finalize(),
    })
}

/// Field metadata of a segment column stored as another type than the
/// table's: its value names the Arrow type the column stands for.
const STORED_AS: &str = "tempora.stored_as";
const INTERVAL_MONTH_DAY_NANO: &str = "interval_month_day_nano";
/// Bytes of a stored interval: months (i32), days (i32), nanoseconds
/// (i64), each little-endian.
const INTERVAL_BYTES: i32 = 16;

/// `batch` with the columns Parquet cannot hold in the form it can: an
/// interval (months, days, nanoseconds, which Parquet's INTERVAL of
/// milliseconds cannot carry) as 16 bytes (`docs/formats/segment.md`).
fn to_stored(batch: &RecordBatch) -> Result<RecordBatch> {
    use datafusion::arrow::array::{AsArray, FixedSizeBinaryArray};
    use datafusion::arrow::datatypes::{IntervalMonthDayNanoType, IntervalUnit};
    let interval = DataType::Interval(IntervalUnit::MonthDayNano);
    convert_columns(
        batch.clone(),
        |field| field.data_type() == &interval,
        |field, column| {
            let values = column.as_primitive::<IntervalMonthDayNanoType>();
            let bytes = values.iter().map(|value| {
                value.map(|v| {
                    let mut bytes = [0u8; INTERVAL_BYTES as usize];
                    bytes[..4].copy_from_slice(&v.months.to_le_bytes());
                    bytes[4..8].copy_from_slice(&v.days.to_le_bytes());
                    bytes[8..].copy_from_slice(&v.nanoseconds.to_le_bytes());
                    bytes
                })
            });
            let stored =
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(bytes, INTERVAL_BYTES)?;
            let mut metadata = field.metadata().clone();
            metadata.insert(STORED_AS.to_owned(), INTERVAL_MONTH_DAY_NANO.to_owned());
            Ok((
                DataType::FixedSizeBinary(INTERVAL_BYTES),
                metadata,
                std::sync::Arc::new(stored),
            ))
        },
    )
}

/// `batch` (read from a segment) with its stored columns back in the
/// table's types: the inverse of `to_stored`.
pub(crate) fn from_stored(batch: RecordBatch) -> Result<RecordBatch> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::IntervalUnit;
    convert_columns(
        batch,
        |field| {
            field.metadata().get(STORED_AS).map(String::as_str) == Some(INTERVAL_MONTH_DAY_NANO)
        },
        |field, column| {
            let bytes = column.as_fixed_size_binary_opt().ok_or_else(|| {
                ArrowError::SchemaError(format!(
                    "stored interval column \"{}\" is {}",
                    field.name(),
                    column.data_type()
                ))
            })?;
            let mut metadata = field.metadata().clone();
            metadata.remove(STORED_AS);
            Ok((
                DataType::Interval(IntervalUnit::MonthDayNano),
                metadata,
                std::sync::Arc::new(interval_from_stored(bytes)?),
            ))
        },
    )
}

/// A column converted: its new type, field metadata and values.
type Converted = (
    DataType,
    std::collections::HashMap<String, String>,
    datafusion::arrow::array::ArrayRef,
);

/// `batch` with each column whose field `converts` replaced by what
/// `convert` makes of it (same name and nullability). A batch without such
/// columns, as nearly every one is, is returned as it is.
fn convert_columns(
    batch: RecordBatch,
    converts: impl Fn(&datafusion::arrow::datatypes::Field) -> bool,
    convert: impl Fn(
        &datafusion::arrow::datatypes::Field,
        &datafusion::arrow::array::ArrayRef,
    ) -> std::result::Result<Converted, ArrowError>,
) -> Result<RecordBatch> {
    use datafusion::arrow::datatypes::{Field, Schema};
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| converts(f)) {
        return Ok(batch);
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if converts(field) {
            let (data_type, metadata, values) = convert(field, column)?;
            fields.push(
                Field::new(field.name(), data_type, field.is_nullable()).with_metadata(metadata),
            );
            columns.push(values);
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    Ok(RecordBatch::try_new(std::sync::Arc::new(schema), columns)?)
}

/// Intervals stored as 16 bytes each (see `to_stored`), back as intervals.
pub fn interval_from_stored(
    bytes: &datafusion::arrow::array::FixedSizeBinaryArray,
) -> std::result::Result<datafusion::arrow::array::IntervalMonthDayNanoArray, ArrowError> {
    use datafusion::arrow::datatypes::IntervalMonthDayNano;
    if bytes.value_length() != INTERVAL_BYTES {
        return Err(ArrowError::SchemaError(format!(
            "a stored interval has {INTERVAL_BYTES} bytes, not {}",
            bytes.value_length()
        )));
    }
    let word = |b: &[u8], at: usize| i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    Ok(bytes
        .iter()
        .map(|value| {
            value.map(|b| {
                let mut nanos = [0u8; 8];
                nanos.copy_from_slice(&b[8..16]);
                IntervalMonthDayNano::new(word(b, 0), word(b, 4), i64::from_le_bytes(nanos))
            })
        })
        .collect())
}

/// Checks a segment file against the length and checksum the catalog recorded.
pub(crate) fn verify_segment(dir: &Path, segment: &SegmentDef) -> Result<()> {
    let path = dir.join(&segment.file_name);
    let mut file = File::open(&path).map_err(|e| io_error(&path, e))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(|e| io_error(&path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        length += n as u64;
    }
    if length != segment.byte_size || hasher.finalize() != segment.crc32 {
        return Err(Error::Corrupt {
            path,
            reason: "segment length or checksum does not match the catalog".to_owned(),
        });
    }
    Ok(())
}

/// Reads a whole segment back (used by tests and by the storage layer's own checks).
pub fn read_segment(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(from_stored(batch?)?);
    }
    Ok(batches)
}

/// Reads some columns of a segment, by name.
pub(crate) fn read_columns(path: &Path, names: &[&str]) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?;
    let schema = builder.schema().clone();
    let indices = names
        .iter()
        .map(|name| schema.index_of(name))
        .collect::<Result<Vec<_>, _>>()?;
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder.with_projection(mask).build()?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(from_stored(batch?)?);
    }
    Ok(batches)
}

/// A run of rows that may hold a wanted row id: a page of the row id
/// column (or a whole row group, without a page index).
struct Candidate {
    group: usize,
    page: Option<usize>,
    /// Over the whole file.
    rows: std::ops::Range<usize>,
}

/// The rows of a segment whose row id (column `rowid_column`) is in
/// `wanted` (sorted), with the `columns` (root column positions) asked for,
/// in file order. The page index of the row id column narrows the search
/// to the pages whose id range holds a wanted id (rows are written in id
/// order within a time range, so that is usually one page); the ids of
/// those pages are read, then only the matching rows' pages of the columns.
/// Pages are read one by one (`pages::PointReader`) where the columns'
/// types allow, else through Parquet's record-batch reader.
pub(crate) fn read_rows_by_id(
    path: &Path,
    metadata: &parquet::arrow::arrow_reader::ArrowReaderMetadata,
    rowid_column: &str,
    wanted: &[i64],
    columns: &[usize],
) -> Result<Vec<RecordBatch>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let rowid = metadata.schema().index_of(rowid_column)?;
    let (group_starts, rows) = row_group_starts(metadata.metadata());
    let candidates = candidates(metadata.metadata(), &group_starts, rowid, wanted);
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut needed = columns.to_vec();
    needed.push(rowid);
    let paged = candidates.iter().all(|c| c.page.is_some());
    if let Some(reader) = paged
        .then(|| crate::pages::PointReader::open(path, metadata, &needed, &group_starts, rows))
        .transpose()?
        .flatten()
    {
        let mut positions = Vec::new();
        for candidate in &candidates {
            let page = candidate.page.unwrap_or_default();
            let ids = reader.int64_page(candidate.group, rowid, page)?;
            if ids.len() != candidate.rows.len() {
                return Err(Error::Corrupt {
                    path: path.to_owned(),
                    reason: "row id page size differs from its offset index".to_owned(),
                });
            }
            for (position, id) in candidate.rows.clone().zip(ids) {
                if wanted.binary_search(&id).is_ok() {
                    positions.push(position);
                }
            }
        }
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let arrays = columns
            .iter()
            .map(|column| reader.column(*column, &positions))
            .collect::<Result<Vec<_>>>()?;
        let schema = std::sync::Arc::new(metadata.schema().project(columns)?);
        return Ok(vec![from_stored(RecordBatch::try_new(schema, arrays)?)?]);
    }
    let ranges: Vec<_> = candidates.into_iter().map(|c| c.rows).collect();
    read_rows_with_parquet_reader(
        path,
        metadata,
        rowid,
        wanted,
        columns,
        &ranges,
        &group_starts,
        rows,
    )
}

/// The candidate runs of rows for `wanted` ids in column `rowid`, in a
/// file whose row groups start at `group_starts`.
fn candidates(
    metadata: &parquet::file::metadata::ParquetMetaData,
    group_starts: &[usize],
    rowid: usize,
    wanted: &[i64],
) -> Vec<Candidate> {
    use parquet::file::page_index::column_index::ColumnIndexMetaData;
    let mut candidates = Vec::new();
    for (group, row_group) in metadata.row_groups().iter().enumerate() {
        let rows = row_group.num_rows() as usize;
        let base = group_starts[group];
        let pages = metadata
            .offset_index()
            .and_then(|o| o.get(group))
            .and_then(|o| o.get(rowid))
            .map(|o| o.page_locations());
        let index = metadata
            .column_index()
            .and_then(|c| c.get(group))
            .and_then(|c| c.get(rowid));
        match pages {
            Some(pages) => {
                for (page, location) in pages.iter().enumerate() {
                    let start = location.first_row_index as usize;
                    let end = pages
                        .get(page + 1)
                        .map(|next| next.first_row_index as usize)
                        .unwrap_or(rows);
                    let bounds = match index {
                        Some(ColumnIndexMetaData::INT64(index)) => {
                            index.min_value(page).zip(index.max_value(page))
                        }
                        _ => None,
                    };
                    let may_hold = match bounds {
                        Some((min, max)) => {
                            let first = wanted.partition_point(|id| id < min);
                            wanted.get(first).is_some_and(|id| id <= max)
                        }
                        None => true,
                    };
                    if may_hold && end > start {
                        candidates.push(Candidate {
                            group,
                            page: Some(page),
                            rows: base + start..base + end,
                        });
                    }
                }
            }
            None if rows > 0 => candidates.push(Candidate {
                group,
                page: None,
                rows: base..base + rows,
            }),
            None => {}
        }
    }
    candidates
}

/// The first row of each row group over the whole file, and the file's
/// row count.
pub(crate) fn row_group_starts(
    metadata: &parquet::file::metadata::ParquetMetaData,
) -> (Vec<usize>, usize) {
    let mut starts = Vec::with_capacity(metadata.num_row_groups());
    let mut rows = 0usize;
    for row_group in metadata.row_groups() {
        starts.push(rows);
        rows += usize::try_from(row_group.num_rows()).unwrap_or(0);
    }
    (starts, rows)
}

/// `read_rows_by_id` through Parquet's record-batch reader, over the
/// candidate row `ranges`: for column types the page-by-page path does not
/// decode.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_rows_with_parquet_reader(
    path: &Path,
    metadata: &parquet::arrow::arrow_reader::ArrowReaderMetadata,
    rowid: usize,
    wanted: &[i64],
    columns: &[usize],
    ranges: &[std::ops::Range<usize>],
    group_starts: &[usize],
    rows: usize,
) -> Result<Vec<RecordBatch>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let open = || -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
            file,
            metadata.clone(),
        ))
    };
    let builder = open()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [rowid]);
    let (groups, selection) = selection_in_groups(group_starts, rows, ranges);
    let reader = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_row_selection(selection)
        .build()?;
    // The ids come in the order of the candidate ranges.
    let mut positions = Vec::new();
    let mut candidate_rows = ranges.iter().flat_map(|range| range.clone());
    for batch in reader {
        let batch = batch?;
        let ids = batch.column(0).as_primitive::<Int64Type>();
        for id in ids.values() {
            let position = candidate_rows.next().ok_or_else(|| Error::Corrupt {
                path: path.to_owned(),
                reason: "more row ids than rows selected".to_owned(),
            })?;
            if wanted.binary_search(id).is_ok() {
                positions.push(position);
            }
        }
    }
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let builder = open()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), columns.iter().copied());
    let found: Vec<_> = positions.iter().map(|p| *p..*p + 1).collect();
    let (groups, selection) = selection_in_groups(group_starts, rows, &found);
    let reader = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_row_selection(selection)
        .build()?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(from_stored(batch?)?);
    }
    Ok(batches)
}

/// The row groups holding `ranges` (ascending, each within one group, over
/// the whole file of `rows` rows whose groups start at `group_starts`) and
/// the selection of those ranges over just these groups: a reader opens
/// only the groups it reads, each column of each costing a decompressor.
pub(crate) fn selection_in_groups(
    group_starts: &[usize],
    rows: usize,
    ranges: &[std::ops::Range<usize>],
) -> (Vec<usize>, parquet::arrow::arrow_reader::RowSelection) {
    let mut groups: Vec<usize> = Vec::new();
    // Where each chosen group starts among the chosen groups' rows.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let mut selected = 0;
    let mut relative = Vec::with_capacity(ranges.len());
    for range in ranges {
        let group = group_starts
            .partition_point(|start| *start <= range.start)
            .saturating_sub(1);
        if groups.last() != Some(&group) {
            let end = group_starts.get(group + 1).copied().unwrap_or(rows);
            groups.push(group);
            starts.push((group_starts[group], selected));
            selected += end - group_starts[group];
        }
        let (absolute, at) = starts[starts.len() - 1];
        relative.push(range.start - absolute + at..range.end - absolute + at);
    }
    let selection = parquet::arrow::arrow_reader::RowSelection::from_consecutive_ranges(
        relative.into_iter(),
        selected,
    );
    (groups, selection)
}

/// A segment's footer with its page index, read once and kept while the
/// segment lives (see `Store::fetch_rows`).
pub(crate) fn load_metadata(
    path: &Path,
) -> Result<parquet::arrow::arrow_reader::ArrowReaderMetadata> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let options = ArrowReaderOptions::new()
        .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
    Ok(ArrowReaderMetadata::load(&file, options)?)
}
