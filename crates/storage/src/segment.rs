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
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use tempora_catalog::SegmentDef;

use crate::{Error, Result, io_error};

/// Rows per Parquet row group: large enough for good compression, small enough
/// that statistics prune usefully inside one chunk.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Rows per data page at most: pages are what the page index prunes, so a
/// lookup of a few rows by time, or of one row by id, decodes a few
/// thousand values per column, not a megabyte. 4K rather than 16K rows: a
/// point change decodes a quarter of the values, for 2% more bytes on disk
/// in the benchmark.
const PAGE_ROWS: usize = 4 * 1024;

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
                if time_column == Some(index) {
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
        let mut writer = ArrowWriter::try_new(
            &mut sink,
            batch.schema(),
            Some(writer_properties(&batch.schema(), time_column)?),
        )?;
        writer.write(batch)?;
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
        batches.push(batch?);
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
        batches.push(batch?);
    }
    Ok(batches)
}

/// The rows of a segment whose row id (column `rowid_column`) is in
/// `wanted`. The page index of the row id column narrows the search to the
/// pages whose id range holds a wanted id (rows are written in id order
/// within a time range, so that is usually one page); the ids of those
/// pages are read, then only the matching rows' pages of the `columns`
/// (root column positions) asked for.
pub(crate) fn read_rows_by_id(
    path: &Path,
    metadata: &parquet::arrow::arrow_reader::ArrowReaderMetadata,
    rowid_column: &str,
    wanted: &[i64],
    columns: &[usize],
) -> Result<Vec<RecordBatch>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::page_index::column_index::ColumnIndexMetaData;

    // `wanted` is sorted: membership is a binary search.
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let open = || -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
            file,
            metadata.clone(),
        ))
    };
    let builder = open()?;
    let column = builder.schema().index_of(rowid_column)?;
    let metadata = builder.metadata().clone();
    // Row ranges (over the whole file) whose ids may include a wanted one.
    let mut candidates = Vec::new();
    let mut base = 0usize;
    let mut group_starts = Vec::new();
    for (group, row_group) in metadata.row_groups().iter().enumerate() {
        let rows = row_group.num_rows() as usize;
        group_starts.push(base);
        let pages = metadata
            .offset_index()
            .and_then(|o| o.get(group))
            .and_then(|o| o.get(column))
            .map(|o| o.page_locations());
        let index = metadata
            .column_index()
            .and_then(|c| c.get(group))
            .and_then(|c| c.get(column));
        match (pages, index) {
            (Some(pages), Some(ColumnIndexMetaData::INT64(index))) => {
                for (page, location) in pages.iter().enumerate() {
                    let start = location.first_row_index as usize;
                    let end = pages
                        .get(page + 1)
                        .map(|next| next.first_row_index as usize)
                        .unwrap_or(rows);
                    let may_hold = match (index.min_value(page), index.max_value(page)) {
                        (Some(min), Some(max)) => {
                            let first = wanted.partition_point(|id| id < min);
                            wanted.get(first).is_some_and(|id| id <= max)
                        }
                        _ => true,
                    };
                    if may_hold && end > start {
                        candidates.push(base + start..base + end);
                    }
                }
            }
            _ => candidates.push(base..base + rows),
        }
        base += rows;
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
    let (groups, selection) = selection_in_groups(&group_starts, base, &candidates);
    let reader = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_row_selection(selection)
        .build()?;
    // The ids come in the order of the candidate ranges.
    let mut positions = Vec::new();
    let mut rows = candidates.iter().flat_map(|range| range.clone());
    for batch in reader {
        let batch = batch?;
        let ids = batch.column(0).as_primitive::<Int64Type>();
        for id in ids.values() {
            let position = rows.next().ok_or_else(|| Error::Corrupt {
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
    let rows: Vec<_> = positions.iter().map(|p| *p..*p + 1).collect();
    let (groups, selection) = selection_in_groups(&group_starts, base, &rows);
    let reader = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_row_selection(selection)
        .build()?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(batch?);
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
