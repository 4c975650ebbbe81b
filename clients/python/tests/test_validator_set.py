"""Following validator-set changes in a receipt (docs/blocks.md, step 0), on a synthetic chain
built here with PyNaCl: a change certified by the genesis set is followed; a forged set, a
changed write, a certificate short of quorum and an out-of-order change are refused."""
import copy
import hashlib
import json
import struct

import pytest
from nacl.signing import SigningKey

from auditchain.receipt import ReceiptError, follow_validator_set, header_hash, vote_preimage

CHAIN = "ab" * 32


def _key(i):
    sk = SigningKey(bytes([i + 1]) * 32)
    return sk, sk.verify_key.encode().hex()


def _header(height, state_root, proposer):
    z = "00" * 32
    return {"version": 2, "height": height, "parent_hash": z, "timestamp_ms": 1_700_000_000_000 + height,
            "proposer": proposer, "tx_root": z, "tx_count": 0, "history_root": z, "history_size": 0,
            "state_root": state_root, "last_commit_hash": z, "consensus": {"round_robin": {"round": 0}}}


def _change(height, signers, new_set):
    """Block `height` writes the set for `height + 1`, certified by `signers`."""
    value = json.dumps(new_set, separators=(",", ":"))
    writes = sorted([
        (b"events", hashlib.sha256(b"[]").digest()),
        (b"state/vset/at/" + struct.pack(">Q", height + 1), hashlib.sha256(value.encode()).digest()),
    ])
    prev = hashlib.sha256(b"parent").digest()
    pre = b"\x02" + prev + b"".join(struct.pack(">I", len(k)) + k + h for k, h in writes)
    header = _header(height, hashlib.sha256(pre).hexdigest(), signers[0][1])
    block = header_hash(header)
    sigs = [[pk, sk.sign(vote_preimage(CHAIN, height, 0, block, pk)).signature.hex()]
            for sk, pk in signers]
    return {"header": header,
            "certificate": {"height": height, "round": 0, "block": block.hex(), "signatures": sigs},
            "witness": {"prev_state_root": prev.hex(),
                        "writes": [{"key": k.hex(), "value_hash": h.hex()} for k, h in writes],
                        "validators_json": value}}


def _receipt():
    genesis = [_key(i) for i in range(4)]
    newcomers = [_key(i) for i in range(4, 7)]
    r = {"header": {"height": 20}, "validator_set_changes": [
        _change(9, genesis[:3], [pk for _, pk in newcomers]),
    ]}
    return r, [pk for _, pk in genesis], [pk for _, pk in newcomers]


def test_a_certified_change_is_followed():
    r, genesis, newcomers = _receipt()
    assert follow_validator_set(r, CHAIN, genesis) == newcomers
    assert follow_validator_set({"header": {"height": 5}}, CHAIN, genesis) == genesis


@pytest.mark.parametrize("forge,reason", [
    (lambda c: c["witness"].update(validators_json=json.dumps(["cd" * 32])), "not the value written"),
    (lambda c: c["witness"]["writes"][0].update(value_hash="00" * 32), "state root"),
    (lambda c: c["certificate"].update(signatures=c["certificate"]["signatures"][:2]), "needed"),
])
def test_a_forged_change_is_refused(forge, reason):
    r, genesis, _ = _receipt()
    bad = copy.deepcopy(r)
    forge(bad["validator_set_changes"][0])
    with pytest.raises(ReceiptError, match=reason):
        follow_validator_set(bad, CHAIN, genesis)


def test_changes_out_of_order_or_above_the_receipt_are_refused():
    r, genesis, _ = _receipt()
    twice = copy.deepcopy(r)
    twice["validator_set_changes"].append(twice["validator_set_changes"][0])
    with pytest.raises(ReceiptError, match="out of order"):
        follow_validator_set(twice, CHAIN, genesis)
    early = copy.deepcopy(r)
    early["header"]["height"] = 9
    with pytest.raises(ReceiptError, match="out of order"):
        follow_validator_set(early, CHAIN, genesis)


def _recorded():
    from conftest import ROOT
    return json.loads((ROOT / "docs" / "receipt-validator-change.json").read_text())


def test_a_receipt_from_a_real_cluster_verifies_from_its_genesis_set():
    """docs/receipt-validator-change.json, also checked by the Rust primitives tests."""
    from auditchain import verify_receipt
    v = _recorded()
    r = v["receipt"]
    assert len(follow_validator_set(r, v["chain_id"], v["genesis_validators"])) == 4
    verify_receipt(r, v["chain_id"], v["genesis_validators"])
    stripped = {**r, "validator_set_changes": []}
    with pytest.raises(ReceiptError, match="needed"):
        verify_receipt(stripped, v["chain_id"], v["genesis_validators"])
