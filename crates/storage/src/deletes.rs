//! Deleted rows: the row ids a chunk no longer holds, in memory as layered
//! sorted runs and on disk as delete files.
//!
//! A DELETE (or the delete half of an UPDATE) names rows by row id; the ids
//! go to the WAL with the commit, then into the chunk's [`DeleteSet`], which
//! every scan of the chunk filters by. A checkpoint drops deleted rows from
//! the memtable rows it writes, rewrites segments whose rows are mostly
//! deleted, and writes what remains of the set as the chunk's delete file:
//!
//! ```text
//! file := magic "TMPRADEL" (8) | version u32 = 1 | count u64 | row_id i64 * count (ascending)
//!         | crc32(everything before) u32
//! ```
//! (little-endian; see `docs/formats/deletes.md`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::Int64Type;

use tempora_catalog::DeleteFileDef;

use crate::{Error, Result, io_error};

const MAGIC: &[u8; 8] = b"TMPRADEL";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 20;

/// A set of row ids, cheap to clone (readers take it by value with their
/// snapshot) and cheap to add to: each addition is a sorted run shared by
/// every clone that has it. Runs merge as a binary counter's digits carry:
/// a run at most half the size of the one before it stays, so runs shrink
/// geometrically, there are at most about log2(len) of them, and each id is
/// merged about log2(len) times in all, however the ids arrive (one
/// statement deleting one row each, or one deleting millions).
#[derive(Debug, Clone, Default)]
pub struct DeleteSet {
    runs: Vec<Arc<[i64]>>,
    len: usize,
}

