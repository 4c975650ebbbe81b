//! Key layout of the single ordered keyspace. Integers are big-endian so that byte order is
//! numeric order; each table has a one-byte prefix:
//!
//! | prefix | key                                   | value                      |
//! |--------|---------------------------------------|----------------------------|
//! | `M`    | name                                  | metadata (chain id, head)  |
//! | `M`    | `genesis` ‖ part                      | the genesis document       |
//! | `H`    | height u64                            | [`crate::SealedHeader`]    |
//! | `B`    | block hash                            | height u64                 |
//! | `X`    | first seq u64 of a block              | its record's location in the log |
//! | `J`    | height u64 ‖ part u32                 | tx-id entries of the block |
//! | `O`    | run u64                               | tx-id run header           |
//! | `L`    | run u64 ‖ last tx id of the page      | tx-id run page             |
//! | `E`    | u16 len ‖ entity ‖ last seq u64       | posting list               |
//! | `S`    | signer ‖ last seq u64                 | posting list               |
//! | `T`    | u8 len ‖ event type ‖ last seq u64    | posting list               |
//! | `V`    | evidence sha256 ‖ last seq u64        | posting list               |
//! | `N`    | signer                                | next nonce u64             |
//! | `C`    | event type                            | count u64                  |
//! | `U`    | height u64 ‖ part                     | undo record of the block   |
//! | `Q`    | height u64                            | commit certificate         |
//! | `Z`    | sequence u64                          | equivocation evidence      |
//! | `K`    | contract state key                    | contract state value       |
//! | `Y`    | height u64 ‖ part                     | the block's contract events|
//! | `W`    | height u64                            | validator-set change witness |
//!
//! A posting list holds, for one block and one index key, the ascending sequence numbers of
//! the matching transactions (u64 each), at most [`POSTING_MAX`] of them (a block with more
//! writes several lists); it is keyed by its last sequence number, so a forward scan from
//! `seq` starts at the first list that can contain it. One entry per block and key
//! keeps sled writes per transaction low (the dominant ingest cost). Values that grow without
//! a fixed bound (the genesis document, a block's contract events and undo record) are stored
//! in parts of at most [`MAX_VALUE_BYTES`] ([`part`]; "‖ part" in the table). A block's
//! transactions and the history nodes it completes are one record in the log
//! ([`crate::block_record`]), found through its `X` key. The tx-id index (`J`, `O`, `L`) is a
//! small log-structured merge tree: see [`crate::id_index`].
//!
//! [`LAYOUT`] numbers this layout; a data dir written with another is refused at start-up,
//! except one of layout [`UPGRADES_IN_PLACE`].

use auditchain_primitives::{Hash, PublicKey};

use crate::IndexKey;

/// Largest value stored under a key whose value grows with the block or the genesis (tx-id
/// entries, posting lists, contract events, undo records, the genesis document), bytes:
/// larger ones are split, so that a sled tree leaf of up to 17 such values stays below the
/// size from which sled writes it to a blob file it never fsyncs (see
/// [`crate::SledKv::SEGMENT_BYTES`]).
pub const MAX_VALUE_BYTES: usize = 64 << 10;

/// Most sequence numbers in one posting list ([`MAX_VALUE_BYTES`] / 8).
pub const POSTING_MAX: usize = MAX_VALUE_BYTES / 8;

