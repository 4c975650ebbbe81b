//! RFC 6962 Merkle trees (as restated in RFC 9162 §2.1): roots, inclusion and consistency proofs,
//! and their verifiers.
//!
//! Hashing: leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right), empty tree =
//! SHA-256(""). A tree of `n > 1` leaves splits at `k`, the largest power of two `< n`; leaves are
//! never duplicated. Proof generation is generic over [`TreeSource`], which yields the hash of any
//! *perfect* aligned subtree (2^level leaves starting at `index · 2^level`): a slice of leaf hashes
//! computes them, the node store keeps them on disk. [`Frontier`] appends leaves incrementally
//! and reports every perfect node it completes, so a store can persist the tree as it grows.
//! Verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and pass every transparency-dev
//! test vector (../shared/vectors/rfc6962).

use crate::bytes::{Hash, sha256, sha256_parts};

/// Why a proof was rejected, or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// Leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for the sizes given.
    #[error("proof has the wrong length for these tree sizes")]
    WrongProofLength,
    /// A proof hash is not 32 bytes.
    #[error("proof element is {len} bytes, not 32")]
    MalformedHash {
        /// Its length.
        len: usize,
    },
    /// The recomputed root differs from the expected one.
    #[error("computed root does not match the expected root")]
    RootMismatch,
    /// Consistency between these sizes is undefined (first size 0 or first size > second).
    #[error("no consistency proof exists from size {size1} to size {size2}")]
    InvalidSizes {
        /// Older size.
        size1: u64,
        /// Newer size.
        size2: u64,
    },
    /// The tree source could not provide a node.
    #[error("tree source: {0}")]
    Source(String),
}

/// Hash of a leaf with input `data`: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256_parts(&[&[0x00], data])
}

/// Hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256_parts(&[&[0x01], &left.0, &right.0])
}

/// Root of the empty tree: SHA-256("").
pub fn empty_root() -> Hash {
    sha256(b"")
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// A source of perfect subtree hashes.
pub trait TreeSource {
    /// Hash of the perfect subtree of `2^level` leaves starting at leaf `index << level`.
    /// Errors: [`MerkleError::Source`] if it cannot be produced.
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, MerkleError>;
}

/// A slice of leaf hashes is a tree source that computes each subtree on demand.
impl TreeSource for [Hash] {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        let start = (index << level) as usize;
        let end = start + (1usize << level);
        let leaves = self
            .get(start..end)
            .ok_or_else(|| MerkleError::Source(format!("no leaves {start}..{end}")))?;
        Ok(root_of_slice(leaves))
    }
}

fn root_of_slice(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root_of_slice(&leaves[..k]), &root_of_slice(&leaves[k..]))
        }
    }
}

/// `MTH(D[0:n])` for the leaf hashes `leaves` (RFC 6962 §2.1).
pub fn root(leaves: &[Hash]) -> Hash {
    root_of_slice(leaves)
}

/// `MTH(D[start:end])` where `start` is a multiple of the largest power of two `>= end - start`
/// (true of every range RFC 6962 proofs visit).
pub fn range_root<S: TreeSource + ?Sized>(
    src: &S,
    start: u64,
    end: u64,
) -> Result<Hash, MerkleError> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return src.perfect(level, start >> level);
    }
    let k = split_point(n);
    Ok(node_hash(
        &range_root(src, start, start + k)?,
        &range_root(src, start + k, end)?,
    ))
}

/// `PATH(m, D[0:n])`: the inclusion proof of leaf `m` in the tree of size `n` (RFC 6962 §2.1.1),
/// leaf-to-root order. Errors: [`MerkleError::IndexOutOfRange`] if `m >= n`.
pub fn inclusion_proof<S: TreeSource + ?Sized>(
    src: &S,
    m: u64,
    n: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if m >= n {
        return Err(MerkleError::IndexOutOfRange { index: m, size: n });
    }
    let mut out = Vec::new();
    path(src, m, 0, n, &mut out)?;
    Ok(out)
}

fn path<S: TreeSource + ?Sized>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), MerkleError> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(src, m, start, start + k, out)?;
        out.push(range_root(src, start + k, end)?);
    } else {
        path(src, m - k, start + k, end, out)?;
        out.push(range_root(src, start, start + k)?);
    }
    Ok(())
}

/// `PROOF(m, D[0:n])`: the consistency proof from size `m` to size `n` (RFC 6962 §2.1.2).
/// Errors: [`MerkleError::InvalidSizes`] unless `0 < m <= n`.
pub fn consistency_proof<S: TreeSource + ?Sized>(
    src: &S,
    m: u64,
    n: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if m == 0 || m > n {
        return Err(MerkleError::InvalidSizes { size1: m, size2: n });
    }
    let mut out = Vec::new();
    subproof(src, m, 0, n, true, &mut out)?;
    Ok(out)
}

