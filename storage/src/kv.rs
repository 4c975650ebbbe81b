//! Ordered key-value backends, each with an append-only byte log beside it: sled plus a file
//! on disk, a `BTreeMap` plus a `Vec` in memory.
//!
//! The log holds what is large and written once (block records, [`crate::block_record`]); the
//! key-value store holds everything else, including the positions of the log's records. Bytes
//! in the log are visible only through a position stored in the key-value store, so bytes
//! appended by a commit that never reached the key-value store are unreachable, and
//! [`crate::Store`] trims them at start-up.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use crate::StorageError;

/// One write of a batch: `Some(value)` puts, `None` deletes.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// One key-value pair.
pub type Row = (Vec<u8>, Vec<u8>);

/// Key-value pairs returned by a scan, ascending by key.
pub type Rows = Vec<Row>;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An ordered byte-keyed store with atomic batches.
pub trait Kv: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// Entries with `from <= key < to`, ascending, at most `limit`.
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Rows, StorageError>;
    /// The entry with the greatest key in `from..=key`, if any.
    fn seek_back(&self, from: &[u8], key: &[u8]) -> Result<Option<Row>, StorageError>;
    /// Applies all writes atomically (all or none visible, also after a crash).
    fn apply(&self, writes: Vec<Write>) -> Result<(), StorageError>;
    /// Makes every applied write durable (fsync).
    fn flush(&self) -> Result<(), StorageError>;

    /// Appends `bytes` to the log; returns the offset (bytes from the log's start) where they
    /// begin. Not durable until [`Kv::log_sync`].
    fn log_append(&self, bytes: &[u8]) -> Result<u64, StorageError>;
    /// Makes every appended byte durable (fdatasync of the log file).
    fn log_sync(&self) -> Result<(), StorageError>;
    /// `len` bytes of the log from offset `at`. Errors: [`StorageError::Corrupt`] if they run
    /// past the log's end.
    fn log_read(&self, at: u64, len: usize) -> Result<Vec<u8>, StorageError>;
    /// The log's length, bytes.
    fn log_len(&self) -> Result<u64, StorageError>;
    /// Cuts the log to its first `len` bytes (durably); a no-op if it is not longer.
    fn log_truncate(&self, len: u64) -> Result<(), StorageError>;
}

fn past_end(at: u64, len: usize, end: u64) -> StorageError {
    StorageError::Corrupt {
        what: format!("log record at offset {at} ({len} bytes) runs past the log's end ({end})"),
    }
}

/// Page size the log's page-cache advice is aligned to, bytes.
const PAGE_BYTES: u64 = 4096;

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

/// sled 0.34.7, one tree, plus the log file [`SledKv::LOG_FILE`] in the same directory.
/// `apply` is a sled batch (atomic); `flush` fsyncs sled's log.
///
/// The log keeps only its last [`SledKv::LOG_CACHE_BYTES`] in the page cache: once a sync has
/// made them durable, older bytes are dropped from it (`posix_fadvise(POSIX_FADV_DONTNEED)`,
/// Linux). The log is written once and read by point lookups; without this its pages fill
/// memory until the kernel reclaims them, and every page written is memory not touched for a
/// while. On the reference machine (a virtual machine) that is ~8× dearer than reusing pages
/// freed a moment ago: 280 MB appended and synced in 7 MB steps took 0.68 s of CPU, 0.09 s
/// when each synced step was dropped (probably the host backing such memory afresh). In
/// `bench ingest` this cut the node's CPU by about 6 %.
pub struct SledKv {
    db: sled::Db,
    log: File,
    /// The log file's length; the lock orders appends and truncations.
    log_end: Mutex<u64>,
    /// Log bytes before this offset have been dropped from the page cache (a page boundary).
    log_uncached: Mutex<u64>,
}

impl SledKv {
    /// Name of the log file inside the data dir.
    pub const LOG_FILE: &str = "txlog";

    /// How many of the log's last bytes stay in the page cache after a sync (32 MiB: the
    /// transactions of the last few full blocks, which clients read back most).
    pub const LOG_CACHE_BYTES: u64 = 32 << 20;

    /// sled's segment size in the data dirs this build creates, bytes (sled's default is
    /// 512 KiB). sled 0.34 writes anything it logs that is over a quarter of a segment (a tree
    /// leaf of up to 17 values, or one large value) to a separate "blob" file, and never
    /// fsyncs blob files (spacejam/sled#1077), so a power loss could lose an acknowledged
    /// commit. With 8 MiB segments the bound is 2 MiB: a leaf of values no larger than
    /// [`crate::keys::MAX_VALUE_BYTES`] stays in sled's log, which `flush` fsyncs.
    pub const SEGMENT_BYTES: usize = 8 << 20;

