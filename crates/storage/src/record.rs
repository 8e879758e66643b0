//! WAL record payloads. A record is one committed unit of work: every row a
//! statement (or a whole COPY) wrote, already routed to its chunks.
//!
//! ```text
//! payload := kind u8 = 1 (commit) | op_count u32 | op*
//! op      := kind u8 = 1 (insert) | table_id u64 | chunk_id u64 | ipc_len u64 | Arrow IPC stream
//!          | kind u8 = 2 (delete) | table_id u64 | chunk_id u64 | count u64 | row_id i64 * count
//!          | kind u8 = 3 (catalog mark) | mark u64
//! ```
//!
//! A record with a catalog mark belongs to a commit that also changed the
//! catalog (a transaction block that renamed a table): the catalog
//! transaction that made the change records the mark, and replay skips a
//! record whose mark the catalog lacks (the crash came between the two).
//!
//! Record and op kinds are only ever appended to; a kind once shipped keeps its number.

use std::io::Cursor;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;

use tempora_catalog::{ChunkId, TableId};

use crate::{Error, Result};

const RECORD_COMMIT: u8 = 1;
const OP_INSERT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_MARK: u8 = 3;

/// Rows written to one chunk.
#[derive(Debug, Clone)]
pub struct ChunkWrite {
    pub table_id: TableId,
    pub chunk_id: ChunkId,
    pub batch: RecordBatch,
}

/// Rows deleted from one chunk, by row id.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkDelete {
    pub table_id: TableId,
    pub chunk_id: ChunkId,
    pub rowids: Vec<i64>,
}

/// Everything one commit record holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Commit {
    pub inserts: Vec<ChunkWrite>,
    pub deletes: Vec<ChunkDelete>,
    /// The catalog mark this record needs to count as committed.
    pub mark: Option<u64>,
}

pub(crate) fn encode_commit(commit: &Commit) -> Result<Vec<u8>> {
    let writes = &commit.inserts;
    let mut out = Vec::with_capacity(
        64 + writes
            .iter()
            .map(|w| w.batch.get_array_memory_size())
            .sum::<usize>()
            + commit
                .deletes
                .iter()
                .map(|d| 32 + d.rowids.len() * 8)
                .sum::<usize>(),
    );
    out.push(RECORD_COMMIT);
    let op_count = u32::try_from(writes.len() + commit.deletes.len() + commit.mark.iter().count())
        .map_err(|_| corrupt("too many ops in one commit"))?;
    out.extend_from_slice(&op_count.to_le_bytes());
    if let Some(mark) = commit.mark {
        out.push(OP_MARK);
        out.extend_from_slice(&mark.to_le_bytes());
    }
    for write in writes {
        out.push(OP_INSERT);
        out.extend_from_slice(&write.table_id.to_le_bytes());
        out.extend_from_slice(&write.chunk_id.to_le_bytes());
        let length_at = out.len();
        out.extend_from_slice(&0u64.to_le_bytes());
        let start = out.len();
        {
            let mut writer = StreamWriter::try_new(&mut out, write.batch.schema_ref())?;
            writer.write(&write.batch)?;
            writer.finish()?;
        }
        let length = (out.len() - start) as u64;
        out[length_at..length_at + 8].copy_from_slice(&length.to_le_bytes());
    }
    for delete in &commit.deletes {
        out.push(OP_DELETE);
        out.extend_from_slice(&delete.table_id.to_le_bytes());
        out.extend_from_slice(&delete.chunk_id.to_le_bytes());
        out.extend_from_slice(&(delete.rowids.len() as u64).to_le_bytes());
        for id in &delete.rowids {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    Ok(out)
}

fn corrupt(reason: &str) -> Error {
    Error::CorruptRecord {
        reason: reason.to_owned(),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8]> {
        let end = self
            .offset
            .checked_add(length)
            .ok_or_else(|| corrupt("length overflow"))?;
        let slice = self
            .bytes
            .get(self.offset..end)
            .ok_or_else(|| corrupt("record cut short"))?;
        self.offset = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| corrupt("u32"))?,
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| corrupt("u64"))?,
        ))
    }
}

pub(crate) fn decode_commit(payload: &[u8]) -> Result<Commit> {
    let mut reader = Reader {
        bytes: payload,
        offset: 0,
    };
    if reader.u8()? != RECORD_COMMIT {
        return Err(corrupt("unknown record kind"));
    }
    let count = reader.u32()?;
    let mut commit = Commit::default();
    for _ in 0..count {
        match reader.u8()? {
            OP_INSERT => {}
            OP_MARK => {
                commit.mark = Some(reader.u64()?);
                continue;
            }
            OP_DELETE => {
                let table_id = reader.u64()?;
                let chunk_id = reader.u64()?;
                let count = reader.u64()?;
                let bytes = reader.take(
                    usize::try_from(count.saturating_mul(8)).map_err(|_| corrupt("length"))?,
                )?;
                let rowids = bytes
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
                    .collect();
                commit.deletes.push(ChunkDelete {
                    table_id,
                    chunk_id,
                    rowids,
                });
                continue;
            }
            _ => return Err(corrupt("unknown op kind")),
        }
        let table_id = reader.u64()?;
        let chunk_id = reader.u64()?;
        let length = reader.u64()? as usize;
        let ipc = reader.take(length)?;
        let mut stream = StreamReader::try_new(Cursor::new(ipc), None)?;
        let batch = stream
            .next()
            .ok_or_else(|| corrupt("insert without rows"))??;
        commit.inserts.push(ChunkWrite {
            table_id,
            chunk_id,
            batch,
        });
    }
    if reader.offset != payload.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(commit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use proptest::prelude::*;
    use std::sync::Arc;

    proptest! {
        #[test]
        fn commits_round_trip(rows in proptest::collection::vec((any::<i64>(), any::<Option<f64>>(), ".{0,12}"), 1..50), chunk in any::<u64>()) {
            let schema = Arc::new(Schema::new(vec![
                Field::new("t", DataType::Int64, true),
                Field::new("v", DataType::Float64, true),
                Field::new("s", DataType::Utf8, true),
            ]));
            let batch = RecordBatch::try_new(schema, vec![
                Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(Float64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(StringArray::from(rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>())),
            ]).unwrap();
            let deletes = vec![ChunkDelete { table_id: 3, chunk_id: chunk, rowids: rows.iter().map(|r| r.0).collect() }];
            let mark = (chunk % 2 == 0).then_some(chunk / 2);
            let commit = Commit { inserts: vec![ChunkWrite { table_id: 3, chunk_id: chunk, batch: batch.clone() }], deletes: deletes.clone(), mark };
            let decoded = decode_commit(&encode_commit(&commit).unwrap()).unwrap();
            prop_assert_eq!(decoded.inserts.len(), 1);
            prop_assert_eq!(decoded.inserts[0].chunk_id, chunk);
            prop_assert_eq!(&decoded.inserts[0].batch, &batch);
            prop_assert_eq!(decoded.deletes, deletes);
            prop_assert_eq!(decoded.mark, mark);
        }
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        assert!(decode_commit(&[]).is_err());
        assert!(decode_commit(&[1, 1, 0, 0, 0, 1, 0]).is_err());
        assert!(decode_commit(&[9]).is_err());
        // A delete op claiming more ids than the record holds.
        let mut cut = vec![1, 1, 0, 0, 0, 2];
        cut.extend_from_slice(&[0; 16]);
        cut.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_commit(&cut).is_err());
    }
}
