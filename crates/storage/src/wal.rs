//! The write-ahead log: append-only files of checksummed records, fsynced in
//! groups before any write is acknowledged.
//!
//! Layout (all integers little-endian; see `docs/formats/wal.md`):
//!
//! ```text
//! file   := header record*
//! header := magic "TMPRAWAL" (8) | version u32 = 2 | crc32(magic, version) u32
//! record := payload_len u64 | crc32(payload_len, payload) u32 | payload
//! tail   := zero bytes, written ahead of the records
//! ```
//!
//! The zeroed tail keeps a commit's fsync from also syncing the file's
//! growth: overwriting blocks the file already has is one data write, where
//! appending also writes the file's new size (its inode, or a journal
//! commit of it). A zero frame can never pass its checksum (the checksum
//! covers the length), so the records end at the first zero frame.
//! Version 1 files (no tail, the checksum over the payload alone) are still
//! read.
//!
//! Group commit: appenders add their framed record to a shared buffer; the
//! first one finding no flush in progress becomes the leader, writes the whole
//! buffer and fsyncs once, then wakes everyone whose record it covered. An
//! appender finding the log idle and the buffer empty writes its record
//! straight from its own memory, as a group of one. An
//! fsync failure poisons the log: after it nothing more is acknowledged
//! (the page cache may have dropped the dirty pages; retrying would lie).

use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::{Error, Result, io_error, sync_dir};

pub(crate) const WAL_MAGIC: &[u8; 8] = b"TMPRAWAL";
pub(crate) const WAL_VERSION: u32 = 2;
/// The version before the zeroed tail, still read.
const WAL_VERSION_UNTAILED: u32 = 1;
pub(crate) const HEADER_LEN: usize = 16;
const RECORD_HEADER_LEN: usize = 12;
/// Zero bytes a file is extended by ahead of its records when a group
/// outgrows its tail.
const TAIL: u64 = 4 << 20;
/// Groups at least this large do not extend the tail: writing them costs
/// more than syncing the file's growth, and a bulk load would write its
/// data and as much again in zeros.
const TAIL_BELOW: u64 = 1 << 20;
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// The file name of WAL file number `seq`.
pub(crate) fn wal_file_name(seq: u64) -> String {
    format!("{seq:016}.wal")
}

