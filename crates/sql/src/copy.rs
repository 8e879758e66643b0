//! COPY in PostgreSQL's text and CSV formats, and COPY FROM in its binary
//! format.
//!
//! COPY FROM STDIN parses rows as CopyData messages arrive, into Arrow
//! builders with the same text parsers INSERT uses (a binary field is first
//! decoded to its text form, as binary parameters are). Nothing is written until
//! CopyDone: then all rows go to the store as one WAL record, so a bad row
//! anywhere fails the whole COPY and stores nothing, as in PostgreSQL.

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
};

use tempora_catalog::TableDef;
use tempora_types::PgType;
use tempora_types::text::{ColumnBuilder, format_value};

use crate::names::{ident, table_name};
use crate::session::{Output, Session};
use crate::{Error, Result, SqlState};

/// Rows per Arrow batch while parsing.
const BATCH_ROWS: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum CopyFormat {
    Text {
        delimiter: u8,
        null: String,
    },
    Csv {
        delimiter: u8,
        quote: u8,
        escape: u8,
        null: String,
        header: bool,
    },
    /// PostgreSQL's binary COPY format (COPY FROM only).
    Binary,
}

/// The signature that opens binary COPY data.
const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

impl CopyFormat {
    /// The format code of CopyInResponse / CopyOutResponse: 1 for binary.
    pub fn wire_code(&self) -> i8 {
        match self {
            CopyFormat::Binary => 1,
            CopyFormat::Text { .. } | CopyFormat::Csv { .. } => 0,
        }
    }
}

