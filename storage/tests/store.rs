//! The same behaviour checks against the in-memory and the sled backend.

static EMPTY: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> =
    std::collections::BTreeMap::new();

use auditchain_primitives::block::{ConsensusFields, HEADER_VERSION};
use auditchain_primitives::merkle::{self, Frontier};
use auditchain_primitives::tx::{Payload, TxBody, data_hash};
use auditchain_primitives::vote::{CertifiedBlock, WireCertifiedBlock};
use auditchain_primitives::{Block, Hash, Header, PublicKey, SecretKey, Signature, Transaction};
use auditchain_storage::{
    BlockCommit, ChainStore, IndexKey, Kv, MemKv, SledKv, StorageError, Store,
};

fn genesis(tag: u8) -> Block {
    Block {
        header: Header {
            version: HEADER_VERSION,
            height: 0,
            parent_hash: Hash::ZERO,
            timestamp_ms: 1000,
            proposer: PublicKey([0; 32]),
            tx_root: merkle::empty_root(),
            tx_count: 0,
            history_root: merkle::empty_root(),
            history_size: 0,
            state_root: Hash([tag; 32]),
            last_commit_hash: Hash::ZERO,
            consensus: ConsensusFields::Genesis,
        },
        seal: Signature([0; 64]),
        txs: vec![],
    }
}

/// An in-memory store bound to `genesis(1)`, and that genesis block.
fn mem_store() -> (Store<MemKv>, Block) {
    let store = Store::new(MemKv::default());
    let g = genesis(1);
    store.init(&g, "{}", &Default::default()).unwrap();
    (store, g)
}

fn tx(chain: Hash, key: &SecretKey, nonce: u64, entity: &str, ty: &str) -> Transaction {
    let data = serde_json::json!({ "n": nonce });
    Transaction::sign(
        TxBody {
            chain_id: chain,
            signer: key.public_key(),
            nonce,
            timestamp_ms: 5,
            payload: Payload::RecordEvent {
                event_type: ty.into(),
                entity_id: entity.into(),
                data_hash: data_hash(&data).unwrap(),
                data: Some(data.try_into().unwrap()),
            },
        },
        key,
    )
    .unwrap()
}

/// Commits a block of `txs` on top of `parent`; returns it.
fn commit(
    store: &dyn ChainStore,
    f: &mut Frontier,
    parent: &Header,
    txs: Vec<Transaction>,
) -> Block {
    commit_with(store, f, parent, txs, &EMPTY, b"[]")
}

/// As [`commit`], with the contract state writes `extra` besides the three of every block, and
/// the contract `events`.
fn commit_with(
    store: &dyn ChainStore,
    f: &mut Frontier,
    parent: &Header,
    txs: Vec<Transaction>,
    extra: &std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    events: &[u8],
) -> Block {
    let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
    let mut nodes = Vec::new();
    for id in &ids {
        f.append(merkle::leaf_hash(&id.0), |n| nodes.push(n));
    }
    let header = Header {
        height: parent.height + 1,
        parent_hash: parent.hash(),
        timestamp_ms: parent.timestamp_ms + 1,
        tx_root: auditchain_primitives::block::tx_root(&ids),
        tx_count: ids.len() as u32,
        history_root: f.root(),
        history_size: f.size(),
        consensus: ConsensusFields::RoundRobin { round: 0 },
        ..parent.clone()
    };
    let block = Block {
        header,
        seal: Signature([1; 64]),
        txs,
    };
    // contract state: one key updated, one created and one deleted per block
    let h = block.header.height;
    let mut state = std::collections::BTreeMap::new();
    state.insert(b"counter".to_vec(), Some(h.to_be_bytes().to_vec()));
    state.insert(format!("blk/{h}").into_bytes(), Some(vec![1]));
    state.insert(format!("blk/{}", h - 1).into_bytes(), None);
    state.extend(extra.clone());
    store
        .commit_block(BlockCommit {
            block: &block,
            hash: block.hash(),
            tx_ids: &ids,
            history_nodes: &nodes,
            certificate: None,
            parent_certificate: None,
            state_writes: &state,
            contract_events: events,
            set_change_witness: None,
        })
        .unwrap();
    assert_eq!(
        store.state_get(b"counter").unwrap(),
        Some(h.to_be_bytes().to_vec())
    );
    assert_eq!(store.state_scan(b"blk/", b"blk0", 10).unwrap().len(), 1);
    assert_eq!(
        store.contract_events(h).unwrap(),
        Some(events.to_vec()).filter(|e| !e.is_empty())
    );
    block
}

