//! [`Store`]: the [`ChainStore`] implementation over any [`Kv`] backend.

use std::collections::BTreeMap;

use std::sync::{Mutex, PoisonError};

use auditchain_primitives::codec::{decode, encode};
use auditchain_primitives::receipt::SetChangeWitness;
use auditchain_primitives::tx::Payload;
use auditchain_primitives::vote::{CommitCertificate, Equivocation, Vote, WireCertifiedBlock};
use auditchain_primitives::{Block, Hash, PublicKey, Transaction, merkle};

use crate::block_record::{self, Location};
use crate::id_index::{self, RunHeader};
use crate::keys::IndexRef;
use crate::kv::{Kv, Write};
use crate::{
    BlockCommit, ChainStore, IndexKey, SealedHeader, StorageError, StoredTx, StoredTxWire, keys,
};

/// The chain store over backend `K`.
pub struct Store<K: Kv> {
    kv: K,
    ids: id_index::Tuning,
    /// The buffer a block's record is encoded into, kept between blocks: a fresh multi-MB
    /// buffer per block cost page faults worth several % of a cluster's CPU.
    log_buf: Mutex<Vec<u8>>,
}

fn u64_of(v: &[u8], what: &str) -> Result<u64, StorageError> {
    let arr: [u8; 8] = v.try_into().map_err(|_| StorageError::Corrupt {
        what: format!("{what}: expected 8 bytes, found {}", v.len()),
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// The first sequence number and the [`Location`] stored under record key `k` (`X` ‖ first
/// seq).
fn location(k: &[u8], v: &[u8]) -> Result<(u64, Location), StorageError> {
    let at = u64_of(k.get(1..).unwrap_or_default(), "block record key")?;
    let loc = Location::decode(v).ok_or_else(|| StorageError::Corrupt {
        what: format!(
            "location of the block record at seq {at}: expected {} bytes, found {}",
            Location::BYTES,
            v.len()
        ),
    })?;
    Ok((at, loc))
}

/// Writes that store `value` under `key` in parts of at most [`keys::MAX_VALUE_BYTES`]
/// ([`keys::part`]); none for an empty value.
fn put_parts(key: &[u8], value: &[u8], w: &mut Vec<Write>) {
    for (i, chunk) in value.chunks(keys::MAX_VALUE_BYTES).enumerate() {
        w.push((keys::part(key, i as u32), Some(chunk.to_vec())));
    }
}

fn corrupt(what: String) -> impl FnOnce(auditchain_primitives::codec::CodecError) -> StorageError {
    move |e| StorageError::Corrupt {
        what: format!("{what}: {e}"),
    }
}

impl<K: Kv> Store<K> {
    /// The parts stored under `key` by [`put_parts`], in order. Errors:
    /// [`StorageError::Corrupt`] naming `what` if a part before the last one found is missing
    /// (a missing last part leaves a value that does not decode).
    fn parts(&self, key: &[u8], what: &str) -> Result<crate::kv::Rows, StorageError> {
        let rows = self.kv.scan(key, &keys::parts_end(key), usize::MAX)?;
        for (i, (k, _)) in rows.iter().enumerate() {
            if *k != keys::part(key, i as u32) {
                return Err(StorageError::Corrupt {
                    what: format!("{what}: part {i} missing"),
                });
            }
        }
        Ok(rows)
    }

    /// The value stored in parts under `key`, joined. Errors: as [`Store::parts`].
    fn get_parts(&self, key: &[u8], what: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let rows = self.parts(key, what)?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(rows.into_iter().flat_map(|(_, v)| v).collect()))
    }

    /// Deletions of every part stored under `key`.
    fn delete_parts(&self, key: &[u8], what: &str) -> Result<Vec<Write>, StorageError> {
        Ok(self
            .parts(key, what)?
            .into_iter()
            .map(|(k, _)| (k, None))
            .collect())
    }

    /// The header and stored transaction rows of the block at `height` (rows decoded but
    /// not parsed), each row's stored position checked. Errors: [`StorageError::Corrupt`]
    /// naming the block and the row.
    fn block_rows(
        &self,
        height: u64,
    ) -> Result<Option<(SealedHeader, Vec<StoredTxWire>)>, StorageError> {
        let Some(sh) = self.header(height)? else {
            return Ok(None);
        };
        let n = u64::from(sh.header.tx_count);
        let first = sh
            .header
            .history_size
            .checked_sub(n)
            .ok_or_else(|| StorageError::Corrupt {
                what: format!("header at height {height}: tx_count exceeds history_size"),
            })?;
        let rows = self.tx_range(first, n)?;
        if rows.len() as u64 != n {
            return Err(StorageError::Corrupt {
                what: format!(
                    "block at height {height}: {} of {n} transactions present",
                    rows.len()
                ),
            });
        }
        let mut txs = Vec::with_capacity(rows.len());
        for (i, (_, v)) in rows.into_iter().enumerate() {
            let st: StoredTxWire = decode(&v).map_err(corrupt(format!(
                "transaction {i} of block at height {height}"
            )))?;
            if st.height != height || st.index as usize != i {
                return Err(StorageError::Corrupt {
                    what: format!(
                        "transaction {i} of block at height {height}: stored position ({}, {}) differs",
                        st.height, st.index
                    ),
                });
            }
            txs.push(st);
        }
        Ok(Some((sh, txs)))
    }

    /// Wraps a backend.
    pub fn new(kv: K) -> Self {
        Self::with_id_tuning(kv, id_index::Tuning::default())
    }

    /// Wraps a backend with tx-id index compaction set by `ids` (tests reach merges with few
    /// blocks this way; the layout on disk is the same whatever the tuning).
    pub fn with_id_tuning(kv: K, ids: id_index::Tuning) -> Self {
        Self {
            kv,
            ids,
            log_buf: Mutex::default(),
        }
    }

    /// The backend, for maintenance tools and tests that need raw access.
    pub fn kv(&self) -> &K {
        &self.kv
    }

    /// The block record holding transaction `seq`, if stored: its first sequence number and
    /// its location in the log (for maintenance tools and tests that need to reach the raw
    /// bytes; see [`block_record`]). Errors: a location that does not parse.
    pub fn tx_record(&self, seq: u64) -> Result<Option<(u64, Location)>, StorageError> {
        let Some((k, v)) = self.kv.seek_back(&keys::tx(0), &keys::tx(seq))? else {
            return Ok(None);
        };
        let (at, loc) = location(&k, &v)?;
        Ok((seq - at < u64::from(loc.txs)).then_some((at, loc)))
    }

    /// `len` bytes at `offset` of the record of the block whose first transaction is `at`.
    fn record_bytes(
        &self,
        at: u64,
        loc: Location,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, StorageError> {
        if offset + len as u64 > u64::from(loc.len) {
            return Err(StorageError::Corrupt {
                what: format!(
                    "block record at seq {at}: bytes {offset}..{} lie past its end ({})",
                    offset + len as u64,
                    loc.len
                ),
            });
        }
        self.kv
            .log_read(loc.offset + offset, len)
            .map_err(|e| StorageError::Corrupt {
                what: format!("block record at seq {at}: {e}"),
            })
    }

    /// Cuts bytes from the log's end that no record location refers to: a crash between a
    /// block's log append and its key-value batch, or between a revert's batch and its log cut,
    /// leaves them. Errors: [`StorageError::Corrupt`] if the log is shorter than the last
    /// record's end (committed transactions lost).
    fn trim_log(&self) -> Result<(), StorageError> {
        let last = self
            .kv
            .seek_back(&keys::tx(0), &keys::tx(u64::MAX))?
            .map(|(k, v)| location(&k, &v))
            .transpose()?;
        let end = last.map_or(0, |(_, loc)| loc.end());
        let len = self.kv.log_len()?;
        if len < end {
            return Err(StorageError::Corrupt {
                what: format!(
                    "the transaction log holds {len} bytes, but its last block record ends at byte {end}: committed transactions are missing"
                ),
            });
        }
        if len > end {
            tracing::warn!(
                bytes = len - end,
                "cutting uncommitted bytes from the transaction log's end"
            );
            self.kv.log_truncate(end)?;
        }
        Ok(())
    }

    /// The encoded [`StoredTx`] of sequence numbers `first..first + n` that are stored, in
    /// order, with their sequence numbers: per block, one read of the needed part of its
    /// record's offset table and one of the entries. Errors: a record that does not parse.
    fn tx_range(&self, first: u64, n: u64) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let mut out = Vec::with_capacity(n.min(4096) as usize);
        let end = first.saturating_add(n);
        // the record holding `first` may start before it; the next block's starts where it ends
        let mut next = self.kv.seek_back(&keys::tx(0), &keys::tx(first))?;
        while let Some((k, v)) = next.take() {
            let (at, loc) = location(&k, &v)?;
            let block_end = at + u64::from(loc.txs);
            if first >= block_end || n == 0 {
                break;
            }
            let from = (first.max(at) - at) as u32;
            let to = (end.min(block_end) - at) as u32;
            let (t_at, t_len) = block_record::table_span(from, to);
            let table = self.record_bytes(at, loc, t_at, t_len)?;
            let bad = || StorageError::Corrupt {
                what: format!("block record at seq {at}: offset table"),
            };
            let spans = block_record::entry_spans(from, &table).ok_or_else(bad)?;
            let (Some(&(lo, _)), Some(&(_, hi))) = (spans.first(), spans.last()) else {
                return Err(bad());
            };
            let base = block_record::entries_offset(loc.txs) + lo as u64;
            let bytes = self.record_bytes(at, loc, base, hi - lo)?;
            for (i, (s, e)) in spans.into_iter().enumerate() {
                out.push((
                    at + u64::from(from) + i as u64,
                    bytes[s - lo..e - lo].to_vec(),
                ));
            }
            if end > block_end {
                let key = keys::tx(block_end);
                next = self.kv.get(&key)?.map(|v| (key, v));
            }
        }
        Ok(out)
    }

    /// The tx-id runs, oldest first.
    fn id_runs(&self) -> Result<Vec<(u64, RunHeader)>, StorageError> {
        self.kv
            .scan(&keys::id_run(0), &keys::id_run(u64::MAX), usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                let run = u64_of(&k[1..], "tx-id run key")?;
                let h = RunHeader::decode(&v).ok_or_else(|| StorageError::Corrupt {
                    what: format!("tx-id run {run}: bad header"),
                })?;
                Ok((run, h))
            })
            .collect()
    }

    /// Every entry of run `run`, sorted.
    fn id_run_entries(&self, run: u64) -> Result<(Vec<Write>, Vec<u8>), StorageError> {
        let rows = self
            .kv
            .scan(&keys::id_run_start(run), &keys::id_run_end(run), usize::MAX)?;
        let mut deletes = Vec::with_capacity(rows.len() + 1);
        let mut entries = Vec::new();
        for (k, v) in rows {
            entries.extend_from_slice(&v);
            deletes.push((k, None));
        }
        deletes.push((keys::id_run(run), None));
        Ok((deletes, entries))
    }

    /// Compacts the tx-id index (see [`id_index`]) if level 0 is due: level 0 becomes a new
    /// run, then runs of a full level merge into one run of the next. One atomic batch.
    /// Errors: [`StorageError`]; the index is unchanged then.
    fn compact_ids(&self) -> Result<(), StorageError> {
        let (from, to) = keys::ID_BLOCKS;
        let level0 = self.kv.scan(from, to, usize::MAX)?;
        let entries: usize = level0.iter().map(|(_, v)| v.len() / id_index::ENTRY).sum();
        if entries < self.ids.compact_entries && level0.len() < self.ids.compact_blocks {
            return Ok(());
        }
        let mut runs = self.id_runs()?;
        let run = runs.last().map_or(0, |(r, _)| r + 1);
        let mut w: Vec<Write> = Vec::new();
        let mut lists = Vec::with_capacity(level0.len());
        for (k, v) in level0 {
            w.push((k, None));
            lists.push(v);
        }
        let mut new_run = id_index::merge(&lists);
        loop {
            let level = self.ids.level_of((new_run.len() / id_index::ENTRY) as u64);
            let peers: Vec<u64> = runs
                .iter()
                .filter(|(_, h)| h.level == level)
                .map(|(r, _)| *r)
                .collect();
            if level > self.ids.max_merge_level || peers.len() + 1 < self.ids.fanout.max(2) {
                break;
            }
            let mut lists = vec![new_run];
            for r in &peers {
                let (deletes, entries) = self.id_run_entries(*r)?;
                w.extend(deletes);
                lists.push(entries);
            }
            runs.retain(|(r, _)| !peers.contains(r));
            new_run = self.drop_stale(id_index::merge(&lists))?;
        }
        let header = RunHeader {
            entries: (new_run.len() / id_index::ENTRY) as u64,
            level: self.ids.level_of((new_run.len() / id_index::ENTRY) as u64),
        };
        for (last, page) in id_index::pages(&new_run) {
            w.push((keys::id_page(run, &last), Some(page)));
        }
        w.push((keys::id_run(run), Some(header.encode())));
        self.kv.apply(w)
    }

    /// Of entries sharing an id (a transaction whose block was reverted and which was
    /// included again), keeps the one whose sequence number holds that transaction now.
    fn drop_stale(&self, sorted: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        let e: Vec<&[u8]> = sorted.chunks_exact(id_index::ENTRY).collect();
        let dup = |i: usize| {
            (i > 0 && e[i - 1][..32] == e[i][..32])
                || e.get(i + 1).is_some_and(|n| n[..32] == e[i][..32])
        };
        if !(0..e.len()).any(dup) {
            return Ok(sorted);
        }
        let mut out = Vec::with_capacity(sorted.len());
        for (i, entry) in e.iter().enumerate() {
            if dup(i) {
                let seq = u64_of(&entry[32..], "tx-id entry")?;
                let holds = self
                    .tx_at(seq)?
                    .is_some_and(|st| st.tx.id().0[..] == entry[..32]);
                if !holds {
                    continue;
                }
            }
            out.extend_from_slice(entry);
        }
        Ok(out)
    }

    fn hash_from(&self, key: &[u8], v: Option<Vec<u8>>) -> Result<Option<Hash>, StorageError> {
        v.map(|b| {
            Hash::from_slice(&b).map_err(|e| StorageError::Corrupt {
                what: format!("key {}: {e}", String::from_utf8_lossy(key)),
            })
        })
        .transpose()
    }

    /// The chain id of an initialised store (every stored body carries it). Errors:
    /// [`StorageError::Corrupt`] if it is missing.
    fn stored_chain_id(&self) -> Result<Hash, StorageError> {
        self.chain_id()?.ok_or_else(|| StorageError::Corrupt {
            what: "chain id missing".into(),
        })
    }
}

impl<K: Kv> ChainStore for Store<K> {
    fn init(
        &self,
        genesis: &Block,
        genesis_json: &str,
        state: &BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), StorageError> {
        let chain_id = genesis.hash();
        if let Some(found) = self.chain_id()? {
            if found != chain_id {
                return Err(StorageError::WrongChain {
                    expected: chain_id,
                    found,
                });
            }
            let layout = self
                .kv
                .get(keys::META_LAYOUT)?
                .map(|v| u64_of(&v, "layout version"))
                .transpose()?
                .unwrap_or(1);
            if layout == keys::UPGRADES_IN_PLACE {
                self.kv.apply(vec![(
                    keys::META_LAYOUT.to_vec(),
                    Some(keys::LAYOUT.to_be_bytes().to_vec()),
                )])?;
                self.kv.flush()?;
            } else if layout != keys::LAYOUT {
                return Err(StorageError::Layout {
                    found: layout,
                    expected: keys::LAYOUT,
                });
            }
            return self.trim_log();
        }
        let sealed = SealedHeader {
            header: genesis.header.clone(),
            seal: genesis.seal,
        };
        let mut writes: Vec<Write> = state
            .iter()
            .map(|(k, v)| (keys::state(k), Some(v.clone())))
            .collect();
        writes.extend([
            (keys::header(0), Some(encode(&sealed)?)),
            (
                keys::block_hash(&chain_id),
                Some(0u64.to_be_bytes().to_vec()),
            ),
            (keys::META_HEAD.to_vec(), Some(0u64.to_be_bytes().to_vec())),
            (keys::META_CHAIN_ID.to_vec(), Some(chain_id.0.to_vec())),
            (
                keys::META_LAYOUT.to_vec(),
                Some(keys::LAYOUT.to_be_bytes().to_vec()),
            ),
        ]);
        put_parts(keys::META_GENESIS, genesis_json.as_bytes(), &mut writes);
        self.kv.apply(writes)?;
        self.kv.flush()
    }

    fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.kv.get(&keys::state(key))
    }

    fn state_scan(
        &self,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<crate::kv::Rows, StorageError> {
        let rows = self.kv.scan(&keys::state(from), &keys::state(to), limit)?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| (k[1..].to_vec(), v))
            .collect())
    }

    fn contract_events(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.get_parts(
            &keys::contract_events(height),
            &format!("contract events of block {height}"),
        )
    }

    fn chain_id(&self) -> Result<Option<Hash>, StorageError> {
        let v = self.kv.get(keys::META_CHAIN_ID)?;
        self.hash_from(keys::META_CHAIN_ID, v)
    }

    fn genesis_json(&self) -> Result<Option<String>, StorageError> {
        self.get_parts(keys::META_GENESIS, "genesis document")?
            .map(|b| {
                String::from_utf8(b).map_err(|e| StorageError::Corrupt {
                    what: format!("genesis document: {e}"),
                })
            })
            .transpose()
    }

    fn head_height(&self) -> Result<Option<u64>, StorageError> {
        self.kv
            .get(keys::META_HEAD)?
            .map(|v| u64_of(&v, "head height"))
            .transpose()
    }

    fn header(&self, height: u64) -> Result<Option<SealedHeader>, StorageError> {
        self.kv
            .get(&keys::header(height))?
            .map(|v| decode(&v).map_err(corrupt(format!("header at height {height}"))))
            .transpose()
    }

    fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
        let Some((sh, rows)) = self.block_rows(height)? else {
            return Ok(None);
        };
        let txs = rows
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                Transaction::from_stored(w.tx).map_err(|e| StorageError::Corrupt {
                    what: format!("transaction {i} of block at height {height}: {e}"),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Block {
            header: sh.header,
            seal: sh.seal,
            txs,
        }))
    }

    fn block_tx_ids(&self, height: u64) -> Result<Option<(SealedHeader, Vec<Hash>)>, StorageError> {
        let Some((sh, rows)) = self.block_rows(height)? else {
            return Ok(None);
        };
        let chain_id = self.stored_chain_id()?;
        let ids = rows.iter().map(|w| w.tx.id_on(&chain_id)).collect();
        Ok(Some((sh, ids)))
    }

    fn block_wire(
        &self,
        height: u64,
        certificate: Option<CommitCertificate>,
    ) -> Result<Option<WireCertifiedBlock>, StorageError> {
        Ok(self
            .block_rows(height)?
            .map(|(sh, rows)| WireCertifiedBlock {
                header: sh.header,
                seal: sh.seal,
                txs: rows.into_iter().map(|w| w.tx).collect(),
                certificate,
            }))
    }

    fn height_of(&self, hash: &Hash) -> Result<Option<u64>, StorageError> {
        self.kv
            .get(&keys::block_hash(hash))?
            .map(|v| u64_of(&v, "block hash index"))
            .transpose()
    }

    fn tx_seq(&self, id: &Hash) -> Result<Option<u64>, StorageError> {
        // level 0: entries of uncompacted blocks (removed when a block is reverted)
        let (from, to) = keys::ID_BLOCKS;
        for (_, list) in self.kv.scan(from, to, usize::MAX)? {
            if let Some(seq) = id_index::search(&list, id) {
                return Ok(Some(seq));
            }
        }
        for (run, _) in self.id_runs()? {
            let from = keys::id_page(run, id);
            let to = keys::id_run_end(run);
            for (_, page) in self.kv.scan(&from, &to, 1)? {
                if let Some(seq) = id_index::search(&page, id)
                    && self.tx_at(seq)?.is_some_and(|st| st.tx.id() == *id)
                {
                    return Ok(Some(seq));
                }
            }
        }
        Ok(None)
    }

    fn tx_at(&self, seq: u64) -> Result<Option<StoredTx>, StorageError> {
        self.tx_range(seq, 1)?
            .first()
            .map(|(_, v)| decode(v).map_err(corrupt(format!("transaction seq {seq}"))))
            .transpose()
    }

    fn next_nonce(&self, signer: &PublicKey) -> Result<u64, StorageError> {
        Ok(self
            .kv
            .get(&keys::nonce(signer))?
            .map(|v| u64_of(&v, "nonce"))
            .transpose()?
            .unwrap_or(0))
    }

    fn history_node(&self, level: u32, index: u64) -> Result<Option<Hash>, StorageError> {
        if level >= block_record::MIN_STORED_LEVEL {
            // stored in the record of the block holding the node's last leaf
            let Some(last) = index
                .checked_add(1)
                .filter(|&i| level < u64::BITS && i <= u64::MAX >> level)
                .map(|i| (i << level) - 1)
            else {
                return Ok(None);
            };
            let Some((at, loc)) = self.tx_record(last)? else {
                return Ok(None);
            };
            let txs = u64::from(loc.txs);
            let Some(pos) = block_record::node_position(at, txs, level, index) else {
                return Ok(None);
            };
            let area = block_record::node_count(at, txs) * 32;
            let start = u64::from(loc.len)
                .checked_sub(area)
                .ok_or_else(|| StorageError::Corrupt {
                    what: format!(
                        "block record at seq {at}: {} bytes, too short for its {area} bytes of history nodes",
                        loc.len
                    ),
                })?;
            let b = self.record_bytes(at, loc, start + pos * 32, 32)?;
            return Ok(Some(Hash(b.try_into().map_err(|_| {
                StorageError::Corrupt {
                    what: format!("history node ({level}, {index})"),
                }
            })?)));
        }
        let first = index << level;
        let n = 1u64 << level;
        let rows = self.tx_range(first, n)?;
        if rows.len() as u64 != n {
            return Ok(None);
        }
        let chain_id = self.stored_chain_id()?;
        let mut leaves = Vec::with_capacity(rows.len());
        for (seq, v) in &rows {
            let st: StoredTxWire = decode(v).map_err(corrupt(format!("transaction seq {seq}")))?;
            leaves.push(merkle::leaf_hash(&st.tx.id_on(&chain_id).0));
        }
        Ok(Some(merkle::root(&leaves)))
    }

    fn scan(
        &self,
        index: &IndexKey,
        from_seq: u64,
        to_seq: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StorageError> {
        let mut out = Vec::new();
        if from_seq >= to_seq || limit == 0 {
            return Ok(out);
        }
        let mut start = keys::index_entry(index, from_seq);
        let mut end = keys::index_prefix(index);
        end.extend_from_slice(&[0xff; 9]);
        let plen = start.len() - 8;
        loop {
            let rows = self.kv.scan(&start, &end, 64)?;
            let Some((last_key, _)) = rows.last() else {
                return Ok(out);
            };
            let last = u64_of(&last_key[plen..], "posting key")?;
            for (k, v) in &rows {
                if v.len() % 8 != 0 {
                    return Err(StorageError::Corrupt {
                        what: format!(
                            "posting list {}: length {}",
                            String::from_utf8_lossy(k),
                            v.len()
                        ),
                    });
                }
                for c in v.chunks_exact(8) {
                    let seq = u64_of(c, "posting entry")?;
                    if seq >= to_seq {
                        return Ok(out);
                    }
                    if seq >= from_seq {
                        out.push(seq);
                        if out.len() == limit {
                            return Ok(out);
                        }
                    }
                }
            }
            if last == u64::MAX {
                return Ok(out);
            }
            start = keys::index_entry(index, last + 1);
        }
    }

    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StorageError> {
        self.kv
            .get(&keys::certificate(height))?
            .map(|b| decode(&b).map_err(corrupt(format!("certificate of block {height}"))))
            .transpose()
    }

    fn set_change_witnesses(
        &self,
        below: u64,
    ) -> Result<Vec<(u64, SetChangeWitness)>, StorageError> {
        self.kv
            .scan(
                &keys::set_change_witness(0),
                &keys::set_change_witness(below),
                usize::MAX,
            )?
            .into_iter()
            .map(|(k, v)| {
                let height = k
                    .get(1..9)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StorageError::Corrupt {
                        what: "a validator-set witness key".into(),
                    })?;
                let w = decode(&v).map_err(corrupt(format!("witness of block {height}")))?;
                Ok((height, w))
            })
            .collect()
    }

    fn record_equivocation(&self, evidence: &Equivocation) -> Result<u64, StorageError> {
        let bytes = encode(evidence)?;
        let last = self.kv.scan(
            &keys::equivocation(0),
            &keys::equivocation(u64::MAX),
            usize::MAX,
        )?;
        if let Some((k, _)) = last.iter().find(|(_, v)| *v == bytes) {
            return u64_of(&k[1..], "equivocation key");
        }
        let n = last.len() as u64;
        self.kv.apply(vec![(keys::equivocation(n), Some(bytes))])?;
        self.kv.flush()?;
        Ok(n)
    }

    fn save_own_votes(&self, height: u64, votes: &[Vote]) -> Result<(), StorageError> {
        let bytes = encode(&(height, votes))?;
        self.kv
            .apply(vec![(keys::META_OWN_VOTES.to_vec(), Some(bytes))])?;
        self.kv.flush()
    }

    fn own_votes(&self) -> Result<Option<(u64, Vec<Vote>)>, StorageError> {
        self.kv
            .get(keys::META_OWN_VOTES)?
            .map(|b| decode(&b).map_err(corrupt("vote log".into())))
            .transpose()
    }

    fn equivocations(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Equivocation)>, StorageError> {
        self.kv
            .scan(
                &keys::equivocation(from),
                &keys::equivocation(u64::MAX),
                limit,
            )?
            .into_iter()
            .map(|(k, v)| {
                let n = u64_of(&k[1..], "equivocation key")?;
                let e = decode(&v).map_err(corrupt(format!("equivocation {n}")))?;
                Ok((n, e))
            })
            .collect()
    }

    fn event_type_counts(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        self.kv
            .scan(b"C", b"D", usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    String::from_utf8_lossy(&k[1..]).into_owned(),
                    u64_of(&v, "type count")?,
                ))
            })
            .collect()
    }

    fn commit_block(&self, c: BlockCommit<'_>) -> Result<(), StorageError> {
        self.apply_block(c)?;
        self.kv.flush()
    }

    fn apply_block(&self, c: BlockCommit<'_>) -> Result<(), StorageError> {
        let h = &c.block.header;
        let head = self.head_height()?.unwrap_or(0);
        if self.chain_id()?.is_none() || h.height != head + 1 {
            return Err(StorageError::NotNext {
                height: h.height,
                head,
            });
        }
        let mut ws = self.block_writes(c)?;
        let mut log_base = None;
        if !ws.log.is_empty() {
            // durable before any key refers to it: sled may write its batch out at any time
            let appended = self.kv.log_append(&ws.log);
            *self.log_buf.lock().unwrap_or_else(PoisonError::into_inner) =
                std::mem::take(&mut ws.log);
            let base = appended?;
            log_base = Some(base);
            self.kv.log_sync()?;
            if let Some((key, loc)) = ws.record {
                let loc = Location {
                    offset: base + loc.offset,
                    ..loc
                };
                ws.created.push((key, Some(loc.encode())));
            }
        }
        // Undo record: the previous value of every key this block overwrites (created keys are
        // recomputed from the block on revert).
        let mut undo: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(ws.updated.len());
        for (k, _) in &ws.updated {
            undo.push((k.clone(), self.kv.get(k)?));
        }
        let mut w = ws.created;
        w.extend(ws.updated);
        put_parts(&keys::undo(h.height), &encode(&undo)?, &mut w);
        if let Err(e) = self.kv.apply(w) {
            // nothing refers to the appended record: cut it rather than leave a gap
            if let Some(base) = log_base {
                let _ = self.kv.log_truncate(base);
            }
            return Err(e);
        }
        // the block is committed; a failed compaction leaves the index valid and is retried
        // after the next block
        if let Err(e) = self.compact_ids() {
            tracing::warn!(error = %e, "tx-id index compaction failed");
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.kv.flush()
    }

    fn revert_head(&self) -> Result<Block, StorageError> {
        let head = self.head_height()?.unwrap_or(0);
        if head == 0 {
            return Err(StorageError::Corrupt {
                what: "cannot revert the genesis block".into(),
            });
        }
        let block = self.block(head)?.ok_or_else(|| StorageError::Corrupt {
            what: format!("head block {head} missing"),
        })?;
        let parent = self
            .header(head - 1)?
            .ok_or_else(|| StorageError::Corrupt {
                what: format!("header {} missing", head - 1),
            })?
            .header;
        let undo_what = format!("undo record of block {head}");
        let undo_bytes = self
            .get_parts(&keys::undo(head), &undo_what)?
            .ok_or_else(|| StorageError::Corrupt {
                what: format!("{undo_what} missing"),
            })?;
        let undo: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            decode(&undo_bytes).map_err(corrupt(undo_what.clone()))?;
        let ids: Vec<Hash> = block.txs.iter().map(|t| t.id()).collect();
        let mut frontier =
            merkle::Frontier::from_source(self as &dyn ChainStore, parent.history_size).map_err(
                |e| StorageError::Corrupt {
                    what: format!("history tree at size {}: {e}", parent.history_size),
                },
            )?;
        let mut nodes = Vec::new();
        for id in &ids {
            frontier.append(merkle::leaf_hash(&id.0), |n| nodes.push(n));
        }
        let ws = self.block_writes(BlockCommit {
            block: &block,
            hash: block.hash(),
            tx_ids: &ids,
            history_nodes: &nodes,
            certificate: None,
            parent_certificate: None,
            state_writes: &BTreeMap::new(),
            contract_events: &[],
            set_change_witness: None,
        })?;
        // the block's record is the log's last: cut the log back to where it begins
        let log_start = match &ws.record {
            Some((k, _)) => {
                let v = self.kv.get(k)?.ok_or_else(|| StorageError::Corrupt {
                    what: format!("record of block {head} missing"),
                })?;
                Some(location(k, &v)?.1.offset)
            }
            None => None,
        };
        let mut w: Vec<Write> = vec![
            (keys::certificate(head), None),
            (keys::set_change_witness(head), None),
        ];
        w.extend(self.delete_parts(
            &keys::contract_events(head),
            &format!("contract events of block {head}"),
        )?);
        w.extend(ws.created.into_iter().map(|(k, _)| (k, None)));
        w.extend(ws.record.map(|(k, _)| (k, None)));
        w.extend(undo);
        w.extend(self.delete_parts(&keys::undo(head), &undo_what)?);
        self.kv.apply(w)?;
        self.kv.flush()?;
        // after the flush: until then a crash brings back keys that point into these bytes
        if let Some(at) = log_start {
            self.kv.log_truncate(at)?;
        }
        Ok(block)
    }
}