fn format_from_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyFormat> {
    let mut csv = false;
    let mut binary = false;
    let mut delimiter = None;
    let mut null = None;
    let mut header = false;
    let mut quote = b'"';
    let mut escape = None;
    for option in options {
        match option {
            CopyOption::Format(name) => match ident(name).as_str() {
                "csv" => (csv, binary) = (true, false),
                "text" => (csv, binary) = (false, false),
                "binary" => (csv, binary) = (false, true),
                other => {
                    return Err(Error::InvalidParameter {
                        message: format!("COPY format \"{other}\" not recognized"),
                    });
                }
            },
            CopyOption::Delimiter(c) => delimiter = Some(single_byte(*c, "delimiter")?),
            CopyOption::Null(s) => null = Some(s.clone()),
            CopyOption::Header(h) => header = *h,
            CopyOption::Quote(c) => quote = single_byte(*c, "quote")?,
            CopyOption::Escape(c) => escape = Some(single_byte(*c, "escape")?),
            CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            other => return Err(Error::not_supported(format!("COPY option {other}"))),
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Csv(csv_options) => {
                csv = true;
                for csv_option in csv_options {
                    match csv_option {
                        CopyLegacyCsvOption::Header => header = true,
                        CopyLegacyCsvOption::Quote(c) => quote = single_byte(*c, "quote")?,
                        CopyLegacyCsvOption::Escape(c) => escape = Some(single_byte(*c, "escape")?),
                        other => return Err(Error::not_supported(format!("COPY option {other}"))),
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => delimiter = Some(single_byte(*c, "delimiter")?),
            CopyLegacyOption::Null(s) => null = Some(s.clone()),
            CopyLegacyOption::Binary => binary = true,
            other => return Err(Error::not_supported(format!("COPY option {other}"))),
        }
    }
    if binary {
        if delimiter.is_some() || null.is_some() || header {
            return Err(Error::Syntax {
                message: "cannot specify DELIMITER, NULL or HEADER in BINARY mode".to_owned(),
            });
        }
        return Ok(CopyFormat::Binary);
    }
    Ok(if csv {
        CopyFormat::Csv {
            delimiter: delimiter.unwrap_or(b','),
            quote,
            escape: escape.unwrap_or(quote),
            null: null.unwrap_or_default(),
            header,
        }
    } else {
        if header {
            return Err(Error::not_supported("COPY HEADER in text format"));
        }
        CopyFormat::Text {
            delimiter: delimiter.unwrap_or(b'\t'),
            null: null.unwrap_or_else(|| "\\N".to_owned()),
        }
    })
}

fn single_byte(c: char, what: &str) -> Result<u8> {
    if c.is_ascii() {
        Ok(c as u8)
    } else {
        Err(Error::InvalidParameter {
            message: format!("COPY {what} must be a single one-byte character"),
        })
    }
}

pub(crate) async fn start(
    session: &mut Session,
    source: &CopySource,
    to: bool,
    target: &CopyTarget,
    options: &[CopyOption],
    legacy_options: &[CopyLegacyOption],
    values: &[Option<String>],
) -> Result<Output> {
    let format = format_from_options(options, legacy_options)?;
    match (to, target) {
        (false, CopyTarget::Stdin) => {
            if !values.is_empty() {
                return Err(Error::not_supported("COPY data inline in the query string"));
            }
            let CopySource::Table {
                table_name: name,
                columns,
            } = source
            else {
                return Err(Error::Syntax {
                    message: "COPY FROM needs a table".to_owned(),
                });
            };
            let name = table_name(name)?;
            let table = session.table(&name)?;
            let mut targets = Vec::new();
            for column in columns {
                let column = ident(column);
                let index = table
                    .column_index(&column)
                    .ok_or_else(|| Error::UndefinedColumn {
                        table: table.name.clone(),
                        column: column.clone(),
                    })?;
                if targets.contains(&index) {
                    return Err(Error::DuplicateColumn { name: column });
                }
                targets.push(index);
            }
            if targets.is_empty() {
                targets = (0..table.columns.len()).collect();
            }
            Ok(Output::CopyIn(Box::new(CopyIn::new(
                table, targets, format,
            )?)))
        }
        (true, CopyTarget::Stdout) => {
            if format == CopyFormat::Binary {
                return Err(binary_copy_to());
            }
            let query = match source {
                CopySource::Query(query) => Statement::Query(query.clone()),
                CopySource::Table {
                    table_name: name,
                    columns,
                } => {
                    let columns = if columns.is_empty() {
                        "*".to_owned()
                    } else {
                        columns
                            .iter()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    crate::session::parse(&format!("SELECT {columns} FROM {name}"))?
                        .pop()
                        .ok_or_else(|| Error::Syntax {
                            message: "empty COPY".to_owned(),
                        })?
                }
            };
            match session.query(&query, &[]).await? {
                Output::Stream { schema, stream, .. } => Ok(Output::CopyOut {
                    format,
                    schema,
                    stream,
                }),
                Output::Batches {
                    schema, batches, ..
                } => Ok(Output::CopyOut {
                    format,
                    stream: crate::session::batches_stream(schema.clone(), batches),
                    schema,
                }),
                _ => Err(Error::not_supported(
                    "COPY of a statement that returns no rows",
                )),
            }
        }
        (_, CopyTarget::File { .. } | CopyTarget::Program { .. }) => Err(Error::not_supported(
            "COPY to or from a server-side file or program (use COPY ... FROM STDIN / TO STDOUT, or psql's \\copy)",
        )),
        _ => Err(Error::Syntax {
            message: "COPY FROM needs STDIN and COPY TO needs STDOUT".to_owned(),
        }),
    }
}

/// A COPY FROM STDIN in progress.
pub struct CopyIn {
    table: Arc<TableDef>,
    targets: Vec<usize>,
    format: CopyFormat,
    /// Bytes of a row not yet complete.
    pending: Vec<u8>,
    line: u64,
    builders: Vec<ColumnBuilder>,
    rows_in_builders: usize,
    batches: Vec<RecordBatch>,
    header_pending: bool,
    /// Binary format: the signature and header have not been read yet.
    binary_header_pending: bool,
    /// Set by the `\.` end-of-data line (the trailer in binary format);
    /// later bytes are ignored.
    ended: bool,
    /// The first bad row; after it the rest of the data is only drained.
    error: Option<Error>,
}

impl std::fmt::Debug for CopyIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyIn")
            .field("table", &self.table.name)
            .field("line", &self.line)
            .finish()
    }
}

impl CopyIn {
    fn new(table: Arc<TableDef>, targets: Vec<usize>, format: CopyFormat) -> Result<CopyIn> {
        let builders = targets
            .iter()
            .map(|&i| ColumnBuilder::new(table.columns[i].pg_type, BATCH_ROWS))
            .collect::<Result<Vec<_>, _>>()?;
        let header_pending = matches!(format, CopyFormat::Csv { header: true, .. });
        let binary_header_pending = format == CopyFormat::Binary;
        Ok(CopyIn {
            table,
            targets,
            format,
            pending: Vec::new(),
            line: 0,
            builders,
            rows_in_builders: 0,
            batches: Vec::new(),
            header_pending,
            binary_header_pending,
            ended: false,
            error: None,
        })
    }

    /// The number of columns the client sends per row.
    pub fn column_count(&self) -> usize {
        self.targets.len()
    }

    pub fn format(&self) -> &CopyFormat {
        &self.format
    }

    /// Takes one CopyData message.
    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_some() || self.ended {
            return;
        }
        self.pending.extend_from_slice(data);
        let consumed = match self.parse_complete_rows() {
            Ok(consumed) => consumed,
            Err(error) => {
                self.error = Some(error);
                self.pending.clear();
                return;
            }
        };
        self.pending.drain(..consumed);
    }

    /// Parses every complete row in `pending`; returns the bytes consumed.
    fn parse_complete_rows(&mut self) -> Result<usize> {
        let mut offset = 0;
        let buffer = std::mem::take(&mut self.pending);
        let result = (|| {
            while !self.ended {
                let Some((fields, next)) = self.next_record(&buffer[offset..], false)? else {
                    break;
                };
                offset += next;
                self.take_record(fields)?;
            }
            Ok(offset)
        })();
        self.pending = buffer;
        result
    }

    /// Splits one record off the front of `bytes`; None if it is incomplete.
    /// With `at_end`, a final record without a newline is complete.
    fn next_record<'a>(
        &mut self,
        bytes: &'a [u8],
        at_end: bool,
    ) -> Result<Option<(Vec<Field<'a>>, usize)>> {
        match &self.format {
            CopyFormat::Binary => self.next_binary_record(bytes),
            CopyFormat::Text { delimiter, null } => {
                let (line, next) = match memchr::memchr(b'\n', bytes) {
                    Some(end) => (&bytes[..end], end + 1),
                    None if at_end && !bytes.is_empty() => (bytes, bytes.len()),
                    None => return Ok(None),
                };
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line == b"\\." {
                    return Ok(Some((vec![], next)));
                }
                let fields = split_text_line(line, *delimiter, null)
                    .map_err(|error| self.record_error(raw_utf8_error(line, error)))?;
                Ok(Some((fields, next)))
            }
            CopyFormat::Csv {
                delimiter,
                quote,
                escape,
                null,
                ..
            } => split_csv_record(bytes, *delimiter, *quote, *escape, null, at_end)
                .map_err(|error| self.record_error(raw_utf8_error(bytes, error))),
        }
    }

    /// An error in the record after `self.line`, with where it is.
    fn record_error(&self, error: Error) -> Error {
        let code = error.sqlstate();
        self.error_at(self.line + 1, error.to_string(), code, None)
    }

    /// One tuple of the binary format, its fields decoded to their text
    /// form; the header is checked first. The trailer ends the data as
    /// `\.` does (an empty record).
    fn next_binary_record<'a>(
        &mut self,
        bytes: &'a [u8],
    ) -> Result<Option<(Vec<Field<'a>>, usize)>> {
        let mut offset = 0;
        if self.binary_header_pending {
            // Signature, flags, header extension length, extension.
            if bytes.len() < BINARY_SIGNATURE.len() + 8 {
                return Ok(None);
            }
            if &bytes[..BINARY_SIGNATURE.len()] != BINARY_SIGNATURE {
                return Err(self.binary_error("COPY file signature not recognized"));
            }
            let at = BINARY_SIGNATURE.len();
            let flags = read_i32(bytes, at).unwrap_or(0);
            // Bit 16 says OIDs are included; tempora rows have none.
            if flags & (1 << 16) != 0 {
                return Err(self.binary_error("COPY file with OIDs is not supported"));
            }
            let extension = read_i32(bytes, at + 4).unwrap_or(0);
            let Ok(extension) = usize::try_from(extension) else {
                return Err(self.binary_error("invalid COPY file header (wrong length)"));
            };
            let end = at + 8 + extension;
            if bytes.len() < end {
                return Ok(None);
            }
            self.binary_header_pending = false;
            offset = end;
        }
        let Some(count) = read_i16(bytes, offset) else {
            return Ok(None);
        };
        if count == -1 {
            return Ok(Some((Vec::new(), offset + 2)));
        }
        let Ok(count) = usize::try_from(count) else {
            return Err(self.binary_error("invalid COPY file tuple field count"));
        };
        let mut at = offset + 2;
        let mut raw = Vec::with_capacity(count);
        for _ in 0..count {
            let Some(length) = read_i32(bytes, at) else {
                return Ok(None);
            };
            at += 4;
            if length == -1 {
                raw.push(None);
                continue;
            }
            let Ok(length) = usize::try_from(length) else {
                return Err(self.binary_error("invalid field size"));
            };
            let Some(value) = bytes.get(at..at + length) else {
                return Ok(None);
            };
            raw.push(Some(value));
            at += length;
        }
        if count != self.targets.len() {
            self.line += 1;
            return Err(self.context_error(
                format!(
                    "row field count is {count}, expected {}",
                    self.targets.len()
                ),
                SqlState::BadCopyFileFormat,
                None,
            ));
        }
        let mut fields = Vec::with_capacity(count);
        for (index, value) in raw.into_iter().enumerate() {
            let Some(value) = value else {
                fields.push(None);
                continue;
            };
            let pg_type = self.table.columns[self.targets[index]].pg_type;
            match tempora_types::binary::decode_to_text(pg_type, value) {
                Ok(text) => fields.push(Some(Cow::Owned(text))),
                Err(error) => {
                    self.line += 1;
                    let code = Error::from(error.clone()).sqlstate();
                    return Err(self.context_error(error.to_string(), code, Some((index, ""))));
                }
            }
        }
        Ok(Some((fields, at)))
    }

    fn binary_error(&self, message: &str) -> Error {
        self.context_error(message.to_owned(), SqlState::BadCopyFileFormat, None)
    }

    fn take_record(&mut self, fields: Vec<Field<'_>>) -> Result<()> {
        self.line += 1;
        if fields.is_empty() {
            // `\.` ends the data.
            self.ended = true;
            return Ok(());
        }
        if self.header_pending {
            self.header_pending = false;
            return Ok(());
        }
        if fields.len() > self.targets.len() {
            return Err(self.context_error(
                "extra data after last expected column".to_owned(),
                SqlState::BadCopyFileFormat,
                None,
            ));
        }
        if fields.len() < self.targets.len() {
            let missing = &self.table.columns[self.targets[fields.len()]].name;
            return Err(self.context_error(
                format!("missing data for column \"{missing}\""),
                SqlState::BadCopyFileFormat,
                None,
            ));
        }
        for (index, field) in fields.iter().enumerate() {
            let result = match field {
                Some(text) => self.builders[index].append_text(text),
                None => {
                    self.builders[index].append_null();
                    Ok(())
                }
            };
            if let Err(error) = result {
                let code = Error::from(error.clone()).sqlstate();
                return Err(self.context_error(
                    error.to_string(),
                    code,
                    Some((index, field.as_deref().unwrap_or(""))),
                ));
            }
        }
        self.rows_in_builders += 1;
        if self.rows_in_builders >= BATCH_ROWS {
            self.flush_builders()?;
        }
        Ok(())
    }

    fn context_error(
        &self,
        message: String,
        code: SqlState,
        field: Option<(usize, &str)>,
    ) -> Error {
        self.error_at(self.line, message, code, field)
    }

    /// An error at line `line`, in `field` (its index and text) if given.
    fn error_at(
        &self,
        line: u64,
        message: String,
        code: SqlState,
        field: Option<(usize, &str)>,
    ) -> Error {
        let context = match field {
            Some((index, value)) => format!(
                "COPY {}, line {line}, column {}: \"{}\"",
                self.table.name, self.table.columns[self.targets[index]].name, value
            ),
            None => format!("COPY {}, line {line}", self.table.name),
        };
        Error::Copy {
            message: format!("{message}\nCONTEXT: {context}"),
            code,
        }
    }

    fn flush_builders(&mut self) -> Result<()> {
        if self.rows_in_builders == 0 {
            return Ok(());
        }
        let schema = self.table.arrow_schema();
        let rows = self.rows_in_builders;
        let mut built: Vec<Option<ArrayRef>> = vec![None; self.table.columns.len()];
        for (builder, &index) in self.builders.iter_mut().zip(&self.targets) {
            built[index] = Some(builder.finish());
        }
        let columns: Vec<ArrayRef> = built
            .into_iter()
            .zip(schema.fields())
            .map(|(array, field)| {
                array.unwrap_or_else(|| {
                    datafusion::arrow::array::new_null_array(field.data_type(), rows)
                })
            })
            .collect();
        self.batches.push(RecordBatch::try_new(schema, columns)?);
        self.rows_in_builders = 0;
        Ok(())
    }

    /// CopyDone: parses the last row, fills defaults, validates and writes
    /// everything as one durable unit. Returns the number of rows copied.
    pub async fn finish(mut self: Box<Self>, session: &mut Session) -> Result<u64> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if !self.ended && !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            let mut offset = 0;
            while offset < pending.len() && !self.ended {
                match self.next_record(&pending[offset..], true)? {
                    Some((fields, next)) => {
                        offset += next;
                        self.take_record(fields)?;
                    }
                    None => {
                        let message = match self.format {
                            CopyFormat::Binary => "unexpected EOF in COPY data",
                            _ => "unterminated CSV quoted field",
                        };
                        return Err(self.context_error(
                            message.to_owned(),
                            SqlState::BadCopyFileFormat,
                            None,
                        ));
                    }
                }
            }
        }
        self.flush_builders()?;
        let mut batches = Vec::with_capacity(self.batches.len());
        for batch in std::mem::take(&mut self.batches) {
            let batch =
                crate::insert::fill_defaults(session, &self.table, &self.targets, batch).await?;
            batches.push(crate::insert::validate(&self.table, batch, &self.targets)?);
        }
        session.write_rows(&self.table, batches, "COPY FROM").await
    }
}