fn exercise<K: Kv>(store: &Store<K>) {
    let g = genesis(1);
    let chain = g.hash();
    store.init(&g, "{}", &Default::default()).unwrap();
    store.init(&g, "{}", &Default::default()).unwrap(); // idempotent for the same chain
    assert!(matches!(
        store.init(&genesis(2), "{}", &Default::default()),
        Err(StorageError::WrongChain { .. })
    ));
    assert_eq!(store.chain_id().unwrap(), Some(chain));

    let (a, b) = (
        SecretKey::from_seed(&[1; 32]),
        SecretKey::from_seed(&[2; 32]),
    );
    let mut f = Frontier::new();
    let b1 = commit(
        store,
        &mut f,
        &g.header,
        vec![
            tx(chain, &a, 0, "host1", "login"),
            tx(chain, &b, 0, "host2", "login"),
            tx(chain, &a, 1, "host1", "logout"),
        ],
    );
    let b2 = commit(
        store,
        &mut f,
        &b1.header,
        vec![tx(chain, &b, 1, "host1", "login")],
    );
    // not the next height: refused, nothing written
    let stale = Block {
        header: b1.header.clone(),
        ..b1.clone()
    };
    assert!(matches!(
        store.commit_block(BlockCommit {
            block: &stale,
            hash: stale.hash(),
            tx_ids: &[],
            history_nodes: &[],
            certificate: None,
            parent_certificate: None,
            state_writes: &EMPTY,
            contract_events: &[],
            set_change_witness: None,
        }),
        Err(StorageError::NotNext { height: 1, head: 2 })
    ));

    assert_eq!(store.head_height().unwrap(), Some(2));
    assert_eq!(store.block(1).unwrap().unwrap(), b1);
    assert_eq!(store.block(2).unwrap().unwrap(), b2);
    // the unparsed form served to syncing peers holds the same block
    let wire = store.block_wire(2, None).unwrap().unwrap();
    let cb = CertifiedBlock {
        block: b2.clone(),
        certificate: None,
    };
    assert_eq!(wire, WireCertifiedBlock::from(cb));
    assert_eq!(store.block_wire(3, None).unwrap(), None);
    assert_eq!(store.height_of(&b2.hash()).unwrap(), Some(2));
    assert_eq!(store.tx_seq(&b2.txs[0].id()).unwrap(), Some(3));
    let st = store.tx_at(2).unwrap().unwrap();
    assert_eq!((st.height, st.index), (1, 2));
    assert_eq!(store.next_nonce(&a.public_key()).unwrap(), 2);
    assert_eq!(store.next_nonce(&b.public_key()).unwrap(), 2);
    assert_eq!(store.next_nonce(&PublicKey([7; 32])).unwrap(), 0);
    let e = IndexKey::Entity("host1".into());
    assert_eq!(store.scan(&e, 0, u64::MAX, 10).unwrap(), vec![0, 2, 3]);
    assert_eq!(store.scan(&e, 1, 3, 10).unwrap(), vec![2]);
    assert_eq!(store.scan(&e, 0, u64::MAX, 2).unwrap(), vec![0, 2]);
    assert_eq!(
        store
            .scan(&IndexKey::Signer(b.public_key()), 0, 9, 9)
            .unwrap(),
        vec![1, 3]
    );
    assert_eq!(
        store
            .scan(&IndexKey::EventType("login".into()), 0, 9, 9)
            .unwrap(),
        vec![0, 1, 3]
    );
    let counts = store.event_type_counts().unwrap();
    assert_eq!(counts.get("login"), Some(&3));
    assert_eq!(counts.get("logout"), Some(&1));
    // history nodes let proofs be built from the store
    struct Src<'a, K: Kv>(&'a Store<K>);
    impl<K: Kv> merkle::TreeSource for Src<'_, K> {
        fn perfect(&self, l: u32, i: u64) -> Result<Hash, merkle::MerkleError> {
            self.0
                .history_node(l, i)
                .ok()
                .flatten()
                .ok_or(merkle::MerkleError::Source("missing".into()))
        }
    }
    assert_eq!(
        merkle::range_root(&Src(store), 0, 4).unwrap(),
        b2.header.history_root
    );
    assert_eq!(
        merkle::range_root(&Src(store), 0, 3).unwrap(),
        b1.header.history_root
    );

    // grow past the stored levels (>= 16 leaves) across several blocks
    let mut parent = b2.header.clone();
    let mut nonce_a = 2;
    for _ in 0..3 {
        let txs = (0..12)
            .map(|i| {
                nonce_a += 1;
                tx(
                    chain,
                    &a,
                    nonce_a - 1,
                    if i % 3 == 0 { "host1" } else { "host3" },
                    "login",
                )
            })
            .collect();
        parent = commit(store, &mut f, &parent, txs).header;
    }
    assert_eq!(store.head_height().unwrap(), Some(5));
    assert_eq!(parent.history_size, 40);
    for size in [16, 17, 31, 32, 33, 40] {
        let leaves: Vec<Hash> = (0..size)
            .map(|s| merkle::leaf_hash(&store.tx_at(s).unwrap().unwrap().tx.id().0))
            .collect();
        assert_eq!(
            merkle::range_root(&Src(store), 0, size).unwrap(),
            merkle::root(&leaves),
            "size {size}"
        );
    }
    assert_eq!(
        merkle::range_root(&Src(store), 0, 40).unwrap(),
        parent.history_root
    );
    let all_host1 = store.scan(&e, 0, u64::MAX, 100).unwrap();
    assert_eq!(
        all_host1,
        vec![0, 2, 3, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37]
    );
    // pages across posting lists never skip or repeat
    let mut paged = Vec::new();
    let mut from = 0;
    loop {
        let page = store.scan(&e, from, u64::MAX, 4).unwrap();
        let Some(&last) = page.last() else { break };
        paged.extend(page);
        from = last + 1;
    }
    assert_eq!(paged, all_host1);
    assert_eq!(
        store.scan(&e, 5, 29, 100).unwrap(),
        vec![7, 10, 13, 16, 19, 22, 25, 28]
    );
}

