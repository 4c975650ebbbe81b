"""Offline receipt verification (docs/blocks.md §Receipt), trusting only the chain id and the
genesis validator set: the signed transaction and its id, the RFC 6962 inclusion of the tx id in
the block (`tx_root`) and in the whole history (`history_root`), the proposer's seal, and a
commit certificate of at least floor(2n/3)+1 distinct validators (precommits, ed25519), with the
validator set followed from genesis through the receipt's validator-set changes. Signature
checks use PyNaCl (libsodium), which is stricter than the chain's ZIP-215 rule: a receipt it
accepts is valid on chain; honest nodes never produce one it rejects."""
import hashlib
import json
import struct

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .merkle import ProofError, leaf_hash, verify_inclusion
from .tx import preimage


class ReceiptError(ValueError):
    """A receipt that does not verify; the message says which check failed."""


def _b(h: str) -> bytes:
    b = bytes.fromhex(h)
    if len(b) != 32:
        raise ReceiptError(f"{h!r} is not a 32-byte hex value")
    return b


def encode_header(h: dict) -> bytes:
    """The canonical header bytes (bincode 2, big-endian fixed-width; docs/blocks.md)."""
    out = struct.pack(">IQ", h["version"], h["height"]) + _b(h["parent_hash"])
    out += struct.pack(">Q", h["timestamp_ms"]) + _b(h["proposer"]) + _b(h["tx_root"])
    out += struct.pack(">I", h["tx_count"]) + _b(h["history_root"])
    out += struct.pack(">Q", h["history_size"]) + _b(h["state_root"])
    if h["version"] >= 2:
        out += _b(h["last_commit_hash"])
    c = h["consensus"]
    if c == "genesis" or "genesis" in c:
        out += struct.pack(">I", 0)
    elif "round_robin" in c:
        out += struct.pack(">II", 1, c["round_robin"]["round"])
    elif "pow" in c:
        out += struct.pack(">IQQ", 2, c["pow"]["difficulty"], c["pow"]["nonce"])
    else:
        raise ReceiptError(f"unknown consensus fields {c!r}")
    return out


def header_hash(h: dict) -> bytes:
    """The block hash: SHA-256 of the canonical header bytes."""
    return hashlib.sha256(encode_header(h)).digest()


def _verify(key_hex: str, msg: bytes, sig_hex: str) -> bool:
    try:
        VerifyKey(bytes.fromhex(key_hex)).verify(msg, bytes.fromhex(sig_hex))
        return True
    except (BadSignatureError, ValueError):
        return False


def vote_preimage(chain_id: str, height: int, round_: int, block: bytes, validator: str) -> bytes:
    """A precommit's signed bytes: "auditchain:vote:v1" || 0x00 || chain_id || encode(VoteBody)."""
    body = struct.pack(">IQI", 1, height, round_) + b"\x01" + block + _b(validator)
    return b"auditchain:vote:v1\x00" + _b(chain_id) + body


def _check_certificate(c, chain_id: str, h: dict, block: bytes, validators) -> None:
    """A commit certificate for header `h` (hash `block`) with precommits of a quorum of
    `validators`."""
    rr = h["consensus"].get("round_robin") if isinstance(h["consensus"], dict) else None
    if rr is None:
        raise ReceiptError("only round-robin (BFT) blocks carry a certificate")
    if not c:
        raise ReceiptError("no commit certificate: the block is not proven final")
    if c["height"] != h["height"] or _b(c["block"]) != block or c["round"] < rr["round"]:
        raise ReceiptError("the certificate is for another block")
    signers = set()
    for v, sig in c["signatures"]:
        if v in validators and v not in signers and _verify(
                v, vote_preimage(chain_id, c["height"], c["round"], block, v), sig):
            signers.add(v)
    need = 2 * len(validators) // 3 + 1
    if len(signers) < need:
        raise ReceiptError(f"{len(signers)} valid validator signatures, {need} needed")


def follow_validator_set(r: dict, chain_id: str, validators) -> list:
    """The validator set in force at receipt `r`'s height: the genesis set `validators`,
    changed by each entry of r["validator_set_changes"] in order (docs/blocks.md, step 0).
    Each entry must be certified by the set before it, and its witness must recompute its
    header's state_root and show the new set written at "state/vset/at/" || u64 BE height."""
    current = list(validators)
    last = 0
    for ch in r.get("validator_set_changes", []):
        h = ch["header"]
        start = h["height"] + 1
        if start <= last or start > r["header"]["height"]:
            raise ReceiptError(f"validator set change at height {start} out of order")
        _check_certificate(ch["certificate"], chain_id, h, header_hash(h), current)
        w = ch["witness"]
        pre = b"\x02" + _b(w["prev_state_root"])
        written = {}
        for e in w["writes"]:
            k = bytes.fromhex(e["key"])
            pre += struct.pack(">I", len(k)) + k + _b(e["value_hash"])
            written[k] = _b(e["value_hash"])
        if hashlib.sha256(pre).digest() != _b(h["state_root"]):
            raise ReceiptError(f"change at {start}: the writes do not give the header's state root")
        key = b"state/vset/at/" + struct.pack(">Q", start)
        if written.get(key) != hashlib.sha256(w["validators_json"].encode()).digest():
            raise ReceiptError(f"change at {start}: the set is not the value written")
        current = json.loads(w["validators_json"])
        if not current:
            raise ReceiptError(f"change at {start}: an empty set")
        last = start
    return current


def verify_receipt(r: dict, chain_id: str, validators) -> None:
    """Raises ReceiptError unless receipt `r` proves its transaction final on chain `chain_id`
    whose genesis validator set (proposer order) is `validators` (hex keys); validator-set
    changes the receipt carries are followed (follow_validator_set)."""
    validators = follow_validator_set(r, chain_id, validators)
    h = r["header"]
    if r["chain_id"] != chain_id:
        raise ReceiptError("receipt is for another chain")
    body = json.loads(r["tx"]["body"])
    if body["chain_id"] != chain_id:
        raise ReceiptError("transaction body is for another chain")
    pre = preimage(chain_id, r["tx"]["body"])
    if hashlib.sha256(pre).hexdigest() != r["tx_id"]:
        raise ReceiptError("tx_id is not SHA-256 of the signing preimage")
    if not _verify(body["signer"], pre, r["tx"]["signature"]):
        raise ReceiptError("transaction signature does not verify")
    leaf = leaf_hash(_b(r["tx_id"]))
    try:
        verify_inclusion(leaf, r["tx_index"], h["tx_count"], [_b(p) for p in r["tx_proof"]], _b(h["tx_root"]))
    except ProofError as e:
        raise ReceiptError(f"tx_proof: {e}") from None
    try:
        verify_inclusion(leaf, r["history_index"], h["history_size"],
                         [_b(p) for p in r["history_proof"]], _b(h["history_root"]))
    except ProofError as e:
        raise ReceiptError(f"history_proof: {e}") from None
    block = header_hash(h)
    if not _verify(h["proposer"], b"auditchain:seal:v1\x00" + block, r["seal"]):
        raise ReceiptError("seal does not verify")
    rr = h["consensus"].get("round_robin") if isinstance(h["consensus"], dict) else None
    if rr is None:
        raise ReceiptError("only round-robin (BFT) receipts carry a certificate")
    if h["proposer"] != validators[(h["height"] + rr["round"]) % len(validators)]:
        raise ReceiptError("the proposer is not the one scheduled for this height and round")
    _check_certificate(r.get("certificate"), chain_id, h, block, validators)
