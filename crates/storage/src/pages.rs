//! Point reads of a segment, page by page.
//!
//! A statement that names one row by its key needs one page of each column
//! it reads. Parquet's record-batch reader would build a column reader per
//! column, and each builds fresh zstd contexts: their set-up runs CPUID,
//! which traps to the hypervisor on a virtual machine, and their memory is
//! faulted in anew. Here the offset index gives each page's byte range, the
//! page header is parsed from the file (Thrift compact protocol, see
//! `docs/formats/segment.md`), the page is decompressed with a zstd context
//! kept per thread, and the value is read from it: floats and byte arrays
//! straight from their position in the page (`page_values`), other columns
//! by Parquet's column decoder (`ColumnReaderImpl`), which decodes only
//! the rows asked for.
//!
//! The path covers the Arrow types tempora stores in segments but `oid`
//! (UInt32); for other columns, or a segment without an offset index,
//! `PointReader::open` answers `None` and the caller uses the record-batch
//! reader.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::basic::{Compression, Encoding, Type as PhysicalType};
use parquet::column::page::{Page, PageMetadata, PageReader};
use parquet::column::reader::ColumnReaderImpl;
use parquet::data_type::{
    BoolType, ByteArrayType, DataType as ParquetDataType, DoubleType, FixedLenByteArrayType,
    FloatType, Int32Type, Int64Type,
};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::page_index::offset_index::PageLocation;

use crate::{Error, Result, io_error, page_values};

thread_local! {
    /// One zstd decompression context per thread, made on first use.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
    /// The compressed bytes of the page being read. Kept, so that its
    /// memory stays mapped: a fresh buffer each time is faulted in anew
    /// once the allocator has handed the last one back to the kernel.
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads single rows of one segment file through its offset index.
pub(crate) struct PointReader<'a> {
    path: &'a Path,
    file: File,
    metadata: &'a ParquetMetaData,
    schema: SchemaRef,
    /// The first row of each row group, over the whole file.
    group_starts: &'a [usize],
    rows: usize,
}