#[test]
fn memory_store() {
    exercise(&Store::new(MemKv::default()));
}

#[test]
fn sled_store_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::new(SledKv::open(dir.path()).unwrap());
        exercise(&s);
    }
    let s = Store::new(SledKv::open(dir.path()).unwrap());
    assert_eq!(s.head_height().unwrap(), Some(5));
    assert_eq!(s.block(1).unwrap().unwrap().txs.len(), 3);
    assert!(matches!(
        s.init(&genesis(9), "{}", &Default::default()),
        Err(StorageError::WrongChain { .. })
    ));
}

#[test]
fn a_flipped_byte_in_a_stored_tx_position_is_reported_with_its_height() {
    let s = Store::new(MemKv::default());
    exercise(&s);
    // seq 1 is the second entry of block 1's record
    let (first, loc) = s.tx_record(1).unwrap().unwrap();
    assert_eq!(first, 0);
    let v = s.kv().log_read(loc.offset, loc.len as usize).unwrap();
    let n = auditchain_storage::block_record::count(&v).unwrap();
    assert_eq!(n, loc.txs as usize);
    let end0 = u32::from_be_bytes(v[4..8].try_into().unwrap()) as usize;
    // inside the height field of entry 1
    s.kv()
        .flip_log_byte(loc.offset + (4 + 4 * n + end0 + 3) as u64, 0x01)
        .unwrap();
    let e = s.block(1).unwrap_err().to_string();
    assert!(e.contains("height 1"), "{e}");
    let e = s.block_wire(1, None).unwrap_err().to_string();
    assert!(e.contains("height 1"), "{e}");
}

/// Every key and value of a store, and its log, for byte-for-byte comparisons.
fn dump<K: Kv>(store: &Store<K>) -> (auditchain_storage::kv::Rows, Vec<u8>) {
    let kv = store.kv();
    let log = kv.log_read(0, kv.log_len().unwrap() as usize).unwrap();
    (kv.scan(&[], &[0xff; 8], usize::MAX).unwrap(), log)
}

fn reverting_the_head_restores_every_byte<K: Kv>(store: &Store<K>) {
    let g = genesis(1);
    let chain = g.hash();
    store.init(&g, "{}", &Default::default()).unwrap();
    assert!(store.revert_head().is_err(), "genesis cannot be reverted");
    let (a, b) = (
        SecretKey::from_seed(&[1; 32]),
        SecretKey::from_seed(&[2; 32]),
    );
    let mut f = Frontier::new();
    let mut parent = g.header.clone();
    // 7 transactions before the fork point: the next block completes a stored history node
    for n in 0..7 {
        parent = commit(
            store,
            &mut f,
            &parent,
            vec![tx(chain, &a, n, "host1", "login")],
        )
        .header;
    }
    let before = dump(store);
    let fork = f.clone();
    let b8 = commit(
        store,
        &mut f,
        &parent,
        vec![
            tx(chain, &a, 7, "host1", "logout"), // updates a nonce, a posting list, a counter
            tx(chain, &b, 0, "host9", "new_type"), // creates them
        ],
    );
    assert_ne!(dump(store), before);
    assert_eq!(store.revert_head().unwrap(), b8);
    assert_eq!(
        dump(store),
        before,
        "revert left the store byte for byte as before"
    );
    assert_eq!(store.head_height().unwrap(), Some(7));
    assert_eq!(store.next_nonce(&a.public_key()).unwrap(), 7);
    assert_eq!(store.next_nonce(&b.public_key()).unwrap(), 0);
    assert_eq!(store.tx_seq(&b8.txs[1].id()).unwrap(), None);
    // the other branch commits on top of the restored state
    let mut f2 = fork;
    let other = commit(
        store,
        &mut f2,
        &parent,
        vec![tx(chain, &b, 0, "host2", "x")],
    );
    assert_eq!(store.head_height().unwrap(), Some(8));
    assert_eq!(store.block(8).unwrap().unwrap(), other);
}

#[test]
fn revert_head_in_memory() {
    reverting_the_head_restores_every_byte(&Store::new(MemKv::default()));
}

#[test]
fn revert_head_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    reverting_the_head_restores_every_byte(&Store::new(SledKv::open(dir.path()).unwrap()));
}

