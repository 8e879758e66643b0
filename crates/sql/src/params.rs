//! Parameters of pipelined Executes, kept as the client sent them until the
//! batch that reads them: a binary value goes straight into its column
//! (see `tempora_types::binary::append_binary`) instead of being printed
//! as text and read back.
//!
//! All the Executes of a pipeline's part share one buffer: a row of
//! parameters is a few small values, and copying them costs less than
//! holding on to the client's message buffers (an atomic count per value,
//! taken and released again) or allocating a vector per row.

use std::ops::Range;

use tempora_types::PgType;

use crate::error::Result;

/// A parameter as a batch reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamRef<'a> {
    Null,
    Text(&'a str),
    /// Sent in binary, as a value of this type.
    Binary(PgType, &'a [u8]),
}

/// Where one stored parameter is.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Null,
    /// In `ParamRows::text`.
    Text(Range<usize>),
    /// In `ParamRows::bytes`.
    Binary(PgType, Range<usize>),
}

/// The most `ParamRows::reserve_rows` reserves for values at once.
const RESERVE_BYTES: usize = 16 << 20;

/// The parameters of many Executes of one statement, in order.
#[derive(Debug, Default)]
pub struct ParamRows {
    text: String,
    bytes: Vec<u8>,
    slots: Vec<Slot>,
    /// Where each row's slots end in `slots`.
    ends: Vec<usize>,
}

impl ParamRows {
    /// Appends one Execute's parameters, `$1` first.
    pub fn push_row<'a>(&mut self, params: impl IntoIterator<Item = ParamRef<'a>>) {
        for param in params {
            let slot = match param {
                ParamRef::Null => Slot::Null,
                ParamRef::Text(text) => {
                    let start = self.text.len();
                    self.text.push_str(text);
                    Slot::Text(start..self.text.len())
                }
                ParamRef::Binary(pg_type, bytes) => {
                    let start = self.bytes.len();
                    self.bytes.extend_from_slice(bytes);
                    Slot::Binary(pg_type, start..self.bytes.len())
                }
            };
            self.slots.push(slot);
        }
        self.ends.push(self.slots.len());
    }

    /// Reserves room for `rows` more rows the size of those so far, or
    /// for as many as fit in `RESERVE_BYTES`.
    pub fn reserve_rows(&mut self, rows: usize) {
        let Some(&last_end) = self.ends.last() else {
            return;
        };
        let per_row = |total: usize| total / self.ends.len() + 1;
        let (text, bytes, slots) = (
            per_row(self.text.len()),
            per_row(self.bytes.len()),
            per_row(last_end),
        );
        let rows = rows.min(RESERVE_BYTES / (text + bytes));
        self.text.reserve_exact(text * rows);
        self.bytes.reserve_exact(bytes * rows);
        self.slots.reserve_exact(slots * rows);
        self.ends.reserve_exact(rows);
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The rows, in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = ParamRow<'_>> {
        (0..self.ends.len()).map(|index| {
            let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
            ParamRow {
                rows: self,
                slots: &self.slots[start..self.ends[index]],
            }
        })
    }
}

/// The parameters of one Execute (see [`ParamRows`]).
#[derive(Debug, Clone, Copy)]
pub struct ParamRow<'a> {
    rows: &'a ParamRows,
    slots: &'a [Slot],
}

impl<'a> ParamRow<'a> {
    /// The parameter at `index` (`$1` at 0).
    pub fn get(self, index: usize) -> Option<ParamRef<'a>> {
        self.slots.get(index).map(|slot| self.read(slot))
    }

    fn read(self, slot: &Slot) -> ParamRef<'a> {
        match slot {
            Slot::Null => ParamRef::Null,
            Slot::Text(range) => ParamRef::Text(&self.rows.text[range.clone()]),
            Slot::Binary(pg_type, range) => {
                ParamRef::Binary(*pg_type, &self.rows.bytes[range.clone()])
            }
        }
    }

    /// The parameters' text forms (None for NULL), for the statements that
    /// read parameters as text.
    pub(crate) fn to_text(self) -> Result<Vec<Option<String>>> {
        self.slots
            .iter()
            .map(|slot| {
                Ok(match self.read(slot) {
                    ParamRef::Null => None,
                    ParamRef::Text(text) => Some(text.to_owned()),
                    ParamRef::Binary(pg_type, bytes) => {
                        Some(tempora_types::binary::decode_to_text(pg_type, bytes)?)
                    }
                })
            })
            .collect()
    }
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

impl<P: ParamSet + ?Sized> ParamSet for &P {
    fn param(&self, index: usize) -> Option<ParamRef<'_>> {
        (**self).param(index)
    }
}

impl ParamSet for ParamRow<'_> {
    fn param(&self, index: usize) -> Option<ParamRef<'_>> {
        self.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_as_pushed() {
        let mut rows = ParamRows::default();
        assert!(rows.is_empty());
        rows.push_row([
            ParamRef::Text("a"),
            ParamRef::Null,
            ParamRef::Binary(PgType::Int4, &[0, 0, 0, 7]),
        ]);
        rows.reserve_rows(10);
        rows.push_row([]);
        rows.push_row([ParamRef::Text("é"), ParamRef::Binary(PgType::Bool, &[1])]);
        assert_eq!(rows.len(), 3);
        let read: Vec<Vec<ParamRef<'_>>> = rows
            .rows()
            .map(|row| (0..).map_while(|i| row.get(i)).collect())
            .collect();
        assert_eq!(
            read,
            vec![
                vec![
                    ParamRef::Text("a"),
                    ParamRef::Null,
                    ParamRef::Binary(PgType::Int4, &[0, 0, 0, 7])
                ],
                vec![],
                vec![ParamRef::Text("é"), ParamRef::Binary(PgType::Bool, &[1])],
            ]
        );
        let texts: Vec<_> = rows.rows().map(|row| row.to_text().unwrap()).collect();
        assert_eq!(
            texts,
            vec![
                vec![Some("a".to_owned()), None, Some("7".to_owned())],
                vec![],
                vec![Some("é".to_owned()), Some("t".to_owned())],
            ]
        );
    }
}