fn subproof<S: TreeSource + ?Sized>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), MerkleError> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(range_root(src, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(src, m, start, start + k, complete, out)?;
        out.push(range_root(src, start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(range_root(src, start, start + k)?);
    }
    Ok(())
}

fn to_hash(b: &[u8]) -> Result<Hash, MerkleError> {
    Hash::from_slice(b).map_err(|_| MerkleError::MalformedHash { len: b.len() })
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves with root `root`
/// (RFC 9162 §2.1.3.2). Hashes are byte slices so that malformed input is rejected here, not
/// lost in a conversion. Errors: [`MerkleError`].
pub fn verify_inclusion<P: AsRef<[u8]>>(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: &[P],
    root: &[u8],
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut r = to_hash(leaf_hash)?;
    let (mut fnode, mut snode) = (index, size - 1);
    for p in proof {
        let p = to_hash(p.as_ref())?;
        if snode == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(&p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, &p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    if r.0.as_slice() != root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves
/// with root `root1` (RFC 9162 §2.1.4.2). Consistency from the empty tree is rejected as
/// meaningless. Errors: [`MerkleError`].
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), MerkleError> {
    if size1 == 0 || size1 > size2 {
        return Err(MerkleError::InvalidSizes { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(MerkleError::WrongProofLength);
    }
    let mut hashes = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        hashes.push(to_hash(root1)?);
    }
    for p in proof {
        hashes.push(to_hash(p.as_ref())?);
    }
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (hashes[0], hashes[0]);
    for c in &hashes[1..] {
        if snode == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    if fr.0.as_slice() != root1 || sr.0.as_slice() != root2 {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// The right edge of a growing tree: one perfect subtree per set bit of the size, largest first.
/// Appending is O(log n) hashes; the root is a fold of at most 64 hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)` of each perfect subtree on the right edge, largest (leftmost) first.
    nodes: Vec<(u32, Hash)>,
}

/// A perfect node completed by [`Frontier::append`]: subtree `index` at `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewNode {
    /// Height of the subtree (0 = leaf).
    pub level: u32,
    /// Position among subtrees of that level.
    pub index: u64,
    /// Its hash.
    pub hash: Hash,
}

impl Frontier {
    /// The frontier of an empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from a source of its perfect nodes.
    /// Errors: whatever the source reports.
    pub fn from_source<S: TreeSource + ?Sized>(src: &S, size: u64) -> Result<Self, MerkleError> {
        let mut nodes = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                nodes.push((level, src.perfect(level, start >> level)?));
                start += 1u64 << level;
            }
        }
        Ok(Self { size, nodes })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; calls `on_new` for the leaf and each perfect node it completes.
    pub fn append(&mut self, leaf: Hash, mut on_new: impl FnMut(NewNode)) {
        let idx = self.size;
        on_new(NewNode {
            level: 0,
            index: idx,
            hash: leaf,
        });
        self.nodes.push((0, leaf));
        self.size += 1;
        while self.nodes.len() >= 2 {
            let n = self.nodes.len();
            let (l_level, l) = self.nodes[n - 2];
            let (r_level, r) = self.nodes[n - 1];
            if l_level != r_level {
                break;
            }
            let h = node_hash(&l, &r);
            self.nodes.truncate(n - 2);
            self.nodes.push((l_level + 1, h));
            on_new(NewNode {
                level: l_level + 1,
                index: idx >> (l_level + 1),
                hash: h,
            });
        }
    }

    /// MTH of all leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some((_, last)) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, (_, h)| node_hash(h, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn frontier_matches_root_and_stores_every_perfect_node() {
        let ls = leaves(37);
        let mut f = Frontier::new();
        let mut stored = std::collections::BTreeMap::new();
        for (i, l) in ls.iter().enumerate() {
            f.append(*l, |n| {
                stored.insert((n.level, n.index), n.hash);
            });
            assert_eq!(f.root(), root(&ls[..=i]));
        }
        for ((level, index), h) in &stored {
            assert_eq!(ls[..].perfect(*level, *index).unwrap(), *h);
        }
        struct Map(std::collections::BTreeMap<(u32, u64), Hash>);
        impl TreeSource for Map {
            fn perfect(&self, l: u32, i: u64) -> Result<Hash, MerkleError> {
                self.0
                    .get(&(l, i))
                    .copied()
                    .ok_or(MerkleError::Source("missing".into()))
            }
        }
        let m = Map(stored);
        assert_eq!(Frontier::from_source(&m, 37).unwrap(), f);
        assert_eq!(range_root(&m, 0, 37).unwrap(), root(&ls));
        assert_eq!(range_root(&m, 0, 20).unwrap(), root(&ls[..20]));
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_tampering_fails(n in 1u64..80, seed in any::<u64>()) {
            let ls = leaves(n as usize);
            let r = root(&ls);
            let m = seed % n;
            let p = inclusion_proof(&ls[..], m, n).unwrap();
            prop_assert!(verify_inclusion(&ls[m as usize].0, m, n, &p, &r.0).is_ok());
            if !p.is_empty() {
                let mut bad = p.clone();
                bad[(seed as usize) % p.len()].0[0] ^= 1;
                prop_assert!(verify_inclusion(&ls[m as usize].0, m, n, &bad, &r.0).is_err());
            }
            let size1 = m + 1;
            let c = consistency_proof(&ls[..], size1, n).unwrap();
            let r1 = root(&ls[..size1 as usize]);
            prop_assert!(verify_consistency(size1, n, &c, &r1.0, &r.0).is_ok());
            if size1 < n {
                let other = root(&leaves(size1 as usize + 1)[1..]);
                prop_assert!(verify_consistency(size1, n, &c, &other.0, &r.0).is_err());
            }
        }
    }
}