#[test]
fn certificates_and_equivocations_are_stored() {
    use auditchain_primitives::vote::{CommitCertificate, Equivocation, Vote, VoteBody, VoteKind};
    let (store, g) = mem_store();
    let key = SecretKey::from_seed(&[7; 32]);
    let mut f = Frontier::new();
    let b1 = commit(&store, &mut f, &g.header, vec![]);
    assert_eq!(store.certificate(1).unwrap(), None);
    // a block committed with its certificate
    let header = Header {
        height: 2,
        parent_hash: b1.hash(),
        timestamp_ms: b1.header.timestamp_ms + 1,
        ..b1.header.clone()
    };
    let b2 = Block {
        header,
        seal: Signature([1; 64]),
        txs: vec![],
    };
    let vote = |block: Hash| {
        Vote::sign(
            &g.hash(),
            VoteBody {
                kind: VoteKind::Precommit,
                height: 2,
                round: 0,
                block: Some(block),
                validator: key.public_key(),
            },
            &key,
        )
    };
    let cert = CommitCertificate {
        height: 2,
        round: 0,
        block: b2.hash(),
        signatures: vec![(key.public_key(), vote(b2.hash()).signature)],
    };
    store
        .commit_block(BlockCommit {
            block: &b2,
            hash: b2.hash(),
            tx_ids: &[],
            history_nodes: &[],
            certificate: Some(&cert),
            parent_certificate: None,
            state_writes: &EMPTY,
            contract_events: &[],
            set_change_witness: None,
        })
        .unwrap();
    assert_eq!(store.certificate(2).unwrap(), Some(cert.clone()));
    // the next block brings the parent's canonical certificate; reverting it restores ours
    let canonical = CommitCertificate {
        round: 1,
        ..cert.clone()
    };
    let b3 = Block {
        header: Header {
            height: 3,
            parent_hash: b2.hash(),
            timestamp_ms: b2.header.timestamp_ms + 1,
            ..b2.header.clone()
        },
        seal: Signature([1; 64]),
        txs: vec![],
    };
    store
        .commit_block(BlockCommit {
            block: &b3,
            hash: b3.hash(),
            tx_ids: &[],
            history_nodes: &[],
            certificate: None,
            parent_certificate: Some(&canonical),
            state_writes: &EMPTY,
            contract_events: &[],
            set_change_witness: None,
        })
        .unwrap();
    assert_eq!(store.certificate(2).unwrap(), Some(canonical));
    store.revert_head().unwrap();
    assert_eq!(
        store.certificate(2).unwrap(),
        Some(cert),
        "revert restores the parent's"
    );
    store.revert_head().unwrap();
    assert_eq!(
        store.certificate(2).unwrap(),
        None,
        "revert removes the certificate"
    );

    let ev = Equivocation {
        first: vote(Hash([1; 32])),
        second: vote(Hash([2; 32])),
    };
    assert!(ev.verify(&g.hash()).is_ok());
    assert_eq!(store.record_equivocation(&ev).unwrap(), 0);
    assert_eq!(store.record_equivocation(&ev).unwrap(), 0, "stored once");
    let ev2 = Equivocation {
        second: vote(Hash([3; 32])),
        ..ev
    };
    assert_eq!(store.record_equivocation(&ev2).unwrap(), 1);
    assert_eq!(store.equivocations(0, 10).unwrap(), vec![(0, ev), (1, ev2)]);
    assert_eq!(store.equivocations(1, 10).unwrap(), vec![(1, ev2)]);
}

/// Run headers (`O` keys) present: `(run, level)`.
fn id_runs<K: Kv>(store: &Store<K>) -> Vec<(u64, u8)> {
    store
        .kv()
        .scan(b"O", b"P", usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (u64::from_be_bytes(k[1..].try_into().unwrap()), v[8]))
        .collect()
}