/// Metadata key: the chain id.
pub const META_CHAIN_ID: &[u8] = b"Mchain_id";
/// Metadata key: the genesis document.
pub const META_GENESIS: &[u8] = b"Mgenesis";
/// This key layout's version, stored under [`META_LAYOUT`]. 1: one `X` key per transaction
/// and one `I` key per transaction id; 2: transactions in chunks of 16 per key and tx-id runs
/// ([`crate::id_index`]); 3: the chunks move to the append-only log ([`crate::Kv`]), `X` keys
/// hold their locations; 4: one record per block in the log holds its transactions and its
/// history nodes ([`crate::block_record`]), one `X` key per block holds the record's
/// [`crate::block_record::Location`], the `R` keys (one per history node) are gone, tx-id
/// entries and posting lists are split at [`MAX_VALUE_BYTES`], and sled's segments are
/// [`crate::SledKv::SEGMENT_BYTES`]; 5: the genesis document and each block's contract events
/// and undo record are stored in parts ([`part`]). A layout-4 data dir is opened as layout 5
/// ([`UPGRADES_IN_PLACE`]).
pub const LAYOUT: u64 = 5;
/// The older layout this build opens by rewriting only its layout number: layout 4 stored
/// whole every value that layout 5 splits, and a value of one part is stored under the same
/// key as a whole one.
pub const UPGRADES_IN_PLACE: u64 = 4;
/// Metadata key: the layout version (absent in layout-1 data dirs).
pub const META_LAYOUT: &[u8] = b"Mlayout";
/// Metadata key: the head height.
pub const META_HEAD: &[u8] = b"Mhead";
/// Metadata key of this validator's own votes at the height in progress (its vote log).
pub const META_OWN_VOTES: &[u8] = b"Mown_votes";