/// Appends the record ([`block_record`]) of block `c`, whose first transaction is `first_seq`,
/// to `log`, and returns its key and its location relative to `log`'s start. Errors:
/// [`StorageError::Corrupt`] if the record would exceed 4 GiB, or `c.history_nodes` is not
/// exactly the set of stored nodes the block completes (a caller's bug: nothing is written).
fn encode_record(
    c: &BlockCommit<'_>,
    first_seq: u64,
    log: &mut Vec<u8>,
) -> Result<(Vec<u8>, Location), StorageError> {
    let h = &c.block.header;
    let n = c.block.txs.len();
    let start = block_record::begin(log, n);
    for (i, tx) in c.block.txs.iter().enumerate() {
        StoredTx::encode_into(h.height, i as u32, tx, log);
        block_record::end_entry(log, start, n, i);
    }
    let txs = n as u64;
    let nodes_at = log.len();
    let expected = block_record::node_count(first_seq, txs);
    log.resize(nodes_at + 32 * expected as usize, 0);
    let mut given = 0u64;
    for node in c.history_nodes {
        if node.level < block_record::MIN_STORED_LEVEL {
            continue;
        }
        let pos = block_record::node_position(first_seq, txs, node.level, node.index).ok_or_else(
            || StorageError::Corrupt {
                what: format!(
                    "block {}: history node ({}, {}) is not one the block completes",
                    h.height, node.level, node.index
                ),
            },
        )?;
        let at = nodes_at + 32 * pos as usize;
        log[at..at + 32].copy_from_slice(&node.hash.0);
        given += 1;
    }
    if given != expected {
        return Err(StorageError::Corrupt {
            what: format!(
                "block {}: {given} stored history nodes given, the block completes {expected}",
                h.height
            ),
        });
    }
    let too_big = || StorageError::Corrupt {
        what: format!("record of block {} exceeds 4 GiB", h.height),
    };
    let loc = Location {
        offset: start as u64,
        len: u32::try_from(log.len() - start).map_err(|_| too_big())?,
        txs: u32::try_from(n).map_err(|_| too_big())?,
    };
    Ok((keys::tx(first_seq), loc))
}