/// The tx-id index through compactions, merges and reverts: every committed transaction is
/// found at its sequence number, a reverted one is not (also after its entry went into a run),
/// and one included again after a revert is found at its new position, also after the stale
/// and the new entry are merged into one run.
fn tx_id_index<K: Kv>(kv: K) {
    let tuning = auditchain_storage::id_index::Tuning {
        compact_entries: 6,
        compact_blocks: 4,
        fanout: 3,
        max_merge_level: 1,
    };
    let store = Store::with_id_tuning(kv, tuning);
    let g = genesis(1);
    let chain = g.hash();
    store.init(&g, "{}", &Default::default()).unwrap();
    let keys: Vec<SecretKey> = (1..=3).map(|i| SecretKey::from_seed(&[i; 32])).collect();
    let mut f = Frontier::new();
    let mut parent = g.header.clone();
    let mut committed: Vec<(Hash, u64)> = Vec::new();
    let check = |store: &Store<K>, committed: &[(Hash, u64)]| {
        for (id, seq) in committed {
            assert_eq!(store.tx_seq(id).unwrap(), Some(*seq), "{id}");
        }
    };
    let grow = |store: &Store<K>,
                f: &mut Frontier,
                parent: &mut Header,
                committed: &mut Vec<(Hash, u64)>,
                blocks: u64| {
        for b in 0..blocks {
            let n = (b % 3) as usize; // 0, 1 or 2 transactions
            let txs: Vec<Transaction> = (0..n)
                .map(|k| {
                    let nonce = store.next_nonce(&keys[k].public_key()).unwrap();
                    tx(chain, &keys[k], nonce, "h", "t")
                })
                .collect();
            let first = f.size();
            let block = commit(store, f, parent, txs);
            for (i, t) in block.txs.iter().enumerate() {
                committed.push((t.id(), first + i as u64));
            }
            *parent = block.header;
        }
    };
    grow(&store, &mut f, &mut parent, &mut committed, 40);
    check(&store, &committed);
    let runs = id_runs(&store);
    assert!(runs.iter().any(|(_, l)| *l == 1), "merged runs: {runs:?}");
    assert!(runs.len() < 8, "runs of a full level were merged: {runs:?}");
    let (from, to) = auditchain_storage::keys::ID_BLOCKS;
    let level0 = store.kv().scan(from, to, usize::MAX).unwrap();
    assert!(level0.len() < 4, "level 0 was compacted");
    assert_eq!(
        store
            .tx_seq(&tx(chain, &keys[2], 0, "h", "t").id())
            .unwrap(),
        None,
        "never committed"
    );

    // revert 5 blocks: some of their entries are in runs by now
    let before = f.size();
    let mut reverted = Vec::new();
    for _ in 0..5 {
        let b = store.revert_head().unwrap();
        reverted.extend(b.txs);
    }
    parent = store.header(parent.height - 5).unwrap().unwrap().header;
    f = Frontier::from_source(&store as &dyn ChainStore, parent.history_size).unwrap();
    committed.retain(|(_, seq)| *seq < f.size());
    assert!(f.size() < before && !reverted.is_empty());
    for t in &reverted {
        assert_eq!(store.tx_seq(&t.id()).unwrap(), None, "reverted");
    }
    check(&store, &committed);
    // the first reverted transaction comes back one position later, after a new one
    let again = reverted.last().unwrap().clone();
    let signer = keys
        .iter()
        .position(|k| k.public_key() == *again.signer())
        .unwrap();
    let other = (signer + 1) % 3;
    let fresh = tx(
        chain,
        &keys[other],
        store.next_nonce(&keys[other].public_key()).unwrap(),
        "h",
        "t",
    );
    let first = f.size();
    let block = commit(&store, &mut f, &parent, vec![fresh, again.clone()]);
    committed.push((block.txs[0].id(), first));
    committed.push((again.id(), first + 1));
    parent = block.header;
    check(&store, &committed);
    // enough blocks to merge the stale and the new entry of `again` into one run
    grow(&store, &mut f, &mut parent, &mut committed, 60);
    check(&store, &committed);
    assert_eq!(store.tx_seq(&again.id()).unwrap(), Some(first + 1));
}

#[test]
fn tx_id_index_in_memory() {
    tx_id_index(MemKv::default());
}

#[test]
fn tx_id_index_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    tx_id_index(SledKv::open(dir.path()).unwrap());
}

/// A crash between a block's log append and its key-value batch leaves bytes at the log's end
/// that no key points to: the next start cuts them, and the chain reads as before. A log that
/// lost bytes a key points to is refused with an error that says so.
#[test]
fn uncommitted_log_bytes_are_cut_at_start_and_lost_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = genesis(1);
    let log_path = dir.path().join(SledKv::LOG_FILE);
    let (committed_len, blocks) = {
        let store = Store::new(SledKv::open(dir.path()).unwrap());
        store.init(&g, "{}", &Default::default()).unwrap();
        let k = SecretKey::from_seed(&[6; 32]);
        let mut f = Frontier::new();
        let b1 = commit(
            &store,
            &mut f,
            &g.header,
            vec![tx(g.hash(), &k, 0, "e", "t")],
        );
        let b2 = commit(
            &store,
            &mut f,
            &b1.header,
            vec![tx(g.hash(), &k, 1, "e", "t")],
        );
        // what a crash after the append of block 3 looks like
        store.kv().log_append(&[0xab; 700]).unwrap();
        store.kv().log_sync().unwrap();
        (store.kv().log_len().unwrap() - 700, vec![b1, b2])
    };
    assert_eq!(
        std::fs::metadata(&log_path).unwrap().len(),
        committed_len + 700
    );
    {
        let store = Store::new(SledKv::open(dir.path()).unwrap());
        store.init(&g, "{}", &Default::default()).unwrap();
        assert_eq!(store.kv().log_len().unwrap(), committed_len);
        assert_eq!(std::fs::metadata(&log_path).unwrap().len(), committed_len);
        for b in &blocks {
            assert_eq!(&store.block(b.header.height).unwrap().unwrap(), b);
        }
    }
    // the log loses its last byte: block 2's record is cut short
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(&log_path)
        .unwrap();
    log.set_len(committed_len - 1).unwrap();
    drop(log);
    let store = Store::new(SledKv::open(dir.path()).unwrap());
    let err = store.init(&g, "{}", &Default::default()).unwrap_err();
    assert!(
        matches!(err, StorageError::Corrupt { .. }) && err.to_string().contains("missing"),
        "{err}"
    );
    let err = store.block(2).unwrap_err().to_string();
    assert!(err.contains("height 2") || err.contains("seq 1"), "{err}");
}

/// A record location that is not 16 bytes is reported with the record's sequence number, by
/// a block read and at start-up.
#[test]
fn a_malformed_record_location_is_reported() {
    let s = Store::new(MemKv::default());
    exercise(&s);
    let records = s.kv().scan(b"X", b"Y", usize::MAX).unwrap();
    assert_eq!(records[0].0, auditchain_storage::keys::tx(0));
    s.kv()
        .apply(vec![(records[0].0.clone(), Some(vec![0; 5]))])
        .unwrap();
    let e = s.block(1).unwrap_err().to_string();
    assert!(
        e.contains("seq 0") && e.contains("expected 16 bytes, found 5"),
        "{e}"
    );
    let last = records.last().unwrap().0.clone();
    s.kv().apply(vec![(last, Some(vec![1; 13]))]).unwrap();
    let e = s.init(&genesis(1), "{}", &Default::default()).unwrap_err();
    assert!(e.to_string().contains("found 13"), "{e}");
}