impl<'a> PointReader<'a> {
    /// A reader for `columns` (root positions) of the segment at `path`
    /// (of `rows` rows, its row groups starting at `group_starts`), or
    /// `None` when one of them is of a kind this path does not decode.
    pub(crate) fn open(
        path: &'a Path,
        metadata: &'a ArrowReaderMetadata,
        columns: &[usize],
        group_starts: &'a [usize],
        rows: usize,
    ) -> Result<Option<Self>> {
        let schema = metadata.schema().clone();
        let parquet = metadata.metadata().as_ref();
        let leaves = parquet.file_metadata().schema_descr();
        if leaves.num_columns() != schema.fields().len() {
            return Ok(None);
        }
        let Some(offset_index) = parquet.offset_index() else {
            return Ok(None);
        };
        for &column in columns {
            let Some(field) = schema.fields().get(column) else {
                return Ok(None);
            };
            let leaf = leaves.column(column);
            if leaf.max_rep_level() != 0
                || !decodes(field.data_type(), leaf.physical_type(), leaf.type_length())
            {
                return Ok(None);
            }
            for (group, row_group) in parquet.row_groups().iter().enumerate() {
                let compressed = row_group.column(column).compression();
                if !matches!(compressed, Compression::ZSTD(_) | Compression::UNCOMPRESSED)
                    || offset_index
                        .get(group)
                        .and_then(|o| o.get(column))
                        .is_none()
                {
                    return Ok(None);
                }
            }
        }
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        Ok(Some(PointReader {
            path,
            file,
            metadata: parquet,
            schema,
            group_starts,
            rows,
        }))
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: self.path.to_owned(),
            reason: reason.into(),
        }
    }

    fn locations(&self, group: usize, column: usize) -> Result<&'a [PageLocation]> {
        self.metadata
            .offset_index()
            .and_then(|o| o.get(group))
            .and_then(|o| o.get(column))
            .map(|o| o.page_locations().as_slice())
            .ok_or_else(|| self.corrupt("offset index missing for a column chunk"))
    }

    /// The rows of group `group` in page `page` of `column`.
    fn page_rows(&self, group: usize, column: usize, page: usize) -> Result<usize> {
        let locations = self.locations(group, column)?;
        let group_rows = usize::try_from(self.metadata.row_group(group).num_rows()).unwrap_or(0);
        let start = locations
            .get(page)
            .map(|l| l.first_row_index)
            .ok_or_else(|| self.corrupt("page beyond the offset index"))?;
        let end = locations
            .get(page + 1)
            .map(|l| l.first_row_index)
            .unwrap_or(group_rows as i64);
        usize::try_from(end - start).map_err(|_| self.corrupt("offset index rows run backwards"))
    }

    /// All values of page `page` of a non-null INT64 column in group
    /// `group`: the row ids of a candidate page.
    pub(crate) fn int64_page(&self, group: usize, column: usize, page: usize) -> Result<Vec<i64>> {
        let rows = self.page_rows(group, column, page)?;
        let values = self.read_page::<Int64Type>(group, column, page, &[(0, rows)])?;
        values
            .into_iter()
            .map(|v| v.ok_or_else(|| self.corrupt("null in the row id column")))
            .collect()
    }

    /// The values of `column` at `rows` (ascending positions over the whole
    /// file), as an array of the column's Arrow type.
    pub(crate) fn column(&self, column: usize, rows: &[usize]) -> Result<ArrayRef> {
        let leaf = self.metadata.file_metadata().schema_descr().column(column);
        let data_type = self.schema.field(column).data_type().clone();
        if let Some(array) = self.column_directly(column, &data_type, rows)? {
            return Ok(array);
        }
        let array: ArrayRef = match (&data_type, leaf.physical_type()) {
            (DataType::Boolean, PhysicalType::BOOLEAN) => {
                Arc::new(BooleanArray::from(self.values::<BoolType>(column, rows)?))
            }
            (DataType::Int16, PhysicalType::INT32) => Arc::new(Int16Array::from_iter(
                self.values::<Int32Type>(column, rows)?
                    .into_iter()
                    .map(|v| v.map(|v| v as i16)),
            )),
            (DataType::Int32, PhysicalType::INT32) => {
                Arc::new(Int32Array::from(self.values::<Int32Type>(column, rows)?))
            }
            (DataType::Date32, PhysicalType::INT32) => {
                Arc::new(Date32Array::from(self.values::<Int32Type>(column, rows)?))
            }
            (DataType::Int64, PhysicalType::INT64) => {
                Arc::new(Int64Array::from(self.values::<Int64Type>(column, rows)?))
            }
            (DataType::Timestamp(TimeUnit::Microsecond, zone), PhysicalType::INT64) => Arc::new(
                TimestampMicrosecondArray::from(self.values::<Int64Type>(column, rows)?)
                    .with_timezone_opt(zone.clone()),
            ),
            (DataType::Float32, PhysicalType::FLOAT) => {
                Arc::new(Float32Array::from(self.values::<FloatType>(column, rows)?))
            }
            (DataType::Float64, PhysicalType::DOUBLE) => {
                Arc::new(Float64Array::from(self.values::<DoubleType>(column, rows)?))
            }
            (DataType::Decimal128(precision, scale), physical) => {
                let values: Vec<Option<i128>> = match physical {
                    PhysicalType::INT32 => self
                        .values::<Int32Type>(column, rows)?
                        .into_iter()
                        .map(|v| v.map(i128::from))
                        .collect(),
                    PhysicalType::INT64 => self
                        .values::<Int64Type>(column, rows)?
                        .into_iter()
                        .map(|v| v.map(i128::from))
                        .collect(),
                    _ => self
                        .values::<FixedLenByteArrayType>(column, rows)?
                        .into_iter()
                        .map(|v| match v {
                            None => Some(None),
                            Some(bytes) => big_endian_i128(bytes.data()).map(Some),
                        })
                        .collect::<Option<_>>()
                        .ok_or_else(|| self.corrupt("decimal wider than 16 bytes"))?,
                };
                Arc::new(
                    Decimal128Array::from(values).with_precision_and_scale(*precision, *scale)?,
                )
            }
            (DataType::Utf8, PhysicalType::BYTE_ARRAY) => {
                let values = self.values::<ByteArrayType>(column, rows)?;
                let strings = values
                    .iter()
                    .map(|v| {
                        v.as_ref()
                            .map(|b| std::str::from_utf8(b.data()))
                            .transpose()
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| self.corrupt("text column holds invalid UTF-8"))?;
                Arc::new(StringArray::from(strings))
            }
            (DataType::FixedSizeBinary(width), PhysicalType::FIXED_LEN_BYTE_ARRAY) => {
                let values = self.values::<FixedLenByteArrayType>(column, rows)?;
                let bytes = values.iter().map(|v| v.as_ref().map(|b| b.data()));
                let array = FixedSizeBinaryArray::try_from_sparse_iter_with_size(bytes, *width)?;
                if array.len() != rows.len() {
                    return Err(self.corrupt("fixed-size values of the wrong width"));
                }
                Arc::new(array)
            }
            (DataType::Binary, PhysicalType::BYTE_ARRAY) => {
                let values = self.values::<ByteArrayType>(column, rows)?;
                Arc::new(BinaryArray::from(
                    values
                        .iter()
                        .map(|v| v.as_ref().map(|b| b.data()))
                        .collect::<Vec<_>>(),
                ))
            }
            _ => {
                return Err(self.corrupt(format!(
                    "column {column} of type {data_type} is not read by point reads"
                )));
            }
        };
        Ok(array)
    }

    /// The values of `column` at `rows` read straight from their pages
    /// (see `page_values`), for floats and byte arrays; None where a page
    /// is of a layout that module does not read, for the column reader.
    fn column_directly(
        &self,
        column: usize,
        data_type: &DataType,
        rows: &[usize],
    ) -> Result<Option<ArrayRef>> {
        let array: ArrayRef = match data_type {
            DataType::Float64 => {
                let Some(values) = self.direct_values(column, rows, |page| page.fixed::<8>())?
                else {
                    return Ok(None);
                };
                Arc::new(Float64Array::from_iter(
                    values.into_iter().map(|v| v.map(f64::from_le_bytes)),
                ))
            }
            DataType::Float32 => {
                let Some(values) = self.direct_values(column, rows, |page| page.fixed::<4>())?
                else {
                    return Ok(None);
                };
                Arc::new(Float32Array::from_iter(
                    values.into_iter().map(|v| v.map(f32::from_le_bytes)),
                ))
            }
            DataType::Utf8 | DataType::Binary => {
                let Some(values) =
                    self.direct_values(column, rows, |page| page.byte_array().map(<[u8]>::to_vec))?
                else {
                    return Ok(None);
                };
                if data_type == &DataType::Binary {
                    Arc::new(BinaryArray::from_iter(values))
                } else {
                    let strings = values
                        .into_iter()
                        .map(|v| v.map(String::from_utf8).transpose())
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|_| self.corrupt("text column holds invalid UTF-8"))?;
                    Arc::new(StringArray::from(strings))
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(array))
    }

    /// The value of `column` at each of `rows` that `decode` reads from
    /// its located page; None when a page is not a v1 data page with RLE
    /// levels, or `decode` cannot read it.
    fn direct_values<T>(
        &self,
        column: usize,
        rows: &[usize],
        decode: impl Fn(&LocatedValue<'_>) -> Option<T>,
    ) -> Result<Option<Vec<Option<T>>>> {
        let mut out = Vec::with_capacity(rows.len());
        for &row in rows {
            let (group, in_group, page) = self.page_of(column, row)?;
            let location = &self.locations(group, column)?[page];
            let chunk = self.metadata.row_group(group).column(column);
            let compressed = !matches!(chunk.compression(), Compression::UNCOMPRESSED);
            let nullable = chunk.column_descr().max_def_level() > 0;
            let length = usize::try_from(location.compressed_page_size)
                .map_err(|_| self.corrupt("negative page size"))?;
            let Page::DataPage {
                buf,
                num_values,
                encoding,
                def_level_encoding,
                ..
            } = self.load(location.offset, length, compressed)?
            else {
                return Ok(None);
            };
            if nullable && def_level_encoding != Encoding::RLE {
                return Ok(None);
            }
            let in_page = in_group - location.first_row_index as usize;
            let Some((index, stored, values)) =
                page_values::locate(&buf, num_values as usize, nullable, in_page)
            else {
                return Ok(None);
            };
            let Some(index) = index else {
                out.push(None);
                continue;
            };
            let dictionary = match encoding {
                Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY => {
                    match self.dictionary_page(group, column)? {
                        Some(Page::DictionaryPage {
                            buf,
                            encoding: Encoding::PLAIN | Encoding::PLAIN_DICTIONARY,
                            ..
                        }) => Some(buf),
                        _ => return Ok(None),
                    }
                }
                _ => None,
            };
            let located = LocatedValue {
                encoding,
                values,
                stored,
                index,
                dictionary: dictionary.as_deref(),
            };
            match decode(&located) {
                Some(value) => out.push(Some(value)),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// The row group of file row `row`, the row's place in it, and the
    /// page of `column` (in that group's offset index) that holds it.
    fn page_of(&self, column: usize, row: usize) -> Result<(usize, usize, usize)> {
        if row >= self.rows {
            return Err(self.corrupt("point read beyond the last row"));
        }
        let group = self.group_starts.partition_point(|s| *s <= row) - 1;
        let in_group = row - self.group_starts[group];
        let page = self
            .locations(group, column)?
            .partition_point(|l| l.first_row_index <= in_group as i64)
            .checked_sub(1)
            .ok_or_else(|| self.corrupt("offset index does not start at row 0"))?;
        Ok((group, in_group, page))
    }

    /// The dictionary page of `column` in group `group`, if it has one.
    fn dictionary_page(&self, group: usize, column: usize) -> Result<Option<Page>> {
        let chunk = self.metadata.row_group(group).column(column);
        let Some(offset) = chunk.dictionary_page_offset() else {
            return Ok(None);
        };
        let first = self
            .locations(group, column)?
            .first()
            .map(|l| l.offset)
            .ok_or_else(|| self.corrupt("column chunk without pages"))?;
        let length = usize::try_from(first - offset)
            .map_err(|_| self.corrupt("dictionary page after the data pages"))?;
        let compressed = !matches!(chunk.compression(), Compression::UNCOMPRESSED);
        Ok(Some(self.load(offset, length, compressed)?))
    }

    /// The values of `column` at `rows`, grouped page by page.
    fn values<T: ParquetDataType>(
        &self,
        column: usize,
        rows: &[usize],
    ) -> Result<Vec<Option<T::T>>> {
        let mut out = Vec::with_capacity(rows.len());
        let mut at = 0;
        while at < rows.len() {
            let row = rows[at];
            let (group, _, page) = self.page_of(column, row)?;
            let page_start = self.locations(group, column)?[page].first_row_index as usize;
            let page_end = page_start + self.page_rows(group, column, page)?;
            // Every wanted row of this page, as single-row runs.
            let mut runs = Vec::new();
            while let Some(&next) = rows.get(at) {
                let next_in_group = next.wrapping_sub(self.group_starts[group]);
                if next < self.group_starts[group] || next_in_group >= page_end {
                    break;
                }
                runs.push((next_in_group - page_start, 1));
                at += 1;
            }
            out.extend(self.read_page::<T>(group, column, page, &runs)?);
        }
        Ok(out)
    }

    /// Decodes `runs` (start within the page, row count; ascending) of page
    /// `page` of `column` in group `group`, one entry per row.
    fn read_page<T: ParquetDataType>(
        &self,
        group: usize,
        column: usize,
        page: usize,
        runs: &[(usize, usize)],
    ) -> Result<Vec<Option<T::T>>> {
        let chunk = self.metadata.row_group(group).column(column);
        let compressed = !matches!(chunk.compression(), Compression::UNCOMPRESSED);
        let locations = self.locations(group, column)?;
        let location = &locations[page];
        let mut pages = VecDeque::new();
        if let Some(dictionary) = self.dictionary_page(group, column)? {
            pages.push_back((dictionary, None));
        }
        let length = usize::try_from(location.compressed_page_size)
            .map_err(|_| self.corrupt("negative page size"))?;
        let rows = self.page_rows(group, column, page)?;
        pages.push_back((self.load(location.offset, length, compressed)?, Some(rows)));
        let descr = chunk.column_descr_ptr();
        let max_def = descr.max_def_level();
        let mut reader = ColumnReaderImpl::<T>::new(descr, Box::new(LoadedPages { pages }));
        let mut out = Vec::new();
        let (mut values, mut levels) = (Vec::new(), Vec::new());
        let mut at = 0;
        for &(start, count) in runs {
            if start + count > rows || start < at {
                return Err(self.corrupt("point read outside its page"));
            }
            if start > at && reader.skip_records(start - at)? != start - at {
                return Err(self.corrupt("page holds fewer rows than its offset index says"));
            }
            values.clear();
            levels.clear();
            let (read, _, _) = reader.read_records(
                count,
                (max_def > 0).then_some(&mut levels),
                None,
                &mut values,
            )?;
            if read != count {
                return Err(self.corrupt("page holds fewer rows than its offset index says"));
            }
            if max_def > 0 {
                let mut present = values.drain(..);
                for level in &levels {
                    out.push(if *level == max_def {
                        Some(
                            present
                                .next()
                                .ok_or_else(|| self.corrupt("fewer values than levels"))?,
                        )
                    } else {
                        None
                    });
                }
            } else {
                out.extend(values.drain(..).map(Some));
            }
            at = start + count;
        }
        Ok(out)
    }

    /// Reads, parses and decompresses the page at `offset` (`length` bytes,
    /// its header included).
    fn load(&self, offset: i64, length: usize, compressed: bool) -> Result<Page> {
        let offset = u64::try_from(offset).map_err(|_| self.corrupt("negative page offset"))?;
        READ_BUFFER.with(|buffer| {
            let mut bytes = buffer.borrow_mut();
            bytes.clear();
            bytes.resize(length, 0);
            self.file
                .read_exact_at(&mut bytes, offset)
                .map_err(|e| io_error(self.path, e))?;
            self.decode_page(&bytes, compressed)
        })
    }

    /// The page whose header starts `bytes`.
    fn decode_page(&self, bytes: &[u8], compressed: bool) -> Result<Page> {
        let (header, header_length) =
            PageHeader::parse(bytes).map_err(|reason| self.corrupt(reason))?;
        let body_length = usize::try_from(header.compressed_size)
            .ok()
            .filter(|n| header_length + n <= bytes.len())
            .ok_or_else(|| self.corrupt("page body runs past its offset-index range"))?;
        let uncompressed = usize::try_from(header.uncompressed_size)
            .map_err(|_| self.corrupt("negative uncompressed page size"))?;
        let body = &bytes[header_length..header_length + body_length];
        let encoding = |code| encoding(code).ok_or_else(|| self.corrupt("unknown page encoding"));
        let count = |n: i32| u32::try_from(n).map_err(|_| self.corrupt("negative page count"));
        let page = match header.page_type {
            PAGE_DICTIONARY => Page::DictionaryPage {
                buf: self.decompress(body, uncompressed, compressed)?,
                num_values: count(header.num_values)?,
                encoding: encoding(header.encoding)?,
                is_sorted: header.is_sorted,
            },
            PAGE_DATA => Page::DataPage {
                buf: self.decompress(body, uncompressed, compressed)?,
                num_values: count(header.num_values)?,
                encoding: encoding(header.encoding)?,
                def_level_encoding: encoding(header.def_level_encoding)?,
                rep_level_encoding: encoding(header.rep_level_encoding)?,
                statistics: None,
            },
            PAGE_DATA_V2 => {
                // The levels come first and are never compressed.
                let levels = usize::try_from(header.def_levels_length + header.rep_levels_length)
                    .ok()
                    .filter(|n| *n <= body.len() && *n <= uncompressed)
                    .ok_or_else(|| self.corrupt("implausible level lengths in a v2 page"))?;
                let buf = if compressed && header.is_compressed {
                    let values = self.decompress(&body[levels..], uncompressed - levels, true)?;
                    let mut buf = Vec::with_capacity(uncompressed);
                    buf.extend_from_slice(&body[..levels]);
                    buf.extend_from_slice(&values);
                    Bytes::from(buf)
                } else {
                    Bytes::copy_from_slice(body)
                };
                Page::DataPageV2 {
                    buf,
                    num_values: count(header.num_values)?,
                    encoding: encoding(header.encoding)?,
                    num_nulls: count(header.num_nulls)?,
                    num_rows: count(header.num_rows)?,
                    def_levels_byte_len: count(header.def_levels_length)?,
                    rep_levels_byte_len: count(header.rep_levels_length)?,
                    is_compressed: false,
                    statistics: None,
                }
            }
            other => return Err(self.corrupt(format!("unexpected page type {other}"))),
        };
        Ok(page)
    }

    /// `body` decompressed to `length` bytes (or as it is, if the column
    /// chunk is not compressed).
    fn decompress(&self, body: &[u8], length: usize, compressed: bool) -> Result<Bytes> {
        if !compressed {
            if body.len() != length {
                return Err(self.corrupt("uncompressed page of the wrong size"));
            }
            return Ok(Bytes::copy_from_slice(body));
        }
        if length == 0 {
            return Ok(Bytes::new());
        }
        let mut out = Vec::with_capacity(length);
        DECOMPRESSOR.with(|cell| -> Result<()> {
            let mut cell = cell.borrow_mut();
            let decompressor = match cell.as_mut() {
                Some(decompressor) => decompressor,
                None => cell
                    .insert(zstd::bulk::Decompressor::new().map_err(|e| io_error(self.path, e))?),
            };
            decompressor
                .decompress_to_buffer(body, &mut out)
                .map_err(|e| self.corrupt(format!("zstd: {e}")))?;
            Ok(())
        })?;
        if out.len() != length {
            return Err(self.corrupt("page decompressed to the wrong size"));
        }
        Ok(Bytes::from(out))
    }
}

/// A stored value found in a data page: value `index` of the page's
/// `stored` values, in its value section, with the column chunk's
/// dictionary when the page is dictionary-encoded.
struct LocatedValue<'a> {
    encoding: Encoding,
    values: &'a [u8],
    stored: usize,
    index: usize,
    dictionary: Option<&'a [u8]>,
}

impl LocatedValue<'_> {
    /// The value as `W` little-endian bytes (a float), BYTE_STREAM_SPLIT or
    /// PLAIN.
    fn fixed<const W: usize>(&self) -> Option<[u8; W]> {
        match self.encoding {
            Encoding::BYTE_STREAM_SPLIT => {
                page_values::byte_stream_split::<W>(self.values, self.stored, self.index)
            }
            Encoding::PLAIN => page_values::plain_fixed::<W>(self.values, self.index),
            _ => None,
        }
    }

    /// The value as bytes: an entry of the dictionary, or PLAIN.
    fn byte_array(&self) -> Option<&[u8]> {
        match (self.encoding, self.dictionary) {
            (Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY, Some(dictionary)) => {
                let entry = page_values::dictionary_index(self.values, self.index)?;
                page_values::plain_byte_array(dictionary, entry)
            }
            (Encoding::PLAIN, _) => page_values::plain_byte_array(self.values, self.index),
            _ => None,
        }
    }
}

/// Whether `PointReader::column` decodes Arrow type `data_type` stored as
/// `physical` (of `width` bytes, if fixed).
fn decodes(data_type: &DataType, physical: PhysicalType, width: i32) -> bool {
    matches!(
        (data_type, physical),
        (DataType::Boolean, PhysicalType::BOOLEAN)
            | (
                DataType::Int16 | DataType::Int32 | DataType::Date32,
                PhysicalType::INT32
            )
            | (
                DataType::Int64 | DataType::Timestamp(TimeUnit::Microsecond, _),
                PhysicalType::INT64
            )
            | (DataType::Float32, PhysicalType::FLOAT)
            | (DataType::Float64, PhysicalType::DOUBLE)
            | (DataType::Utf8 | DataType::Binary, PhysicalType::BYTE_ARRAY)
            | (
                DataType::FixedSizeBinary(_),
                PhysicalType::FIXED_LEN_BYTE_ARRAY
            )
            | (
                DataType::Decimal128(..),
                PhysicalType::INT32 | PhysicalType::INT64
            )
    ) || (matches!(data_type, DataType::Decimal128(..))
        && physical == PhysicalType::FIXED_LEN_BYTE_ARRAY
        && (1..=16).contains(&width))
}

/// A big-endian two's-complement integer of at most 16 bytes.
fn big_endian_i128(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut wide = [fill; 16];
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(wide))
}

/// parquet.thrift's `Encoding` values.
fn encoding(code: i32) -> Option<Encoding> {
    Some(match code {
        0 => Encoding::PLAIN,
        2 => Encoding::PLAIN_DICTIONARY,
        3 => Encoding::RLE,
        5 => Encoding::DELTA_BINARY_PACKED,
        6 => Encoding::DELTA_LENGTH_BYTE_ARRAY,
        7 => Encoding::DELTA_BYTE_ARRAY,
        8 => Encoding::RLE_DICTIONARY,
        9 => Encoding::BYTE_STREAM_SPLIT,
        _ => return None,
    })
}

/// The pages one column reader decodes: a dictionary page, if the column
/// chunk has one, then one data page (with its row count).
struct LoadedPages {
    pages: VecDeque<(Page, Option<usize>)>,
}

impl Iterator for LoadedPages {
    type Item = parquet::errors::Result<Page>;
    fn next(&mut self) -> Option<Self::Item> {
        self.pages.pop_front().map(|(page, _)| Ok(page))
    }
}

impl PageReader for LoadedPages {
    fn get_next_page(&mut self) -> parquet::errors::Result<Option<Page>> {
        Ok(self.pages.pop_front().map(|(page, _)| page))
    }
    fn peek_next_page(&mut self) -> parquet::errors::Result<Option<PageMetadata>> {
        Ok(self.pages.front().map(|(page, rows)| PageMetadata {
            num_rows: *rows,
            num_levels: None,
            is_dict: page.is_dictionary_page(),
        }))
    }
    fn skip_next_page(&mut self) -> parquet::errors::Result<()> {
        self.pages.pop_front();
        Ok(())
    }
}

// parquet.thrift's `PageType` values.
const PAGE_DATA: i32 = 0;
const PAGE_DICTIONARY: i32 = 2;
const PAGE_DATA_V2: i32 = 3;

/// The fields of a page header (parquet.thrift `PageHeader` and the data,
/// dictionary or v2 data header inside it) that a point read uses.
#[derive(Debug, PartialEq)]
pub(crate) struct PageHeader {
    pub(crate) page_type: i32,
    pub(crate) uncompressed_size: i32,
    pub(crate) compressed_size: i32,
    pub(crate) num_values: i32,
    pub(crate) encoding: i32,
    pub(crate) def_level_encoding: i32,
    pub(crate) rep_level_encoding: i32,
    pub(crate) is_sorted: bool,
    pub(crate) num_nulls: i32,
    pub(crate) num_rows: i32,
    pub(crate) def_levels_length: i32,
    pub(crate) rep_levels_length: i32,
    pub(crate) is_compressed: bool,
}

impl PageHeader {
    /// Parses the header at the start of `bytes`, and says how many bytes
    /// it took.
    pub(crate) fn parse(bytes: &[u8]) -> std::result::Result<(PageHeader, usize), String> {
        let mut header = PageHeader {
            page_type: -1,
            uncompressed_size: -1,
            compressed_size: -1,
            num_values: -1,
            encoding: -1,
            def_level_encoding: -1,
            rep_level_encoding: -1,
            is_sorted: false,
            num_nulls: 0,
            num_rows: 0,
            def_levels_length: 0,
            rep_levels_length: 0,
            // Absent means compressed (parquet.thrift).
            is_compressed: true,
        };
        let mut input = Compact { bytes, at: 0 };
        input.read_struct(0, &mut |input, id, kind| {
            match (id, kind) {
                (1, I32) => header.page_type = input.i32()?,
                (2, I32) => header.uncompressed_size = input.i32()?,
                (3, I32) => header.compressed_size = input.i32()?,
                (5, STRUCT) => input.read_struct(1, &mut |input, id, kind| {
                    match (id, kind) {
                        (1, I32) => header.num_values = input.i32()?,
                        (2, I32) => header.encoding = input.i32()?,
                        (3, I32) => header.def_level_encoding = input.i32()?,
                        (4, I32) => header.rep_level_encoding = input.i32()?,
                        _ => input.skip(kind, 2)?,
                    }
                    Ok(())
                })?,
                (7, STRUCT) => input.read_struct(1, &mut |input, id, kind| {
                    match (id, kind) {
                        (1, I32) => header.num_values = input.i32()?,
                        (2, I32) => header.encoding = input.i32()?,
                        (3, TRUE | FALSE) => header.is_sorted = kind == TRUE,
                        _ => input.skip(kind, 2)?,
                    }
                    Ok(())
                })?,
                (8, STRUCT) => input.read_struct(1, &mut |input, id, kind| {
                    match (id, kind) {
                        (1, I32) => header.num_values = input.i32()?,
                        (2, I32) => header.num_nulls = input.i32()?,
                        (3, I32) => header.num_rows = input.i32()?,
                        (4, I32) => header.encoding = input.i32()?,
                        (5, I32) => header.def_levels_length = input.i32()?,
                        (6, I32) => header.rep_levels_length = input.i32()?,
                        (7, TRUE | FALSE) => header.is_compressed = kind == TRUE,
                        _ => input.skip(kind, 2)?,
                    }
                    Ok(())
                })?,
                _ => input.skip(kind, 1)?,
            }
            Ok(())
        })?;
        if header.page_type < 0 || header.compressed_size < 0 || header.uncompressed_size < 0 {
            return Err("page header without its type or sizes".to_owned());
        }
        Ok((header, input.at))
    }
}

// Thrift compact protocol type codes.
const TRUE: u8 = 1;
const FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;

/// Nesting deeper than any page header's: corrupt input, not recursion
/// without end.
const MAX_DEPTH: u32 = 16;

/// A reader of Thrift compact protocol values.
struct Compact<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Parsed<T> = std::result::Result<T, String>;

impl Compact<'_> {
    fn byte(&mut self) -> Parsed<u8> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| "page header cut short".to_owned())?;
        self.at += 1;
        Ok(byte)
    }

    fn take(&mut self, n: usize) -> Parsed<()> {
        if self.bytes.len() - self.at < n {
            return Err("page header cut short".to_owned());
        }
        self.at += n;
        Ok(())
    }

    fn varint(&mut self) -> Parsed<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 64 bits in a page header".to_owned())
    }

    fn zigzag(&mut self) -> Parsed<i64> {
        let n = self.varint()?;
        Ok((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    fn i32(&mut self) -> Parsed<i32> {
        i32::try_from(self.zigzag()?).map_err(|_| "i32 out of range in a page header".to_owned())
    }

    fn length(&mut self) -> Parsed<usize> {
        usize::try_from(self.varint()?).map_err(|_| "length out of range".to_owned())
    }

    /// Reads a struct's fields up to its stop byte, handing each field's
    /// id and type to `field`, which reads or skips the value.
    fn read_struct(
        &mut self,
        depth: u32,
        field: &mut dyn FnMut(&mut Self, i16, u8) -> Parsed<()>,
    ) -> Parsed<()> {
        if depth > MAX_DEPTH {
            return Err("page header nested too deeply".to_owned());
        }
        let mut last = 0i16;
        loop {
            let byte = self.byte()?;
            if byte == 0 {
                return Ok(());
            }
            let kind = byte & 0x0f;
            let delta = byte >> 4;
            let id = if delta == 0 {
                i16::try_from(self.zigzag()?).map_err(|_| "field id out of range".to_owned())?
            } else {
                last.checked_add(i16::from(delta))
                    .ok_or_else(|| "field id out of range".to_owned())?
            };
            last = id;
            field(self, id, kind)?;
        }
    }

    /// Skips a value of type `kind`.
    fn skip(&mut self, kind: u8, depth: u32) -> Parsed<()> {
        if depth > MAX_DEPTH {
            return Err("page header nested too deeply".to_owned());
        }
        match kind {
            TRUE | FALSE => Ok(()),
            BYTE => self.take(1),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => self.take(8),
            BINARY => {
                let n = self.length()?;
                self.take(n)
            }
            LIST | SET => {
                let header = self.byte()?;
                let element = header & 0x0f;
                let count = match header >> 4 {
                    15 => self.length()?,
                    n => usize::from(n),
                };
                for _ in 0..count {
                    self.skip_element(element, depth + 1)?;
                }
                Ok(())
            }
            MAP => {
                let count = self.length()?;
                if count == 0 {
                    return Ok(());
                }
                let kinds = self.byte()?;
                for _ in 0..count {
                    self.skip_element(kinds >> 4, depth + 1)?;
                    self.skip_element(kinds & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            STRUCT => {
                self.read_struct(depth + 1, &mut |input, _, kind| input.skip(kind, depth + 1))
            }
            other => Err(format!("unknown Thrift type {other} in a page header")),
        }
    }

    /// Skips a list, set or map element: booleans there take a byte.
    fn skip_element(&mut self, kind: u8, depth: u32) -> Parsed<()> {
        match kind {
            TRUE | FALSE => self.take(1),
            _ => self.skip(kind, depth),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        IntervalMonthDayNanoArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
    };
    use datafusion::arrow::compute::{concat_batches, take_record_batch};
    use datafusion::arrow::datatypes::{
        DataType, Field, IntervalMonthDayNano, IntervalUnit, Schema, TimeUnit,
    };
    use proptest::prelude::*;

    use super::*;
    use crate::segment;

    const ROWID: &str = "_tempora_rowid";

    /// A segment of `rows` rows with a column of every type tempora
    /// stores, nullable ones null every seventh row, and row ids that run
    /// up in the first half and zigzag in the second (as an upsert's do).
    fn write_all_types(dir: &Path, rows: i64, with_oid: bool) -> (std::path::PathBuf, RecordBatch) {
        let nullable = |i: i64| i % 7 != 3;
        let mut fields = vec![
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new(
                "local",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("flag", DataType::Boolean, true),
            Field::new("small", DataType::Int16, true),
            Field::new("int", DataType::Int32, true),
            Field::new("big", DataType::Int64, true),
            Field::new("real", DataType::Float32, true),
            Field::new("double", DataType::Float64, true),
            Field::new("narrow", DataType::Decimal128(5, 1), true),
            Field::new("money", DataType::Decimal128(12, 2), true),
            Field::new("wide", DataType::Decimal128(38, 10), true),
            Field::new("device", DataType::Utf8, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("blob", DataType::Binary, true),
            Field::new("day", DataType::Date32, true),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from_iter_values(0..rows).with_timezone("UTC")),
            Arc::new(TimestampMicrosecondArray::from_iter(
                (0..rows).map(|i| nullable(i).then_some(i * 1000 - 5)),
            )),
            Arc::new(BooleanArray::from_iter(
                (0..rows).map(|i| nullable(i).then_some(i % 3 == 0)),
            )),
            Arc::new(Int16Array::from_iter(
                (0..rows).map(|i| nullable(i).then_some((i % 60_000 - 30_000) as i16)),
            )),
            Arc::new(Int32Array::from_iter(
                (0..rows).map(|i| nullable(i).then_some((i * 7919) as i32)),
            )),
            Arc::new(Int64Array::from_iter(
                (0..rows).map(|i| nullable(i).then_some(i * i - 17)),
            )),
            Arc::new(Float32Array::from_iter(
                (0..rows).map(|i| nullable(i).then_some(i as f32 / 3.0)),
            )),
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|i| nullable(i).then_some(i as f64 * -0.25)),
            )),
            Arc::new(
                Decimal128Array::from_iter(
                    (0..rows).map(|i| nullable(i).then_some(i128::from(i % 99_999) - 50_000)),
                )
                .with_precision_and_scale(5, 1)
                .unwrap(),
            ),
            Arc::new(
                Decimal128Array::from_iter(
                    (0..rows).map(|i| nullable(i).then_some(i128::from(i) * 1_000_003 - 7)),
                )
                .with_precision_and_scale(12, 2)
                .unwrap(),
            ),
            Arc::new(
                Decimal128Array::from_iter((0..rows).map(|i| {
                    nullable(i).then_some((i128::from(i) - 1000) * 10i128.pow(30) + 12_345)
                }))
                .with_precision_and_scale(38, 10)
                .unwrap(),
            ),
            // Few distinct values: dictionary encoded throughout.
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| nullable(i).then(|| format!("device_{:04}", i % 1000))),
            )),
            // All distinct: the dictionary overflows and later pages are plain.
            Arc::new(StringArray::from_iter((0..rows).map(|i| {
                nullable(i).then(|| format!("note {i} ünïcode {}", i * 31))
            }))),
            Arc::new(BinaryArray::from_iter((0..rows).map(|i| {
                nullable(i).then(|| i.to_le_bytes()[..(i % 8) as usize].to_vec())
            }))),
            Arc::new(Date32Array::from_iter(
                (0..rows).map(|i| nullable(i).then_some((i % 20_000 - 10_000) as i32)),
            )),
        ];
        // Parquet has no interval of nanoseconds: stored as 16 bytes.
        fields.push(Field::new(
            "span",
            DataType::Interval(IntervalUnit::MonthDayNano),
            true,
        ));
        columns.push(Arc::new(IntervalMonthDayNanoArray::from_iter(
            (0..rows).map(|i| {
                nullable(i).then_some(IntervalMonthDayNano::new(
                    i as i32 % 12 - 6,
                    -(i as i32 % 30),
                    i * 1000 - 1,
                ))
            }),
        )));
        if with_oid {
            fields.push(Field::new("oid", DataType::UInt32, true));
            columns.push(Arc::new(UInt32Array::from_iter(
                (0..rows).map(|i| nullable(i).then_some(i as u32 * 3)),
            )));
        }
        fields.push(Field::new(ROWID, DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from_iter_values(
            (0..rows).map(|i| rowid_of(rows, i)),
        )));
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let segment = segment::write_segment(dir, "s.parquet", &batch, Some(0)).unwrap();
        (dir.join(segment.file_name), batch)
    }

    /// The row id of row `i` of `rows` in `write_all_types`.
    fn rowid_of(rows: i64, i: i64) -> i64 {
        match (i < rows / 2, i % 2) {
            (true, _) => i,
            (false, 0) => rows + i,
            (false, _) => rows * 3 - i,
        }
    }

    /// Both read paths, as one batch each.
    fn both_paths(
        path: &Path,
        metadata: &ArrowReaderMetadata,
        wanted: &[i64],
        columns: &[usize],
    ) -> (RecordBatch, RecordBatch) {
        let schema = Arc::new(
            segment::from_stored(RecordBatch::new_empty(Arc::new(
                metadata.schema().project(columns).unwrap(),
            )))
            .unwrap()
            .schema()
            .as_ref()
            .clone(),
        );
        let paged = segment::read_rows_by_id(path, metadata, ROWID, wanted, columns).unwrap();
        let rowid = metadata.schema().index_of(ROWID).unwrap();
        let (starts, rows) = segment::row_group_starts(metadata.metadata());
        // Every row is a candidate for the reference path.
        let everything: Vec<_> = starts
            .iter()
            .zip(starts.iter().skip(1).chain(std::iter::once(&rows)))
            .map(|(s, e)| *s..*e)
            .collect();
        let reference = segment::read_rows_with_parquet_reader(
            path,
            metadata,
            rowid,
            wanted,
            columns,
            &everything,
            &starts,
            rows,
        )
        .unwrap();
        (
            concat_batches(&schema, &paged).unwrap(),
            concat_batches(&schema, &reference).unwrap(),
        )
    }

    #[test]
    fn point_reads_decode_every_stored_type_as_the_record_batch_reader_does() {
        let dir = tempfile::tempdir().unwrap();
        // More rows than a row group: the segment has two.
        let rows = 270_000;
        let (path, batch) = write_all_types(dir.path(), rows, false);
        let metadata = segment::load_metadata(&path).unwrap();
        assert_eq!(metadata.metadata().num_row_groups(), 2);
        let all: Vec<usize> = (0..metadata.schema().fields().len()).collect();
        let (starts, file_rows) = segment::row_group_starts(metadata.metadata());
        assert!(
            PointReader::open(&path, &metadata, &all, &starts, file_rows)
                .unwrap()
                .is_some(),
            "every column here is read page by page"
        );
        // Rows at page and row group edges, nulls (i % 7 == 3) among them,
        // several in one page, and an id that no row has.
        let page = segment::PAGE_ROWS as i64;
        let positions = [
            0,
            3,
            page - 1,
            page,
            page + 1,
            10,
            11,
            12,
            134_999,
            135_000,
            135_001,
            262_143,
            262_144,
            269_999,
        ];
        let mut wanted: Vec<i64> = positions.iter().map(|p| rowid_of(rows, *p)).collect();
        wanted.push(rows * 10);
        wanted.sort_unstable();
        let (paged, reference) = both_paths(&path, &metadata, &wanted, &all);
        assert_eq!(paged.num_rows(), positions.len());
        assert_eq!(paged, reference);
        // And both are the rows written, in file order.
        let mut sorted = positions.to_vec();
        sorted.sort_unstable();
        let indices = UInt32Array::from_iter_values(sorted.iter().map(|p| *p as u32));
        let written = take_record_batch(&batch, &indices).unwrap();
        assert_eq!(paged.columns(), written.columns());
        // A subset of the columns, in the order asked.
        let (paged, reference) = both_paths(&path, &metadata, &wanted, &[2, 11, 12]);
        assert_eq!(paged, reference);
        assert_eq!(paged.num_columns(), 3);
        // Nothing wanted is there.
        let (paged, _) = both_paths(&path, &metadata, &[rows * 10, rows * 11], &all);
        assert_eq!(paged.num_rows(), 0);
    }

    #[test]
    fn floats_and_byte_arrays_are_read_straight_from_their_pages() {
        let dir = tempfile::tempdir().unwrap();
        let rows = 20_000;
        let (path, batch) = write_all_types(dir.path(), rows, false);
        let metadata = segment::load_metadata(&path).unwrap();
        let all: Vec<usize> = (0..metadata.schema().fields().len()).collect();
        let (starts, file_rows) = segment::row_group_starts(metadata.metadata());
        let reader = PointReader::open(&path, &metadata, &all, &starts, file_rows)
            .unwrap()
            .unwrap();
        // Nulls, page edges, and rows of the note column's plain pages
        // (its dictionary overflows part way).
        let page = segment::PAGE_ROWS;
        let positions = [0, 3, 10, page - 1, page, 2 * page + 3, 17_000, 19_999];
        let indices = UInt32Array::from_iter_values(positions.iter().map(|p| *p as u32));
        for name in ["real", "double", "device", "note", "blob"] {
            let column = batch.schema().index_of(name).unwrap();
            let data_type = batch.schema().field(column).data_type().clone();
            let direct = reader
                .column_directly(column, &data_type, &positions)
                .unwrap()
                .unwrap_or_else(|| panic!("{name} is read straight from its pages"));
            let written = take_record_batch(&batch, &indices).unwrap();
            assert_eq!(&direct, written.column(column), "{name}");
        }
        let time = batch.schema().index_of("big").unwrap();
        assert!(
            reader
                .column_directly(time, &DataType::Int64, &positions)
                .unwrap()
                .is_none(),
            "delta-packed integers are left to the column reader"
        );
    }

    #[test]
    fn point_reads_of_columns_the_page_path_does_not_decode_use_the_record_batch_reader() {
        let dir = tempfile::tempdir().unwrap();
        let rows = 10_000;
        let (path, _) = write_all_types(dir.path(), rows, true);
        let metadata = segment::load_metadata(&path).unwrap();
        let oid = metadata.schema().index_of("oid").unwrap();
        let all: Vec<usize> = (0..metadata.schema().fields().len()).collect();
        let (starts, file_rows) = segment::row_group_starts(metadata.metadata());
        assert!(
            PointReader::open(&path, &metadata, &[oid], &starts, file_rows)
                .unwrap()
                .is_none()
        );
        let mut wanted: Vec<i64> = [5i64, 6, 9_999]
            .iter()
            .map(|p| rowid_of(rows, *p))
            .collect();
        wanted.sort_unstable();
        let (paged, reference) = both_paths(&path, &metadata, &wanted, &all);
        assert_eq!(paged.num_rows(), 3);
        assert_eq!(paged, reference);
        assert!(paged.column(oid).is_valid(0));
    }

    #[test]
    fn a_point_read_of_a_truncated_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let rows = 20_000;
        let (path, _) = write_all_types(dir.path(), rows, false);
        let metadata = segment::load_metadata(&path).unwrap();
        let length = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(length / 2).unwrap();
        let all: Vec<usize> = (0..metadata.schema().fields().len()).collect();
        let wanted = [rowid_of(rows, rows - 1)];
        let result = segment::read_rows_by_id(&path, &metadata, ROWID, &wanted, &all);
        assert!(matches!(result, Err(Error::Io { .. })), "{result:?}");
    }

    #[test]
    fn page_headers_parse_as_parquet_wrote_them() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_all_types(dir.path(), 5_000, false);
        let metadata = segment::load_metadata(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let parquet = metadata.metadata();
        let rowid = metadata.schema().index_of(ROWID).unwrap();
        let location = &parquet.offset_index().unwrap()[0][rowid].page_locations()[0];
        let start = location.offset as usize;
        let (header, length) = PageHeader::parse(&bytes[start..]).unwrap();
        assert_eq!(header.page_type, PAGE_DATA);
        assert_eq!(header.num_values as usize, segment::PAGE_ROWS);
        assert_eq!(
            encoding(header.encoding),
            Some(Encoding::DELTA_BINARY_PACKED)
        );
        assert_eq!(
            length + header.compressed_size as usize,
            location.compressed_page_size as usize
        );
        // The text column's chunk starts with its dictionary.
        let device = metadata.schema().index_of("device").unwrap();
        let offset = parquet
            .row_group(0)
            .column(device)
            .dictionary_page_offset()
            .unwrap();
        let (header, _) = PageHeader::parse(&bytes[offset as usize..]).unwrap();
        assert_eq!(header.page_type, PAGE_DICTIONARY);
        assert_eq!(header.num_values, 1000);
        // Every prefix of a header is cut short, not a panic.
        for cut in 0..length {
            assert!(
                PageHeader::parse(&bytes[start..start + cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn deeply_nested_page_headers_are_refused() {
        // Field 9 (unknown) as a struct holding a struct holding ...
        let mut bytes = vec![0x9c; 40];
        bytes.extend([0u8; 40]);
        let error = PageHeader::parse(&bytes).unwrap_err();
        assert!(error.contains("nested too deeply"), "{error}");
    }

    proptest! {
        #[test]
        fn page_header_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = PageHeader::parse(&bytes);
        }

        #[test]
        fn big_endian_decimals_sign_extend(value in any::<i64>(), width in 8usize..=16) {
            let wide = i128::from(value).to_be_bytes();
            prop_assert_eq!(big_endian_i128(&wide[16 - width..]), Some(i128::from(value)));
        }
    }
}
