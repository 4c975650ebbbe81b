//! The contract state: an ordered byte-keyed map read through [`StateRead`] and written through
//! an [`Overlay`] that buffers writes until the block (or a call) is known to succeed.
//!
//! Values are JSON (serde_json over structs and `BTreeMap`s, so the bytes are deterministic).
//! Keys are ASCII table names followed by binary parts (public keys, big-endian integers); the
//! tables are listed in docs/contracts.md. Invariant: no value is ever empty, so a deletion
//! (`None`) enters the state root as the empty value without ambiguity.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A failure to read state (storage, or a stored value that does not decode). Not a call
/// failure: the block cannot be executed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("contract state: {0}")]
pub struct StateError(pub String);

/// Read access to committed contract state.
pub trait StateRead {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    /// Entries with `from <= key < to`, ascending, at most `limit`.
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Rows, StateError>;
}

/// Rows of a scan: `(key, value)`, ascending by key.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Buffered writes: `Some(value)` puts, `None` deletes.
pub type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// State held in memory (tests, offline re-verification of a chain).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemState(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl MemState {
    /// Applies buffered writes.
    pub fn apply(&mut self, writes: &Writes) {
        for (k, v) in writes {
            match v {
                Some(v) => self.0.insert(k.clone(), v.clone()),
                None => self.0.remove(k),
            };
        }
    }
}

impl StateRead for MemState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Rows, StateError> {
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(self
            .0
            .range(from.to_vec()..to.to_vec())
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// Writes buffered over a base state. Reads see the buffered writes first.
pub struct Overlay<'a> {
    base: &'a dyn StateRead,
    writes: Writes,
}

/// The exclusive upper bound of all keys starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

impl<'a> Overlay<'a> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a dyn StateRead) -> Self {
        Self {
            base,
            writes: Writes::new(),
        }
    }

    /// The buffered writes.
    pub fn into_writes(self) -> Writes {
        self.writes
    }

    /// Adds writes buffered elsewhere (a call that succeeded) on top of these.
    pub fn absorb(&mut self, writes: Writes) {
        self.writes.extend(writes);
    }

    /// Buffers a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Buffers a deletion.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Decodes the JSON value at `key`. Errors: [`StateError`] if it does not decode.
    pub fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StateError> {
        self.get(key)?
            .map(|v| serde_json::from_slice(&v).map_err(|e| bad_value(key, e)))
            .transpose()
    }

    /// Buffers `value` as JSON at `key`.
    pub fn put_json<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StateError> {
        let v = serde_json::to_vec(value).map_err(|e| bad_value(&key, e))?;
        self.put(key, v);
        Ok(())
    }

    /// Every entry under `prefix`, decoded, ascending by key, at most `limit`.
    pub fn scan_json<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, StateError> {
        self.scan(prefix, &prefix_end(prefix), limit)?
            .into_iter()
            .map(|(k, v)| {
                let t = serde_json::from_slice(&v).map_err(|e| bad_value(&k, e))?;
                Ok((k, t))
            })
            .collect()
    }
}

fn bad_value(key: &[u8], e: impl std::fmt::Display) -> StateError {
    StateError(format!(
        "value at {} does not decode: {e}",
        String::from_utf8_lossy(key)
    ))
}

impl StateRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Rows, StateError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let mine: Vec<(&Vec<u8>, &Option<Vec<u8>>)> =
            self.writes.range(from.to_vec()..to.to_vec()).collect();
        // enough base rows to fill `limit` after the buffered deletions hide some
        let deleted = mine.iter().filter(|(_, v)| v.is_none()).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self
            .base
            .scan(from, to, limit.saturating_add(deleted))?
            .into_iter()
            .collect();
        // at least `limit` base rows survive the deletions when the base scan was cut short,
        // so buffered keys past the last base row read sort after them and are cut too
        for (k, v) in mine {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_reads_its_writes_and_scans_merge() {
        let mut base = MemState::default();
        for k in [b"a1", b"a2", b"a3", b"b1"] {
            base.0.insert(k.to_vec(), k.to_vec());
        }
        let mut o = Overlay::new(&base);
        o.delete(b"a2".to_vec());
        o.put(b"a4".to_vec(), b"x".to_vec());
        assert_eq!(o.get(b"a2").unwrap(), None);
        assert_eq!(o.get(b"a1").unwrap(), Some(b"a1".to_vec()));
        let keys: Vec<Vec<u8>> = o
            .scan(b"a", &prefix_end(b"a"), 10)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"a1".to_vec(), b"a3".to_vec(), b"a4".to_vec()]);
        let two = o.scan(b"a", &prefix_end(b"a"), 2).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].0, b"a3".to_vec());
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }
}