#[test]
fn a_data_dir_of_another_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = genesis(1);
    {
        let store = Store::new(SledKv::open(dir.path()).unwrap());
        store.init(&g, "{}", &Default::default()).unwrap();
        // what a data dir of layout 1 looks like: no layout key
        store
            .kv()
            .apply(vec![(auditchain_storage::keys::META_LAYOUT.to_vec(), None)])
            .unwrap();
        store.flush().unwrap();
    }
    let store = Store::new(SledKv::open(dir.path()).unwrap());
    let err = store.init(&g, "{}", &Default::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Layout {
                found: 1,
                expected: auditchain_storage::keys::LAYOUT
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("empty data dir"), "{err}");
}

/// A data dir of layout 3, which sled created with its default 512 KiB segments, is refused
/// with the layout explanation, not with sled's complaint about a changed segment size.
#[test]
fn a_layout_3_data_dir_with_sleds_default_segments_is_refused_by_layout() {
    let dir = tempfile::tempdir().unwrap();
    let g = genesis(1);
    {
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        db.insert(auditchain_storage::keys::META_CHAIN_ID, &g.hash().0[..])
            .unwrap();
        db.insert(
            auditchain_storage::keys::META_LAYOUT,
            &3u64.to_be_bytes()[..],
        )
        .unwrap();
        db.flush().unwrap();
    }
    let store = Store::new(SledKv::open(dir.path()).unwrap());
    let err = store.init(&g, "{}", &Default::default()).unwrap_err();
    assert!(
        matches!(err, StorageError::Layout { found: 3, .. }),
        "{err}"
    );
}

/// A block is one record: every transaction, block and history node, stored or recomputed,
/// reads back, also when a run starts inside a record or crosses into the next one, and a
/// revert removes the record with its nodes.
#[test]
fn a_block_is_one_record_with_its_transactions_and_history_nodes() {
    let (store, g) = mem_store();
    let chain = g.hash();
    let k = SecretKey::from_seed(&[4; 32]);
    let mut f = Frontier::new();
    let small = commit(&store, &mut f, &g.header, vec![tx(chain, &k, 0, "e", "t")]);
    let before = dump(&store);
    let txs: Vec<Transaction> = (1..=40).map(|n| tx(chain, &k, n, "e", "t")).collect();
    let big = commit(&store, &mut f, &small.header, txs.clone());
    let records = store.kv().scan(b"X", b"Y", usize::MAX).unwrap();
    let starts: Vec<u64> = records
        .iter()
        .map(|(k, _)| u64::from_be_bytes(k[1..].try_into().unwrap()))
        .collect();
    assert_eq!(starts, vec![0, 1], "one record per block");
    assert!(
        store.kv().scan(b"R", b"S", usize::MAX).unwrap().is_empty(),
        "no history node keys"
    );
    assert_eq!(store.block(2).unwrap().unwrap(), big);
    // what a receipt reads: the header and the ids
    let (sh, ids) = store.block_tx_ids(2).unwrap().unwrap();
    assert_eq!((sh.header, sh.seal), (big.header.clone(), big.seal));
    assert_eq!(ids, txs.iter().map(Transaction::id).collect::<Vec<_>>());
    assert_eq!(store.block_tx_ids(3).unwrap(), None);
    for (i, t) in txs.iter().enumerate() {
        let st = store.tx_at(1 + i as u64).unwrap().unwrap();
        assert_eq!((st.height, st.index as usize, &st.tx), (2, i, t));
        assert_eq!(store.tx_record(1 + i as u64).unwrap().unwrap().0, 1);
    }
    assert!(store.tx_at(41).unwrap().is_none());
    assert!(store.tx_record(41).unwrap().is_none());
    let leaves: Vec<Hash> = std::iter::once(&small.txs[0])
        .chain(&txs)
        .map(|t| merkle::leaf_hash(&t.id().0))
        .collect();
    for level in 0..7u32 {
        for index in 0..=(41u64 >> level) {
            let first = (index << level) as usize;
            let want = leaves.get(first..first + (1 << level)).map(merkle::root);
            assert_eq!(
                store.history_node(level, index).unwrap(),
                want,
                "{level}/{index}"
            );
        }
    }
    store.revert_head().unwrap();
    assert_eq!(dump(&store), before);
    assert_eq!(store.history_node(4, 0).unwrap(), None);
}