/// The WAL files in `dir`, as (sequence number, path), in order.
pub(crate) fn list_wal_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            files.push((seq, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

fn header_bytes() -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(WAL_MAGIC);
    header[8..12].copy_from_slice(&WAL_VERSION.to_le_bytes());
    let crc = crc32fast::hash(&header[..12]);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header
}

struct WalState {
    file: File,
    file_seq: u64,
    /// Where the file's records end and its zeroed tail ends.
    extent: Extent,
    /// Framed records waiting for the next group flush.
    buffer: Vec<u8>,
    /// Records appended so far (the ticket of the latest appender).
    appended: u64,
    /// Records known durable.
    durable: u64,
    flushing: bool,
    /// Set when a write or fsync failed; the log refuses all further appends.
    failed: Option<String>,
}

/// The open, appendable end of the log.
pub(crate) struct Wal {
    dir: PathBuf,
    state: Mutex<WalState>,
    flushed: Condvar,
}

impl Wal {
    /// Starts a new WAL file numbered `seq` in `dir`.
    pub(crate) fn create(dir: &Path, seq: u64) -> Result<Wal> {
        let file = create_wal_file(dir, seq)?;
        Ok(Wal {
            dir: dir.to_owned(),
            state: Mutex::new(WalState {
                file,
                file_seq: seq,
                extent: Extent::new(),
                buffer: Vec::new(),
                appended: 0,
                durable: 0,
                flushing: false,
                failed: None,
            }),
            flushed: Condvar::new(),
        })
    }

    /// Appends one record and returns once it is durable on disk.
    pub(crate) fn append(&self, payload: &[u8]) -> Result<()> {
        let mut state = self.state.lock();
        if let Some(reason) = &state.failed {
            return Err(Error::WalFailed {
                reason: reason.clone(),
            });
        }
        let header = record_header(payload);
        state.appended += 1;
        let ticket = state.appended;
        if !state.flushing && state.buffer.is_empty() {
            // Every earlier record is durable and no flush is running: lead
            // a group of one, writing the record from where it lies. A COPY's
            // commit runs to tens of megabytes; copying it into the buffer
            // cost as much as the write itself.
            state = self.lead(state, ticket, &header, payload);
        } else {
            state.buffer.reserve(RECORD_HEADER_LEN + payload.len());
            state.buffer.extend_from_slice(&header);
            state.buffer.extend_from_slice(payload);
        }
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            if let Some(reason) = &state.failed {
                return Err(Error::WalFailed {
                    reason: reason.clone(),
                });
            }
            if state.flushing {
                self.flushed.wait(&mut state);
                continue;
            }
            // Become the leader of the next group.
            let batch = std::mem::take(&mut state.buffer);
            let covered = state.appended;
            state = self.lead(state, covered, &batch, &[]);
        }
    }

    /// Writes and syncs a group (`first` then `second`, covering records up
    /// to `covered`) without holding the lock, then records the outcome.
    fn lead<'a>(
        &'a self,
        mut state: MutexGuard<'a, WalState>,
        covered: u64,
        first: &[u8],
        second: &[u8],
    ) -> MutexGuard<'a, WalState> {
        state.flushing = true;
        let (file, extent) = (state.file.try_clone(), state.extent);
        drop(state);
        let result = file.and_then(|mut file| extent.write(&mut file, first, second));
        let mut state = self.state.lock();
        self.end_flush(&mut state, covered, result);
        state
    }

    /// Records the outcome of a group flush covering records up to `covered`
    /// and wakes the appenders waiting on it.
    fn end_flush(&self, state: &mut WalState, covered: u64, result: std::io::Result<Extent>) {
        state.flushing = false;
        match result {
            Ok(extent) => {
                state.durable = covered;
                state.extent = extent;
            }
            Err(error) => {
                tracing::error!(%error, "WAL write failed; refusing further writes");
                state.failed = Some(error.to_string());
            }
        }
        self.flushed.notify_all();
    }

    /// Closes the current file and continues in a new one, returning the new
    /// file's number. The caller guarantees no append is in progress.
    pub(crate) fn rotate(&self) -> Result<u64> {
        let mut state = self.state.lock();
        assert!(
            !state.flushing && state.buffer.is_empty(),
            "WAL rotation with appends in flight"
        );
        let seq = state.file_seq + 1;
        state.file = create_wal_file(&self.dir, seq)?;
        state.file_seq = seq;
        state.extent = Extent::new();
        Ok(seq)
    }
}

/// Where a file's records end and where its zeroed, synced tail ends.
#[derive(Clone, Copy)]
struct Extent {
    end: u64,
    zeroed: u64,
}

impl Extent {
    /// A file holding its header alone.
    fn new() -> Extent {
        Extent {
            end: HEADER_LEN as u64,
            zeroed: HEADER_LEN as u64,
        }
    }

    /// Writes a group (`first` then `second`) at the end of the records
    /// (where the file's cursor is) and syncs it; a small group that outgrows
    /// the tail extends it, in the same sync.
    fn write(self, file: &mut File, first: &[u8], second: &[u8]) -> std::io::Result<Extent> {
        use std::os::unix::fs::FileExt;
        write_all_vectored(file, first, second)?;
        let length = (first.len() + second.len()) as u64;
        let end = self.end + length;
        let mut zeroed = self.zeroed.max(end);
        if end > self.zeroed && length < TAIL_BELOW {
            // Positioned writes: the cursor stays where the records end.
            while zeroed < end + TAIL {
                let n = ZEROS.len().min((end + TAIL - zeroed) as usize);
                file.write_all_at(&ZEROS[..n], zeroed)?;
                zeroed += n as u64;
            }
        }
        file.sync_data()?;
        Ok(Extent { end, zeroed })
    }
}

/// A record's frame header: payload length and the checksum of both.
fn record_header(payload: &[u8]) -> [u8; RECORD_HEADER_LEN] {
    let length = (payload.len() as u64).to_le_bytes();
    let mut header = [0u8; RECORD_HEADER_LEN];
    header[..8].copy_from_slice(&length);
    header[8..].copy_from_slice(&record_crc(&length, payload).to_le_bytes());
    header
}