/// The keys one block writes: `created` keys did not exist before it (deleted on revert),
/// `updated` keys did (their previous values go into the undo record). The block's record
/// ([`block_record`]) is `log` (to append) and its key, with its location relative to the
/// start of `log` (none for a block without transactions); the record key is a created key
/// too, once the log offset is known.
struct BlockWrites {
    created: Vec<Write>,
    updated: Vec<Write>,
    log: Vec<u8>,
    record: Option<(Vec<u8>, Location)>,
}

impl<K: Kv> Store<K> {
    fn block_writes(&self, c: BlockCommit<'_>) -> Result<BlockWrites, StorageError> {
        let h = &c.block.header;
        let first_seq = h.history_size - u64::from(h.tx_count);
        let mut w: Vec<Write> = Vec::with_capacity(c.block.txs.len() * 2 + 8);
        let mut updated: Vec<Write> = Vec::new();
        let mut nonces: BTreeMap<PublicKey, u64> = BTreeMap::new();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut postings: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        // the record, encoded straight into the reused log buffer
        let mut log =
            std::mem::take(&mut *self.log_buf.lock().unwrap_or_else(PoisonError::into_inner));
        log.clear();
        let record = if c.block.txs.is_empty() {
            None
        } else {
            Some(encode_record(&c, first_seq, &mut log)?)
        };
        let mut prefix = Vec::new();
        for (i, tx) in c.block.txs.iter().enumerate() {
            let seq = (first_seq + i as u64).to_be_bytes();
            let body = tx.body();
            let evidence = match &body.payload {
                Payload::AnchorEvidence { sha256, .. } => Some(IndexRef::Evidence(sha256)),
                _ => None,
            };
            let idx = [
                IndexRef::Entity(body.payload.entity_id()),
                IndexRef::Signer(&body.signer),
                IndexRef::EventType(body.payload.event_type()),
            ];
            for k in idx.into_iter().chain(evidence) {
                prefix.clear();
                keys::index_prefix_into(k, &mut prefix);
                match postings.get_mut(prefix.as_slice()) {
                    Some(list) => list.extend_from_slice(&seq),
                    None => {
                        postings.insert(prefix.clone(), seq.to_vec());
                    }
                }
            }
            nonces.insert(body.signer, body.nonce + 1);
            *counts.entry(body.payload.event_type()).or_default() += 1;
        }
        if !c.tx_ids.is_empty() {
            let pairs = c.tx_ids.iter().enumerate();
            let pairs = pairs.map(|(i, id)| (*id, first_seq + i as u64)).collect();
            let sorted = id_index::encode_entries(pairs);
            let part_bytes = id_index::PART_ENTRIES * id_index::ENTRY;
            for (part, entries) in sorted.chunks(part_bytes).enumerate() {
                w.push((
                    keys::id_block(h.height, part as u32),
                    Some(entries.to_vec()),
                ));
            }
        }
        for (signer, n) in nonces {
            updated.push((keys::nonce(&signer), Some(n.to_be_bytes().to_vec())));
        }
        for (t, n) in counts {
            let key = keys::type_count(t);
            let old = self
                .kv
                .get(&key)?
                .map(|v| u64_of(&v, "type count"))
                .transpose()?
                .unwrap_or(0);
            updated.push((key, Some((old + n).to_be_bytes().to_vec())));
        }
        for (prefix, list) in postings {
            for part in list.chunks(keys::POSTING_MAX * 8) {
                let mut key = prefix.clone();
                key.extend_from_slice(&part[part.len() - 8..]);
                w.push((key, Some(part.to_vec())));
            }
        }
        let sealed = SealedHeader {
            header: h.clone(),
            seal: c.block.seal,
        };
        w.push((keys::header(h.height), Some(encode(&sealed)?)));
        w.push((
            keys::block_hash(&c.hash),
            Some(h.height.to_be_bytes().to_vec()),
        ));
        if let Some(cert) = c.certificate {
            w.push((keys::certificate(h.height), Some(encode(cert)?)));
        }
        if let Some(cert) = c.parent_certificate {
            // an overwrite: the undo record keeps the parent's previous certificate
            updated.push((keys::certificate(h.height - 1), Some(encode(cert)?)));
        }
        for (k, v) in c.state_writes {
            updated.push((keys::state(k), v.clone()));
        }
        if let Some(witness) = c.set_change_witness {
            w.push((keys::set_change_witness(h.height), Some(encode(witness)?)));
        }
        put_parts(&keys::contract_events(h.height), c.contract_events, &mut w);
        updated.push((
            keys::META_HEAD.to_vec(),
            Some(h.height.to_be_bytes().to_vec()),
        ));
        Ok(BlockWrites {
            created: w,
            updated,
            log,
            record,
        })
    }
}