/// One parsed field: borrowed from the input unless escapes had to be undone.
type Field<'a> = Option<Cow<'a, str>>;

fn binary_copy_to() -> Error {
    Error::not_supported("COPY TO in binary format (use the text or CSV format)")
}

fn read_i16(bytes: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// PostgreSQL checks a record's bytes before it splits them, so a field
/// that is not UTF-8 is reported with the bytes after it in `raw` (a
/// delimiter, a quote); a field that only its escapes made so, alone.
fn raw_utf8_error(raw: &[u8], error: Error) -> Error {
    if error.sqlstate() == SqlState::CharacterNotInRepertoire && std::str::from_utf8(raw).is_err() {
        Error::invalid_utf8(raw)
    } else {
        error
    }
}

/// A field's text; the caller adds where it was (see `context_error`).
fn utf8_field(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| Error::invalid_utf8(bytes))
}

/// Splits a text-format line into fields, undoing backslash escapes. Fields
/// without a backslash are borrowed from `line`.
fn split_text_line<'a>(line: &'a [u8], delimiter: u8, null: &str) -> Result<Vec<Field<'a>>> {
    let mut fields = Vec::with_capacity(16);
    let mut start = 0;
    let mut index = 0;
    let mut escaped = false;
    loop {
        // Jump to the next delimiter or backslash.
        let Some(found) = memchr::memchr2(delimiter, b'\\', &line[index..]) else {
            fields.push(text_field(&line[start..], escaped, null)?);
            return Ok(fields);
        };
        index += found;
        if line[index] == delimiter {
            fields.push(text_field(&line[start..index], escaped, null)?);
            index += 1;
            start = index;
            escaped = false;
        } else {
            // The escaped byte may be the delimiter itself: skip it.
            escaped = true;
            index = (index + 2).min(line.len());
        }
    }
}

