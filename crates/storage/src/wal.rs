//! The write-ahead log: append-only files of checksummed records, fsynced in
//! groups before any write is acknowledged.
//!
//! Layout (all integers little-endian; see `docs/formats/wal.md`):
//!
//! ```text
//! file   := header record*
//! header := magic "TMPRAWAL" (8) | version u32 = 1 | crc32(magic, version) u32
//! record := payload_len u64 | crc32(payload) u32 | payload
//! ```
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

use parking_lot::{Condvar, Mutex};

use crate::{Error, Result, io_error, sync_dir};

pub(crate) const WAL_MAGIC: &[u8; 8] = b"TMPRAWAL";
pub(crate) const WAL_VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 16;
const RECORD_HEADER_LEN: usize = 12;

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
            state.flushing = true;
            let file = state.file.try_clone();
            drop(state);
            let result = file.and_then(|mut file| {
                write_all_vectored(&mut file, &header, payload)?;
                file.sync_data()
            });
            state = self.state.lock();
            self.end_flush(&mut state, ticket, result);
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
            state.flushing = true;
            let batch = std::mem::take(&mut state.buffer);
            let covered = state.appended;
            let file = state.file.try_clone();
            drop(state);
            let result = file.and_then(|mut file| {
                file.write_all(&batch)?;
                file.sync_data()
            });
            state = self.state.lock();
            self.end_flush(&mut state, covered, result);
        }
    }

    /// Records the outcome of a group flush covering records up to `covered`
    /// and wakes the appenders waiting on it.
    fn end_flush(&self, state: &mut WalState, covered: u64, result: std::io::Result<()>) {
        state.flushing = false;
        match result {
            Ok(()) => state.durable = covered,
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
        Ok(seq)
    }
}

/// A record's frame header: payload length and checksum.
fn record_header(payload: &[u8]) -> [u8; RECORD_HEADER_LEN] {
    let mut header = [0u8; RECORD_HEADER_LEN];
    header[..8].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[8..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    header
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
    if version != WAL_VERSION {
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
        if crc32fast::hash(payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        offset = start + length;
    }
    if offset < bytes.len() {
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

    #[test]
    fn records_round_trip_and_torn_tails_are_dropped() {
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

        // A crash in the middle of a record leaves a partial frame behind.
        let full_len = fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&100u64.to_le_bytes()).unwrap();
        file.write_all(&[1, 2, 3]).unwrap();
        drop(file);
        assert_eq!(read_wal_file(&path, true).unwrap().len(), 3);
        assert_eq!(fs::metadata(&path).unwrap().len(), full_len);

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