fn with(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// `H` key of a height.
pub fn header(height: u64) -> Vec<u8> {
    with(b'H', &[&height.to_be_bytes()])
}

/// `B` key of a block hash.
pub fn block_hash(hash: &Hash) -> Vec<u8> {
    with(b'B', &[&hash.0])
}

/// `X` key of a sequence number (a block's record is stored under the key of its first one).
pub fn tx(seq: u64) -> Vec<u8> {
    with(b'X', &[&seq.to_be_bytes()])
}

/// `J` key: part `part` of the tx-id entries of the block at `height` (level 0 of the id
/// index; see [`MAX_VALUE_BYTES`] for why a block's entries come in parts).
pub fn id_block(height: u64, part: u32) -> Vec<u8> {
    with(b'J', &[&height.to_be_bytes(), &part.to_be_bytes()])
}

/// Bounds of every [`id_block`] key (start inclusive, end exclusive): the whole of level 0 of
/// the id index, in height then part order.
pub const ID_BLOCKS: (&[u8], &[u8]) = (b"J", b"K");

/// `O` key: the header of tx-id run `run`.
pub fn id_run(run: u64) -> Vec<u8> {
    with(b'O', &[&run.to_be_bytes()])
}

/// First possible `L` key of run `run`.
pub fn id_run_start(run: u64) -> Vec<u8> {
    with(b'L', &[&run.to_be_bytes()])
}

/// End (exclusive) of run `run`'s `L` keys.
pub fn id_run_end(run: u64) -> Vec<u8> {
    with(b'L', &[&run.to_be_bytes(), &[0xff; 33]])
}

/// `L` key: the page of tx-id run `run` whose last id is `last`.
pub fn id_page(run: u64, last: &Hash) -> Vec<u8> {
    with(b'L', &[&run.to_be_bytes(), &last.0])
}

/// Key of part `part` of a value stored in parts of at most [`MAX_VALUE_BYTES`] under `key`:
/// part 0 is `key` itself, part n ≥ 1 is `key ‖ n` (u32). No other key starts with a key
/// stored this way (`U` and `Y` keys are of fixed length, and no other metadata name starts
/// with `genesis`), so the parts are exactly the keys from `key` to [`parts_end`].
pub fn part(key: &[u8], part: u32) -> Vec<u8> {
    let mut k = key.to_vec();
    if part > 0 {
        k.extend_from_slice(&part.to_be_bytes());
    }
    k
}

/// End (exclusive) of the [`part`] keys of `key`.
pub fn parts_end(key: &[u8]) -> Vec<u8> {
    [key, &[0xff; 5]].concat()
}

/// `N` key of a signer.
pub fn nonce(signer: &PublicKey) -> Vec<u8> {
    with(b'N', &[&signer.0])
}

/// `Q` key of the commit certificate of the block at `height`.
pub fn certificate(height: u64) -> Vec<u8> {
    with(b'Q', &[&height.to_be_bytes()])
}

/// `Z` key of the `n`-th stored equivocation evidence.
pub fn equivocation(n: u64) -> Vec<u8> {
    with(b'Z', &[&n.to_be_bytes()])
}

/// `K` key of a contract state key.
pub fn state(key: &[u8]) -> Vec<u8> {
    with(b'K', &[key])
}

/// `Y` key of a block's contract events.
pub fn contract_events(height: u64) -> Vec<u8> {
    with(b'Y', &[&height.to_be_bytes()])
}

/// `W` key of the witness of a block that wrote the next height's validator set.
pub fn set_change_witness(height: u64) -> Vec<u8> {
    with(b'W', &[&height.to_be_bytes()])
}

/// `U` key of a block's undo record.
pub fn undo(height: u64) -> Vec<u8> {
    with(b'U', &[&height.to_be_bytes()])
}

/// `C` key of an event type counter.
pub fn type_count(event_type: &str) -> Vec<u8> {
    with(b'C', &[event_type.as_bytes()])
}

/// An index named by borrowed parts: an [`IndexKey`] without owning its strings (block
/// commits name three per transaction).
#[derive(Debug, Clone, Copy)]
pub enum IndexRef<'a> {
    /// As [`IndexKey::Entity`].
    Entity(&'a str),
    /// As [`IndexKey::Signer`].
    Signer(&'a PublicKey),
    /// As [`IndexKey::EventType`].
    EventType(&'a str),
    /// As [`IndexKey::Evidence`].
    Evidence(&'a Hash),
}

impl IndexKey {
    /// The same index, borrowed.
    pub fn as_ref(&self) -> IndexRef<'_> {
        match self {
            IndexKey::Entity(e) => IndexRef::Entity(e),
            IndexKey::Signer(s) => IndexRef::Signer(s),
            IndexKey::EventType(t) => IndexRef::EventType(t),
            IndexKey::Evidence(h) => IndexRef::Evidence(h),
        }
    }
}

/// The prefix of an index (everything before the seq).
pub fn index_prefix(index: &IndexKey) -> Vec<u8> {
    let mut k = Vec::new();
    index_prefix_into(index.as_ref(), &mut k);
    k
}

/// Appends the [`index_prefix`] bytes of `index` to `out`: `E` ‖ length (`u16`) ‖ entity,
/// `S` ‖ signer, `T` ‖ length (`u8`) ‖ event type, or `V` ‖ file hash.
pub fn index_prefix_into(index: IndexRef<'_>, out: &mut Vec<u8>) {
    match index {
        IndexRef::Entity(e) => {
            let len = u16::try_from(e.len()).unwrap_or(u16::MAX);
            out.push(b'E');
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(e.as_bytes());
        }
        IndexRef::Signer(s) => {
            out.push(b'S');
            out.extend_from_slice(&s.0);
        }
        IndexRef::EventType(t) => {
            let len = u8::try_from(t.len()).unwrap_or(u8::MAX);
            out.push(b'T');
            out.push(len);
            out.extend_from_slice(t.as_bytes());
        }
        IndexRef::Evidence(h) => {
            out.push(b'V');
            out.extend_from_slice(&h.0);
        }
    }
}

/// A posting-list key: the index prefix and the list's last (or a bound) sequence number.
pub fn index_entry(index: &IndexKey, seq: u64) -> Vec<u8> {
    let mut k = index_prefix(index);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_prefixes_are_the_layout_bytes() {
        let e = index_prefix(&IndexKey::Entity("ab".into()));
        assert_eq!(e, b"E\x00\x02ab");
        let t = index_prefix(&IndexKey::EventType("ssh".into()));
        assert_eq!(t, b"T\x03ssh");
        let s = index_prefix(&IndexKey::Signer(PublicKey([7; 32])));
        assert_eq!(s, [&b"S"[..], &[7; 32]].concat());
        let v = index_prefix(&IndexKey::Evidence(Hash([9; 32])));
        assert_eq!(v, [&b"V"[..], &[9; 32]].concat());
        let mut both = b"x".to_vec();
        index_prefix_into(IndexRef::Entity("ab"), &mut both);
        index_prefix_into(IndexRef::EventType("ssh"), &mut both);
        assert_eq!(both, [&b"x"[..], &e, &t].concat(), "appends");
        assert_eq!(
            index_entry(&IndexKey::EventType("ssh".into()), 258),
            [&t[..], &258u64.to_be_bytes()].concat()
        );
    }
}