/// The union of two ascending, duplicate-free runs, ascending.
fn merge_sorted(a: &[i64], b: &[i64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

impl DeleteSet {
    pub fn from_sorted(ids: Vec<i64>) -> DeleteSet {
        let mut set = DeleteSet::default();
        set.add(ids);
        set
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds ids, none of which the set holds yet.
    pub fn add(&mut self, mut ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        ids.sort_unstable();
        ids.dedup();
        self.len += ids.len();
        self.runs.push(ids.into());
        while let [.., before, last] = self.runs.as_slice()
            && last.len() * 2 > before.len()
        {
            let merged = merge_sorted(before, last);
            self.runs.truncate(self.runs.len() - 2);
            self.runs.push(merged.into());
        }
    }

    pub fn contains(&self, id: i64) -> bool {
        self.runs.iter().any(|run| run.binary_search(&id).is_ok())
    }

    /// Every id, ascending.
    pub fn to_sorted_vec(&self) -> Vec<i64> {
        let mut all: Vec<i64> = self.runs.iter().flat_map(|r| r.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The set without `removed` (ids whose rows are physically gone).
    pub fn without(&self, removed: &[i64]) -> DeleteSet {
        if removed.is_empty() {
            return self.clone();
        }
        let mut removed = removed.to_vec();
        removed.sort_unstable();
        let kept: Vec<i64> = self
            .to_sorted_vec()
            .into_iter()
            .filter(|id| removed.binary_search(id).is_err())
            .collect();
        DeleteSet::from_sorted(kept)
    }

    /// The ids of all `sets` within `[low, high]`, ascending.
    fn ids_between(sets: &[&DeleteSet], low: i64, high: i64) -> Vec<i64> {
        let mut ids = Vec::new();
        for set in sets {
            for run in &set.runs {
                let start = run.partition_point(|id| *id < low);
                let end = run.partition_point(|id| *id <= high);
                ids.extend_from_slice(&run[start..end]);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Which rows of a row id column are live (not in any of `sets`); None
    /// when all are. Only the deleted ids within the column's range are
    /// looked at, so a batch far from any delete costs a min/max.
    pub fn live_mask(sets: &[&DeleteSet], rowids: &dyn Array) -> Option<BooleanArray> {
        let rowids = rowids.as_primitive::<Int64Type>();
        let (Some(low), Some(high)) = (
            datafusion::arrow::compute::min(rowids),
            datafusion::arrow::compute::max(rowids),
        ) else {
            return None;
        };
        let deleted = Self::ids_between(sets, low, high);
        if deleted.is_empty() {
            return None;
        }
        // Packed 64 rows to a word: collecting Option<bool>s builds a null
        // buffer too (perf put it at 7% of a scan over deleted rows).
        let ids = rowids.values();
        Some(BooleanArray::from(BooleanBuffer::collect_bool(
            ids.len(),
            |row| deleted.binary_search(&ids[row]).is_err(),
        )))
    }

    /// Removes the rows of `batch` whose id (column `rowid_index`) is in a set.
    pub fn filter_batch(
        sets: &[&DeleteSet],
        batch: &RecordBatch,
        rowid_index: usize,
    ) -> Result<RecordBatch> {
        if sets.iter().all(|s| s.is_empty()) {
            return Ok(batch.clone());
        }
        let Some(mask) = DeleteSet::live_mask(sets, batch.column(rowid_index).as_ref()) else {
            return Ok(batch.clone());
        };
        if mask.true_count() == batch.num_rows() {
            return Ok(batch.clone());
        }
        Ok(filter_record_batch(batch, &mask)?)
    }
}

/// Writes `ids` (ascending) as delete file `dir/file_name` and fsyncs it.
pub(crate) fn write_delete_file(dir: &Path, file_name: &str, ids: &[i64]) -> Result<DeleteFileDef> {
    let path = dir.join(file_name);
    let mut bytes = Vec::with_capacity(HEADER_LEN + ids.len() * 8 + 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(ids.len() as u64).to_le_bytes());
    for id in ids {
        bytes.extend_from_slice(&id.to_le_bytes());
    }
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    file.write_all(&bytes).map_err(|e| io_error(&path, e))?;
    file.sync_all().map_err(|e| io_error(&path, e))?;
    Ok(DeleteFileDef {
        file_name: file_name.to_owned(),
        count: ids.len() as u64,
        byte_size: bytes.len() as u64,
        crc32: crc,
    })
}

/// Reads a delete file, checking it against its catalog entry and itself.
pub(crate) fn read_delete_file(dir: &Path, def: &DeleteFileDef) -> Result<Vec<i64>> {
    let path = dir.join(&def.file_name);
    let corrupt = |reason: &str| Error::Corrupt {
        path: path.clone(),
        reason: reason.to_owned(),
    };
    let mut bytes = Vec::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io_error(&path, e))?;
    if bytes.len() as u64 != def.byte_size || bytes.len() < HEADER_LEN + 4 {
        return Err(corrupt("delete file length does not match the catalog"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| corrupt("crc"))?);
    if crc != crc32fast::hash(body) || crc != def.crc32 {
        return Err(corrupt("delete file checksum does not match"));
    }
    if &body[..8] != MAGIC {
        return Err(corrupt("not a delete file"));
    }
    let version = u32::from_le_bytes(body[8..12].try_into().map_err(|_| corrupt("version"))?);
    if version != VERSION {
        return Err(corrupt(&format!("unknown delete file version {version}")));
    }
    let count = u64::from_le_bytes(body[12..20].try_into().map_err(|_| corrupt("count"))?);
    let ids = &body[HEADER_LEN..];
    if count != def.count || ids.len() as u64 != count.saturating_mul(8) {
        return Err(corrupt("delete file count does not match its contents"));
    }
    Ok(ids
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sets_hold_exactly_what_was_added(batches in proptest::collection::vec(proptest::collection::vec(-50i64..50, 0..20), 0..40), probe in -60i64..60) {
            let mut set = DeleteSet::default();
            let mut all = std::collections::BTreeSet::new();
            for batch in batches {
                let fresh: Vec<i64> = batch.into_iter().filter(|id| !all.contains(id)).collect();
                all.extend(fresh.iter().copied());
                set.add(fresh);
            }
            prop_assert_eq!(set.len(), all.len());
            // Each run is at most half the one before it.
            prop_assert!(set.runs.windows(2).all(|pair| pair[1].len() * 2 <= pair[0].len()));
            prop_assert_eq!(set.contains(probe), all.contains(&probe));
            prop_assert_eq!(set.to_sorted_vec(), all.iter().copied().collect::<Vec<_>>());
            let without = set.without(&[probe]);
            prop_assert!(!without.contains(probe));
        }

        #[test]
        fn filtering_keeps_exactly_the_live_rows(deleted in proptest::collection::vec(proptest::collection::vec(-50i64..50, 0..10), 0..6), rows in proptest::collection::vec(-60i64..60, 0..40)) {
            let mut sets = Vec::new();
            let mut all = std::collections::BTreeSet::new();
            for ids in deleted {
                all.extend(ids.iter().copied());
                sets.push(DeleteSet::from_sorted(ids));
            }
            let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
                datafusion::arrow::datatypes::Field::new("id", datafusion::arrow::datatypes::DataType::Int64, false),
            ]));
            let batch = RecordBatch::try_new(
                schema,
                vec![std::sync::Arc::new(datafusion::arrow::array::Int64Array::from(rows.clone()))],
            ).unwrap();
            let refs: Vec<&DeleteSet> = sets.iter().collect();
            let kept = DeleteSet::filter_batch(&refs, &batch, 0).unwrap();
            let kept: Vec<i64> = kept.column(0).as_primitive::<Int64Type>().values().to_vec();
            let wanted: Vec<i64> = rows.into_iter().filter(|id| !all.contains(id)).collect();
            prop_assert_eq!(kept, wanted);
        }
    }

    #[test]
    fn delete_files_round_trip_and_detect_damage() {
        let dir = tempfile::tempdir().unwrap();
        let def = write_delete_file(dir.path(), "a.del", &[1, 5, 9]).unwrap();
        assert_eq!(read_delete_file(dir.path(), &def).unwrap(), vec![1, 5, 9]);
        let path = dir.path().join("a.del");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_LEN] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(
            read_delete_file(dir.path(), &def),
            Err(Error::Corrupt { .. })
        ));
    }
}