/// One raw text-format field: NULL, borrowed, or unescaped.
fn text_field<'a>(raw: &'a [u8], escaped: bool, null: &str) -> Result<Field<'a>> {
    Ok(if raw == null.as_bytes() {
        None
    } else if escaped {
        Some(Cow::Owned(unescape_text(raw)?))
    } else {
        Some(Cow::Borrowed(utf8_field(raw)?))
    })
}

/// Undoes the text format's backslash escapes in one field.
fn unescape_text(raw: &[u8]) -> Result<String> {
    let mut field = Vec::with_capacity(raw.len());
    let mut index = 0;
    while index < raw.len() {
        let byte = raw[index];
        if byte != b'\\' || index + 1 >= raw.len() {
            field.push(byte);
            index += 1;
            continue;
        }
        let next = raw[index + 1];
        index += 2;
        match next {
            b'b' => field.push(8),
            b'f' => field.push(12),
            b'n' => field.push(b'\n'),
            b'r' => field.push(b'\r'),
            b't' => field.push(b'\t'),
            b'v' => field.push(11),
            b'0'..=b'7' => {
                let mut value = (next - b'0') as u32;
                let mut digits = 1;
                while digits < 3 && index < raw.len() && (b'0'..=b'7').contains(&raw[index]) {
                    value = value * 8 + (raw[index] - b'0') as u32;
                    index += 1;
                    digits += 1;
                }
                field.push(value as u8);
            }
            b'x' if index < raw.len() && raw[index].is_ascii_hexdigit() => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2 && index < raw.len() && raw[index].is_ascii_hexdigit() {
                    value = value * 16 + (raw[index] as char).to_digit(16).unwrap_or(0);
                    index += 1;
                    digits += 1;
                }
                field.push(value as u8);
            }
            other => field.push(other),
        }
    }
    String::from_utf8(field).map_err(|e| Error::invalid_utf8(e.as_bytes()))
}