    /// The segment size recorded in the sled config file of the data dir at `path`, if any
    /// (data dirs of layout 3 and before used sled's default, and sled refuses to open a data
    /// dir with another).
    fn stored_segment_bytes(path: &Path) -> Option<usize> {
        let conf = std::fs::read(path.join("conf")).ok()?;
        String::from_utf8_lossy(&conf)
            .lines()
            .find_map(|l| l.strip_prefix("segment_size: ")?.trim().parse().ok())
    }

    /// Opens (or creates) the database in directory `path`. sled checks its log's checksums on
    /// open and recovers to the last complete batch. Errors: [`StorageError::Backend`].
    ///
    /// A database closed a moment ago in this process may still hold its file lock while
    /// sled's background flusher finishes; opening retries for up to 2 s in that case.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let db = Self::open_db(path)?;
        let log_path = path.join(Self::LOG_FILE);
        let existed = log_path.exists();
        let log = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)
            .map_err(|e| StorageError::Backend(format!("open {}: {e}", log_path.display())))?;
        if !existed {
            // the new file's directory entry must survive a crash as its bytes will
            File::open(path)
                .and_then(|d| d.sync_all())
                .map_err(|e| StorageError::Backend(format!("sync {}: {e}", path.display())))?;
        }
        let end = log.metadata().map_err(backend)?.len();
        Ok(Self {
            db,
            log,
            log_end: Mutex::new(end),
            log_uncached: Mutex::new(0),
        })
    }

    /// Drops the log's pages before `synced_end - LOG_CACHE_BYTES` from the page cache (only
    /// clean pages are dropped, so `synced_end` must be durable). Advice only: a failure
    /// changes nothing stored and is logged at debug level.
    fn drop_cached_log(&self, synced_end: u64) {
        let Ok(mut from) = self.log_uncached.lock() else {
            return;
        };
        let to = synced_end.saturating_sub(Self::LOG_CACHE_BYTES) / PAGE_BYTES * PAGE_BYTES;
        let Some(len) = std::num::NonZeroU64::new(to.saturating_sub(*from)) else {
            return;
        };
        #[cfg(target_os = "linux")]
        if let Err(e) =
            rustix::fs::fadvise(&self.log, *from, Some(len), rustix::fs::Advice::DontNeed)
        {
            tracing::debug!("dropping {len} log bytes at {from} from the page cache: {e}");
        }
        #[cfg(not(target_os = "linux"))]
        let _ = len;
        *from = to;
    }

    fn open_db(path: &Path) -> Result<sled::Db, StorageError> {
        // a data dir of an older layout opens with its own segment size, so that the store
        // can read its layout version and refuse it with an explanation
        let segment = Self::stored_segment_bytes(path).unwrap_or(Self::SEGMENT_BYTES);
        let mut tries = 0;
        loop {
            match sled::Config::new()
                .path(path)
                .segment_size(segment)
                .cache_capacity(256 << 20)
                .mode(sled::Mode::HighThroughput)
                .open()
            {
                Ok(db) => return Ok(db),
                Err(e) if tries < 40 && e.to_string().contains("could not acquire lock") => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(StorageError::Backend(format!(
                        "open {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    }
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(key).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Rows, StorageError> {
        self.db
            .range(from..to)
            .take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend))
            .collect()
    }

    fn seek_back(&self, from: &[u8], key: &[u8]) -> Result<Option<Row>, StorageError> {
        self.db
            .range(from..=key)
            .next_back()
            .transpose()
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .map_err(backend)
    }

    fn apply(&self, writes: Vec<Write>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.db.apply_batch(batch).map_err(backend)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }

    fn log_append(&self, bytes: &[u8]) -> Result<u64, StorageError> {
        let mut end = self.log_end.lock().map_err(|_| backend("lock poisoned"))?;
        let at = *end;
        if let Err(e) = self.log.write_all_at(bytes, at) {
            // a partial write leaves bytes no position refers to; cut them now
            let _ = self.log.set_len(at);
            return Err(backend(format!("append to {}: {e}", Self::LOG_FILE)));
        }
        *end += bytes.len() as u64;
        Ok(at)
    }

    fn log_sync(&self) -> Result<(), StorageError> {
        let end = self.log_len()?;
        self.log.sync_data().map_err(backend)?;
        self.drop_cached_log(end);
        Ok(())
    }

    fn log_read(&self, at: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let mut buf = vec![0; len];
        match self.log.read_exact_at(&mut buf, at) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(past_end(at, len, self.log_len()?))
            }
            Err(e) => Err(backend(format!("read {}: {e}", Self::LOG_FILE))),
        }
    }

    fn log_len(&self) -> Result<u64, StorageError> {
        Ok(*self.log_end.lock().map_err(|_| backend("lock poisoned"))?)
    }

    fn log_truncate(&self, len: u64) -> Result<(), StorageError> {
        let mut end = self.log_end.lock().map_err(|_| backend("lock poisoned"))?;
        if *end > len {
            self.log.set_len(len).map_err(backend)?;
            self.log.sync_all().map_err(backend)?;
            *end = len;
            if let Ok(mut from) = self.log_uncached.lock() {
                *from = (*from).min(len / PAGE_BYTES * PAGE_BYTES);
            }
        }
        Ok(())
    }
}

/// In-memory backend for tests: a `BTreeMap` and a log `Vec`, each behind a lock.
#[derive(Default)]
pub struct MemKv {
    map: RwLock<Map>,
    log: RwLock<Vec<u8>>,
}

impl MemKv {
    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Map>, StorageError> {
        self.map.read().map_err(|_| backend("lock poisoned"))
    }

    fn log_mut(&self) -> Result<std::sync::RwLockWriteGuard<'_, Vec<u8>>, StorageError> {
        self.log.write().map_err(|_| backend("lock poisoned"))
    }

    /// Flips the bits of `mask` in the log byte at offset `at` (for tests of damage
    /// detection). Errors: [`StorageError::Corrupt`] if there is no such byte.
    pub fn flip_log_byte(&self, at: u64, mask: u8) -> Result<(), StorageError> {
        let mut log = self.log_mut()?;
        let end = log.len() as u64;
        let b = usize::try_from(at)
            .ok()
            .and_then(|i| log.get_mut(i))
            .ok_or_else(|| past_end(at, 1, end))?;
        *b ^= mask;
        Ok(())
    }
}

