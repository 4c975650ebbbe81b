//! Ordered key-value backends: sled on disk, a `BTreeMap` in memory.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

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
}

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

/// sled 0.34.7, one tree. `apply` is a sled batch (atomic); `flush` fsyncs sled's log.
pub struct SledKv {
    db: sled::Db,
}

impl SledKv {
    /// Opens (or creates) the database in directory `path`. sled checks its log's checksums on
    /// open and recovers to the last complete batch. Errors: [`StorageError::Backend`].
    ///
    /// A database closed a moment ago in this process may still hold its file lock while
    /// sled's background flusher finishes; opening retries for up to 2 s in that case.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let mut tries = 0;
        loop {
            match sled::Config::new()
                .path(path)
                .cache_capacity(256 << 20)
                .mode(sled::Mode::HighThroughput)
                .open()
            {
                Ok(db) => return Ok(Self { db }),
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
}

/// In-memory backend for tests: a `BTreeMap` behind a lock.
#[derive(Default)]
pub struct MemKv {
    map: RwLock<Map>,
}

impl MemKv {
    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Map>, StorageError> {
        self.map.read().map_err(|_| backend("lock poisoned"))
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
}