/// Splits one CSV record off the front of `bytes`, honouring quotes (which may
/// span lines). An unquoted field equal to `null` is NULL; a quoted one never is.
/// Fields without quotes are borrowed from `bytes`.
fn split_csv_record<'a>(
    bytes: &'a [u8],
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: &str,
    at_end: bool,
) -> Result<Option<(Vec<Field<'a>>, usize)>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    // `\.` alone on a line ends the data in CSV too.
    let first_line_end = bytes.iter().position(|b| *b == b'\n');
    let first_line = &bytes[..first_line_end.unwrap_or(bytes.len())];
    if first_line.strip_suffix(b"\r").unwrap_or(first_line) == b"\\."
        && (first_line_end.is_some() || at_end)
    {
        return Ok(Some((
            vec![],
            first_line_end.map(|e| e + 1).unwrap_or(bytes.len()),
        )));
    }
    let mut fields = Vec::with_capacity(16);
    // The unquoted text of the current field starts here; once a quote is
    // seen, the field is built in `quoted` instead.
    let mut field_start = 0;
    let mut quoted: Option<Vec<u8>> = None;
    let mut in_quotes = false;
    let mut index = 0;
    let finish = |raw: &'a [u8], quoted: Option<Vec<u8>>| -> Result<Field<'a>> {
        Ok(match quoted {
            Some(bytes) => Some(Cow::Owned(
                String::from_utf8(bytes).map_err(|e| Error::invalid_utf8(e.as_bytes()))?,
            )),
            None if raw == null.as_bytes() => None,
            None => Some(Cow::Borrowed(utf8_field(raw)?)),
        })
    };
    loop {
        let Some(&byte) = bytes.get(index) else {
            if in_quotes || !at_end {
                return Ok(None);
            }
            fields.push(finish(&bytes[field_start..index], quoted)?);
            return Ok(Some((fields, index)));
        };
        if in_quotes {
            let buffer = quoted.get_or_insert_with(Vec::new);
            if byte == escape && escape != quote && bytes.get(index + 1) == Some(&quote) {
                buffer.push(quote);
                index += 2;
            } else if byte == quote {
                if escape == quote && bytes.get(index + 1) == Some(&quote) {
                    buffer.push(quote);
                    index += 2;
                } else if bytes.get(index + 1).is_none() && !at_end {
                    // Cannot tell a closing quote from a doubled one yet.
                    return Ok(None);
                } else {
                    in_quotes = false;
                    index += 1;
                }
            } else {
                buffer.push(byte);
                index += 1;
            }
            continue;
        }
        if byte == quote {
            // Text before the quote belongs to the field too.
            let buffer = quoted.get_or_insert_with(Vec::new);
            if buffer.is_empty() {
                buffer.extend_from_slice(&bytes[field_start..index]);
            }
            in_quotes = true;
            index += 1;
        } else if byte == delimiter {
            fields.push(finish(&bytes[field_start..index], quoted.take())?);
            index += 1;
            field_start = index;
        } else if byte == b'\n' || byte == b'\r' {
            fields.push(finish(&bytes[field_start..index], quoted.take())?);
            let mut next = index + 1;
            if byte == b'\r' && bytes.get(next) == Some(&b'\n') {
                next += 1;
            }
            return Ok(Some((fields, next)));
        } else {
            if let Some(buffer) = quoted.as_mut() {
                buffer.push(byte);
            }
            index += 1;
        }
    }
}