#[test]
fn a_stored_tx_is_written_with_the_codec_bytes() {
    let key = SecretKey::from_seed(&[9; 32]);
    for (i, entity) in ["LabSZ", "h", "é \"quoted\" \u{1F600}"].iter().enumerate() {
        let t = tx(Hash([3; 32]), &key, i as u64 * 1000, entity, "ty");
        let (height, index) = (u64::MAX - i as u64, i as u32 * 70_000);
        let mut direct = vec![0xee];
        auditchain_storage::StoredTx::encode_into(height, index, &t, &mut direct);
        let stored = auditchain_storage::StoredTx {
            height,
            index,
            tx: t.clone(),
        };
        let codec = auditchain_primitives::codec::encode(&stored).unwrap();
        assert_eq!(direct[0], 0xee, "appends after what the buffer held");
        assert_eq!(&direct[1..], &codec[..]);
        let back: auditchain_storage::StoredTx =
            auditchain_primitives::codec::decode(&direct[1..]).unwrap();
        assert_eq!(back, stored);
    }
}

/// A full block (20,000 transactions, the default `max_block_txs`) of one signer, entity and
/// event type writes no value over [`keys::MAX_VALUE_BYTES`], so sled keeps every value in its
/// fsynced log and makes no blob file (which it never fsyncs); the split tx-id entries and
/// posting lists still find every transaction, in order.
///
/// [`keys::MAX_VALUE_BYTES`]: auditchain_storage::keys::MAX_VALUE_BYTES
#[test]
fn a_full_block_writes_only_values_sled_keeps_in_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(SledKv::open(dir.path()).unwrap());
    let g = genesis(1);
    let chain = g.hash();
    store.init(&g, "{}", &Default::default()).unwrap();
    let k = SecretKey::from_seed(&[5; 32]);
    let txs: Vec<Transaction> = (0..20_000).map(|n| tx(chain, &k, n, "e", "t")).collect();
    let block = commit(&store, &mut Frontier::new(), &g.header, txs.clone());
    let rows = store.kv().scan(&[], &[0xff; 9], usize::MAX).unwrap();
    let largest = rows.iter().map(|(_, v)| v.len()).max().unwrap();
    assert!(
        largest <= auditchain_storage::keys::MAX_VALUE_BYTES,
        "{largest} bytes"
    );
    let parts = |p: &[u8]| rows.iter().filter(|(k, _)| k[0] == p[0]).count();
    assert_eq!(
        parts(b"J"),
        20_000usize.div_ceil(1_638),
        "tx-id entry parts"
    );
    assert_eq!(parts(b"S"), 3, "signer posting lists of ≤ 8,192");
    let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert_eq!(blobs, 0, "sled blob files");
    for i in [0usize, 1_637, 1_638, 9_999, 19_999] {
        assert_eq!(store.tx_seq(&txs[i].id()).unwrap(), Some(i as u64), "{i}");
    }
    let by_signer = IndexKey::Signer(k.public_key());
    let all = store.scan(&by_signer, 0, u64::MAX, usize::MAX).unwrap();
    assert_eq!(all, (0..20_000).collect::<Vec<u64>>());
    let from = store.scan(&by_signer, 8_190, u64::MAX, 5).unwrap();
    assert_eq!(
        from,
        vec![8_190, 8_191, 8_192, 8_193, 8_194],
        "across two lists"
    );
    assert_eq!(store.block(1).unwrap().unwrap(), block);
}

/// A record location of the right size whose length does not cover the record's table,
/// entries and history nodes is reported as corruption naming the record, by a block read and
/// a history-node read, instead of reading another block's bytes.
#[test]
fn a_record_location_shorter_than_its_contents_is_reported() {
    let (store, g) = mem_store();
    let chain = g.hash();
    let k = SecretKey::from_seed(&[6; 32]);
    let txs: Vec<Transaction> = (0..20).map(|n| tx(chain, &k, n, "e", "t")).collect();
    commit(&store, &mut Frontier::new(), &g.header, txs);
    assert!(store.history_node(4, 0).unwrap().is_some());
    let (first, loc) = store.tx_record(0).unwrap().unwrap();
    let short = auditchain_storage::block_record::Location { len: 10, ..loc };
    store
        .kv()
        .apply(vec![(
            auditchain_storage::keys::tx(first),
            Some(short.encode()),
        )])
        .unwrap();
    let e = store.block(1).unwrap_err().to_string();
    assert!(e.contains("seq 0") && e.contains("past its end"), "{e}");
    let e = store.history_node(4, 0).unwrap_err().to_string();
    assert!(e.contains("seq 0") && e.contains("too short"), "{e}");
}

/// Rows of the part keys of `key` ([`auditchain_storage::keys::part`]).
fn part_rows<K: Kv>(store: &Store<K>, key: &[u8]) -> auditchain_storage::kv::Rows {
    let end = auditchain_storage::keys::parts_end(key);
    store.kv().scan(key, &end, usize::MAX).unwrap()
}