fn record_crc(length: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(length);
    hasher.update(payload);
    hasher.finalize()
}

/// Writes `header` then `payload` with as few system calls as the kernel
/// allows, retrying short writes.
fn write_all_vectored(file: &mut File, header: &[u8], payload: &[u8]) -> std::io::Result<()> {
    let mut slices = [IoSlice::new(header), IoSlice::new(payload)];
    let mut remaining = &mut slices[..];
    while remaining.iter().any(|slice| !slice.is_empty()) {
        match file.write_vectored(remaining) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut remaining, written),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn create_wal_file(dir: &Path, seq: u64) -> Result<File> {
    let path = dir.join(wal_file_name(seq));
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    file.write_all(&header_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| io_error(&path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Reads every complete record of a WAL file. A torn tail (a record cut short
/// or failing its checksum, as a crash mid-write leaves it) ends the file: it
/// was never acknowledged. The file is truncated there when `truncate_tail` is set.
pub(crate) fn read_wal_file(path: &Path, truncate_tail: bool) -> Result<Vec<Vec<u8>>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io_error(path, e))?;
    if bytes.len() < HEADER_LEN {
        // Created but its header never reached disk: holds nothing.
        return Ok(Vec::new());
    }
    if &bytes[..8] != WAL_MAGIC
        || crc32fast::hash(&bytes[..12])
            != u32::from_le_bytes(bytes[12..16].try_into().unwrap_or_default())
    {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            reason: "bad WAL header".to_owned(),
        });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version != WAL_VERSION && version != WAL_VERSION_UNTAILED {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            reason: format!("unsupported WAL version {version}"),
        });
    }
    let mut records = Vec::new();
    let mut offset = HEADER_LEN;
    while offset < bytes.len() {
        let Some(header) = bytes.get(offset..offset + RECORD_HEADER_LEN) else {
            break;
        };
        let length = u64::from_le_bytes(header[..8].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(header[8..12].try_into().unwrap_or_default());
        let start = offset + RECORD_HEADER_LEN;
        let Some(payload) = start
            .checked_add(length)
            .and_then(|end| bytes.get(start..end))
        else {
            break;
        };
        let expected = match version {
            WAL_VERSION_UNTAILED => crc32fast::hash(payload),
            _ => record_crc(&header[..8], payload),
        };
        if expected != crc {
            break;
        }
        records.push(payload.to_vec());
        offset = start + length;
    }
    // The zeroed tail is where the records end, not a torn write.
    let tail_is_zeroed = version != WAL_VERSION_UNTAILED && bytes[offset..].iter().all(|b| *b == 0);
    if offset < bytes.len() && !tail_is_zeroed {
        tracing::warn!(path = %path.display(), offset, "discarding torn WAL tail");
        if truncate_tail {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| io_error(path, e))?;
            file.set_len(offset as u64)
                .and_then(|_| file.sync_all())
                .map_err(|e| io_error(path, e))?;
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The bytes a file's records take: its header and their frames.
    fn records_end(payloads: &[&[u8]]) -> u64 {
        (HEADER_LEN
            + payloads
                .iter()
                .map(|p| RECORD_HEADER_LEN + p.len())
                .sum::<usize>()) as u64
    }

    #[test]
    fn records_round_trip_and_torn_tails_are_dropped() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1).unwrap();
        wal.append(b"first").unwrap();
        wal.append(b"").unwrap();
        wal.append(b"second").unwrap();
        let path = dir.path().join(wal_file_name(1));
        assert_eq!(
            read_wal_file(&path, false).unwrap(),
            vec![b"first".to_vec(), Vec::new(), b"second".to_vec()]
        );

        // A crash in the middle of a record leaves a partial frame behind,
        // over the zeroed tail.
        let end = records_end(&[b"first", b"", b"second"]);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&100u64.to_le_bytes(), end).unwrap();
        file.write_all_at(&[1, 2, 3], end + 12).unwrap();
        drop(file);
        assert_eq!(read_wal_file(&path, true).unwrap().len(), 3);
        assert_eq!(fs::metadata(&path).unwrap().len(), end);

        // A flipped bit in the last record fails its checksum.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read_wal_file(&path, false).unwrap(),
            vec![b"first".to_vec(), Vec::new()]
        );
    }

    #[test]
    fn small_groups_write_over_a_zeroed_tail_and_large_ones_do_not_extend_it() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1).unwrap();
        let path = dir.path().join(wal_file_name(1));
        let length = || fs::metadata(&path).unwrap().len();
        assert_eq!(length(), HEADER_LEN as u64);

        // The first small record extends the file by a tail; the next ones
        // are written within it, and the file does not grow.
        wal.append(b"one").unwrap();
        let extended = length();
        assert_eq!(extended, records_end(&[b"one"]) + TAIL);
        wal.append(b"two").unwrap();
        assert_eq!(length(), extended);
        // The zeroed tail is the end of the records, not a torn write: it
        // is not truncated.
        assert_eq!(
            read_wal_file(&path, true).unwrap(),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(length(), extended);

        // A group past the tail that is large writes just itself.
        let large = vec![7u8; TAIL as usize + TAIL_BELOW as usize];
        wal.append(&large).unwrap();
        let end = records_end(&[b"one", b"two", &large]);
        assert_eq!(length(), end);
        // The next small one extends the tail again, from the records' end.
        wal.append(b"three").unwrap();
        assert_eq!(length(), end + (RECORD_HEADER_LEN + 5) as u64 + TAIL);
        let records = read_wal_file(&path, false).unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(records[2], large);
        assert_eq!(records[3], b"three");

        // A rotated-to file starts without a tail.
        let seq = wal.rotate().unwrap();
        assert_eq!(
            fs::metadata(dir.path().join(wal_file_name(seq)))
                .unwrap()
                .len(),
            HEADER_LEN as u64
        );
    }

    #[test]
    fn a_version_1_file_is_read() {
        // Version 1: no zeroed tail, each checksum over the payload alone.
        let mut bytes = b"TMPRAWAL".to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        for payload in [&b"old"[..], b"", b"records"] {
            bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            bytes.extend_from_slice(payload);
        }
        let full = bytes.len();
        // A torn tail: fewer bytes than a frame header.
        bytes.extend_from_slice(&[9, 0, 0]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(wal_file_name(1));
        fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read_wal_file(&path, true).unwrap(),
            vec![b"old".to_vec(), Vec::new(), b"records".to_vec()]
        );
        assert_eq!(fs::metadata(&path).unwrap().len(), full as u64);
    }

    #[test]
    fn a_failed_write_refuses_every_later_append() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1).unwrap();
        wal.append(b"kept").unwrap();
        let path = dir.path().join(wal_file_name(1));
        // A handle that cannot write stands for a disk that fails.
        wal.state.lock().file = File::open(&path).unwrap();
        let first = wal.append(b"lost");
        assert!(matches!(first, Err(Error::WalFailed { .. })), "{first:?}");
        let second = wal.append(b"refused");
        assert!(matches!(second, Err(Error::WalFailed { .. })), "{second:?}");
        // Only the acknowledged record is in the file.
        assert_eq!(read_wal_file(&path, false).unwrap(), vec![b"kept".to_vec()]);
    }

    #[test]
    fn a_zero_frame_is_no_record() {
        assert_ne!(record_crc(&[0; 8], &[]), 0);
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1).unwrap();
        wal.append(b"").unwrap();
        let path = dir.path().join(wal_file_name(1));
        assert_eq!(read_wal_file(&path, false).unwrap(), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn concurrent_appenders_are_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::create(dir.path(), 7).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        wal.append(format!("{t}-{i}").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut records = read_wal_file(&dir.path().join(wal_file_name(7)), false).unwrap();
        records.sort();
        let mut expected: Vec<Vec<u8>> = (0..8)
            .flat_map(|t| (0..50).map(move |i| format!("{t}-{i}").into_bytes()))
            .collect();
        expected.sort();
        assert_eq!(records, expected);
        assert_eq!(list_wal_files(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_bad_header_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(wal_file_name(1));
        fs::write(&path, b"NOTAWAL!xxxxxxxxxxxx").unwrap();
        assert!(matches!(
            read_wal_file(&path, false),
            Err(Error::Corrupt { .. })
        ));
    }
}
