"""RFC 6962 / RFC 9162 §2.1 Merkle trees over SHA-256: leaf = H(0x00 || data), node =
H(0x01 || left || right), empty tree = H(""). Inclusion (§2.1.3.2) and consistency (§2.1.4.2)
proof verification, independent of the node's Rust code."""
import hashlib


class ProofError(ValueError):
    """A proof that does not verify."""


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the 32-byte hash of a leaf (a tx id on auditchain)."""
    return _h(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node."""
    return _h(b"\x01" + left + right)


def root(leaves) -> bytes:
    """The 32-byte root over leaf inputs (bytes each); SHA-256("") for none."""
    leaves = list(leaves)
    if not leaves:
        return _h(b"")
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def _check(*hashes):
    for x in hashes:
        if len(x) != 32:
            raise ProofError("a hash is not 32 bytes")


def verify_inclusion(leaf: bytes, index: int, size: int, proof, expected_root: bytes) -> None:
    """Raises ProofError unless `proof` proves leaf hash `leaf` at `index` in a tree of `size`
    with root `expected_root`."""
    _check(leaf, expected_root, *proof)
    if index >= size:
        raise ProofError("index beyond the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof too short")
    if r != expected_root:
        raise ProofError("root mismatch")


def verify_consistency(size1: int, size2: int, proof, root1: bytes, root2: bytes) -> None:
    """Raises ProofError unless `proof` shows the tree of `size2` with `root2` extends the tree
    of `size1` with `root1`."""
    if size2 < size1:
        raise ProofError("size2 < size1")
    if size1 == 0:
        raise ProofError("no consistency proof from the empty tree")
    if size1 == size2:
        if proof:
            raise ProofError("non-empty proof for equal sizes")
        if root1 != root2:
            raise ProofError("roots differ")
        return
    if not proof:
        raise ProofError("empty proof")
    _check(root1, root2, *proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: root1 is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof too short")
    if fr != root1 or sr != root2:
        raise ProofError("root mismatch")