/// A genesis document, a block's contract events and its undo record, each far over
/// [`keys::MAX_VALUE_BYTES`], are stored in parts: no value over the bound and no sled blob
/// file (which sled never fsyncs); each reads back whole, and a revert removes every part and
/// leaves the store byte for byte as before.
///
/// [`keys::MAX_VALUE_BYTES`]: auditchain_storage::keys::MAX_VALUE_BYTES
#[test]
fn large_genesis_documents_contract_events_and_undo_records_are_stored_in_parts() {
    use auditchain_storage::keys;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(SledKv::open(dir.path()).unwrap());
    let g = genesis(1);
    let chain = g.hash();
    let doc = format!("{{\"accounts\": \"{}\"}}", "a".repeat(300_000));
    store.init(&g, &doc, &Default::default()).unwrap();
    assert_eq!(store.genesis_json().unwrap(), Some(doc.clone()));
    assert_eq!(part_rows(&store, keys::META_GENESIS).len(), 5);
    let k = SecretKey::from_seed(&[5; 32]);
    let mut f = Frontier::new();
    // block 1 sets 3,000 keys of 100 bytes; block 2 overwrites them, so its undo record
    // holds their 300 KB of previous values
    let set = |fill: u8| -> std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        (0..3_000u32)
            .map(|i| (format!("big/{i:05}").into_bytes(), Some(vec![fill; 100])))
            .collect()
    };
    let b1 = commit_with(
        &store,
        &mut f,
        &g.header,
        vec![tx(chain, &k, 0, "e", "t")],
        &set(1),
        b"[]",
    );
    let before = dump(&store);
    let events: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let b2 = commit_with(
        &store,
        &mut f,
        &b1.header,
        vec![tx(chain, &k, 1, "e", "t")],
        &set(2),
        &events,
    );
    let rows = store.kv().scan(&[], &[0xff; 9], usize::MAX).unwrap();
    let largest = rows.iter().map(|(_, v)| v.len()).max().unwrap();
    assert!(largest <= keys::MAX_VALUE_BYTES, "{largest} bytes");
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
        0,
        "sled blob files"
    );
    assert_eq!(
        part_rows(&store, &keys::contract_events(2)).len(),
        3_000_000usize.div_ceil(keys::MAX_VALUE_BYTES)
    );
    assert!(part_rows(&store, &keys::undo(2)).len() >= 5, "undo parts");
    assert_eq!(store.contract_events(2).unwrap(), Some(events));
    assert_eq!(store.state_get(b"big/00007").unwrap(), Some(vec![2; 100]));
    assert_eq!(store.revert_head().unwrap(), b2);
    assert_eq!(dump(&store), before, "revert removed every part");
    assert_eq!(store.state_get(b"big/00007").unwrap(), Some(vec![1; 100]));
    assert_eq!(store.genesis_json().unwrap(), Some(doc));
}

/// A missing part of a value stored in parts is reported as corruption naming the value and
/// the part, and a revert that needs it changes nothing.
#[test]
fn a_missing_part_is_reported_and_a_revert_needing_it_changes_nothing() {
    use auditchain_storage::keys;
    let (store, g) = mem_store();
    let chain = g.hash();
    let k = SecretKey::from_seed(&[5; 32]);
    let events = vec![7u8; 3 * keys::MAX_VALUE_BYTES + 1];
    commit_with(
        &store,
        &mut Frontier::new(),
        &g.header,
        vec![tx(chain, &k, 0, "e", "t")],
        &EMPTY,
        &events,
    );
    assert_eq!(part_rows(&store, &keys::contract_events(1)).len(), 4);
    store
        .kv()
        .apply(vec![(keys::part(&keys::contract_events(1), 1), None)])
        .unwrap();
    let e = store.contract_events(1).unwrap_err().to_string();
    assert!(
        e.contains("contract events of block 1: part 1 missing"),
        "{e}"
    );
    let before = dump(&store);
    let e = store.revert_head().unwrap_err().to_string();
    assert!(e.contains("part 1 missing"), "{e}");
    assert_eq!(dump(&store), before, "the failed revert changed nothing");
}

/// A layout-4 data dir (which stored whole every value layout 5 splits) opens: its layout
/// number is rewritten to 5 and everything reads back.
#[test]
fn a_layout_4_data_dir_opens_as_layout_5() {
    use auditchain_storage::keys;
    let dir = tempfile::tempdir().unwrap();
    let g = genesis(1);
    let chain = g.hash();
    let k = SecretKey::from_seed(&[5; 32]);
    let block = {
        let store = Store::new(SledKv::open(dir.path()).unwrap());
        store.init(&g, "{\"doc\": 1}", &Default::default()).unwrap();
        let b = commit(
            &store,
            &mut Frontier::new(),
            &g.header,
            vec![tx(chain, &k, 0, "e", "t")],
        );
        store
            .kv()
            .apply(vec![(
                keys::META_LAYOUT.to_vec(),
                Some(4u64.to_be_bytes().to_vec()),
            )])
            .unwrap();
        store.flush().unwrap();
        b
    };
    let store = Store::new(SledKv::open(dir.path()).unwrap());
    store.init(&g, "{\"doc\": 1}", &Default::default()).unwrap();
    assert_eq!(
        store.kv().get(keys::META_LAYOUT).unwrap(),
        Some(keys::LAYOUT.to_be_bytes().to_vec())
    );
    assert_eq!(keys::LAYOUT, 5);
    assert_eq!(store.block(1).unwrap(), Some(block.clone()));
    assert_eq!(store.contract_events(1).unwrap(), Some(b"[]".to_vec()));
    assert_eq!(
        store.genesis_json().unwrap(),
        Some("{\"doc\": 1}".to_string())
    );
    assert_eq!(store.revert_head().unwrap(), block);
}