/// Formats one batch as COPY text or CSV, one buffer per row.
pub fn format_rows(
    format: &CopyFormat,
    schema: &SchemaRef,
    batch: &RecordBatch,
) -> Result<Vec<Vec<u8>>> {
    let pg_types = schema
        .fields()
        .iter()
        .map(|f| PgType::of_field(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut value = String::new();
    for row in 0..batch.num_rows() {
        let mut out = Vec::with_capacity(64);
        for (index, column) in batch.columns().iter().enumerate() {
            value.clear();
            let present = format_value(column.as_ref(), row, pg_types[index], &mut value)?;
            match format {
                CopyFormat::Binary => return Err(binary_copy_to()),
                CopyFormat::Text { delimiter, null } => {
                    if index > 0 {
                        out.push(*delimiter);
                    }
                    if !present {
                        out.extend_from_slice(null.as_bytes());
                        continue;
                    }
                    for byte in value.bytes() {
                        match byte {
                            b'\\' => out.extend_from_slice(b"\\\\"),
                            b'\n' => out.extend_from_slice(b"\\n"),
                            b'\r' => out.extend_from_slice(b"\\r"),
                            b'\t' => out.extend_from_slice(b"\\t"),
                            b if b == *delimiter => {
                                out.push(b'\\');
                                out.push(b);
                            }
                            b => out.push(b),
                        }
                    }
                }
                CopyFormat::Csv {
                    delimiter,
                    quote,
                    escape,
                    null,
                    ..
                } => {
                    if index > 0 {
                        out.push(*delimiter);
                    }
                    if !present {
                        out.extend_from_slice(null.as_bytes());
                        continue;
                    }
                    let needs_quotes = value.is_empty()
                        || value == *null
                        || value
                            .bytes()
                            .any(|b| b == *delimiter || b == *quote || b == b'\n' || b == b'\r');
                    if needs_quotes {
                        out.push(*quote);
                        for byte in value.bytes() {
                            if byte == *quote || byte == *escape {
                                out.push(*escape);
                            }
                            out.push(byte);
                        }
                        out.push(*quote);
                    } else {
                        out.extend_from_slice(value.as_bytes());
                    }
                }
            }
        }
        out.push(b'\n');
        rows.push(out);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_unescape() {
        let fields = split_text_line(b"a\\tb\t\\N\t\\\\x\t\\101", b'\t', "\\N").unwrap();
        assert_eq!(
            fields,
            vec![
                Some("a\tb".into()),
                None,
                Some("\\x".into()),
                Some("A".into())
            ]
        );
        // Empty fields at both ends, another delimiter, a backslash ending the line.
        let fields = split_text_line(b"|x\\\\|\\|y|\\", b'|', "\\N").unwrap();
        assert_eq!(
            fields,
            vec![
                Some("".into()),
                Some("x\\".into()),
                Some("|y".into()),
                Some("\\".into())
            ]
        );
        assert!(matches!(fields[0], Some(Cow::Borrowed(_))));
        assert_eq!(split_text_line(b"", b'\t', "").unwrap(), vec![None]);
        assert_eq!(
            split_text_line(b"a\\", b'\t', "\\N").unwrap(),
            vec![Some("a\\".into())]
        );
    }

    #[test]
    fn csv_records_follow_quotes_across_lines() {
        let input = b"1,\"a,\"\"b\"\"\nc\",\n2,\"\",x\n";
        let (first, used) = split_csv_record(input, b',', b'"', b'"', "", false)
            .unwrap()
            .unwrap();
        assert_eq!(
            first,
            vec![Some("1".into()), Some("a,\"b\"\nc".into()), None]
        );
        let (second, _) = split_csv_record(&input[used..], b',', b'"', b'"', "", false)
            .unwrap()
            .unwrap();
        assert_eq!(
            second,
            vec![Some("2".into()), Some("".into()), Some("x".into())]
        );
        // Text around quotes belongs to the field; plain fields are borrowed.
        let (third, _) = split_csv_record(b"ab\"c,d\"e,f\n", b',', b'"', b'"', "", false)
            .unwrap()
            .unwrap();
        assert_eq!(third, vec![Some("abc,de".into()), Some("f".into())]);
        assert!(matches!(third[1], Some(Cow::Borrowed(_))));
        // An escaped delimiter stays in its field.
        let fields = split_text_line(b"a\\\tb\tc", b'\t', "\\N").unwrap();
        assert_eq!(fields, vec![Some("a\tb".into()), Some("c".into())]);
        // An unfinished quoted field waits for more data.
        assert!(
            split_csv_record(b"1,\"abc", b',', b'"', b'"', "", false)
                .unwrap()
                .is_none()
        );
    }
}