impl Kv for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.read()?.get(key).cloned())
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Rows, StorageError> {
        Ok(self
            .read()?
            .range(from.to_vec()..to.to_vec())
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn seek_back(&self, from: &[u8], key: &[u8]) -> Result<Option<Row>, StorageError> {
        Ok(self
            .read()?
            .range(from.to_vec()..=key.to_vec())
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn apply(&self, writes: Vec<Write>) -> Result<(), StorageError> {
        let mut m = self.map.write().map_err(|_| backend("lock poisoned"))?;
        for (k, v) in writes {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn log_append(&self, bytes: &[u8]) -> Result<u64, StorageError> {
        let mut log = self.log_mut()?;
        let at = log.len() as u64;
        log.extend_from_slice(bytes);
        Ok(at)
    }

    fn log_sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn log_read(&self, at: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let log = self.log.read().map_err(|_| backend("lock poisoned"))?;
        usize::try_from(at)
            .ok()
            .and_then(|a| log.get(a..a.checked_add(len)?))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| past_end(at, len, log.len() as u64))
    }

    fn log_len(&self) -> Result<u64, StorageError> {
        Ok(self.log.read().map_err(|_| backend("lock poisoned"))?.len() as u64)
    }

    fn log_truncate(&self, len: u64) -> Result<(), StorageError> {
        let mut log = self.log_mut()?;
        if (log.len() as u64) > len {
            log.truncate(usize::try_from(len).map_err(backend)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reads_back_every_byte_after_old_pages_leave_the_page_cache() {
        const MIB: usize = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let kv = SledKv::open(dir.path()).unwrap();
        let uncached = |kv: &SledKv| *kv.log_uncached.lock().unwrap();
        let chunk = |i: usize| vec![i as u8; 8 * MIB + 1];
        for i in 0..6 {
            assert_eq!(
                kv.log_append(&chunk(i)).unwrap(),
                (i * (8 * MIB + 1)) as u64
            );
            kv.log_sync().unwrap();
        }
        let end = kv.log_len().unwrap();
        // everything but the last 32 MiB, cut at a page boundary, has been let go
        assert_eq!(
            uncached(&kv),
            (end - SledKv::LOG_CACHE_BYTES) / PAGE_BYTES * PAGE_BYTES
        );
        assert!(uncached(&kv) > 0);
        for i in 0..6 {
            let at = (i * (8 * MIB + 1)) as u64;
            assert_eq!(kv.log_read(at, 8 * MIB + 1).unwrap(), chunk(i), "chunk {i}");
        }
        // a cut below the dropped part moves it back, and later bytes are handled again
        kv.log_truncate(3 * MIB as u64 + 5).unwrap();
        assert_eq!(uncached(&kv), 3 * MIB as u64);
        kv.log_append(&[7; 100]).unwrap();
        kv.log_sync().unwrap();
        assert_eq!(uncached(&kv), 3 * MIB as u64);
        assert_eq!(kv.log_read(3 * MIB as u64 + 5, 100).unwrap(), vec![7; 100]);
        assert_eq!(kv.log_read(0, 16).unwrap(), vec![0; 16]);
    }
}
