"""Offline parts against published vectors: the signing vectors of docs/signing.md and every
RFC 6962 vector in ../shared/vectors/rfc6962 (transparency-dev)."""
import base64
import hashlib
import json

from auditchain import Key, canonical_json, data_hash, preimage, tx_id
from auditchain.merkle import ProofError, root, verify_consistency, verify_inclusion
from conftest import ROOT, SHARED

import pytest


def test_signing_vectors():
    vectors = json.loads((ROOT / "docs" / "signing-vectors.json").read_text())["vectors"]
    assert len(vectors) >= 3
    for v in vectors:
        body = json.loads(v["body"])
        assert canonical_json(body) == v["body"]
        if "data" in body["payload"]:
            assert data_hash(body["payload"]["data"]) == body["payload"]["data_hash"]
        pre = preimage(v["chain_id"], v["body"])
        assert pre.hex() == v["preimage_hex"]
        k = Key(bytes.fromhex(v["secret_key"]))
        assert k.public_key == v["public_key"]
        assert k.sign(pre).hex() == v["signature"]
        assert tx_id(v["chain_id"], v["body"]) == v["tx_id"]


def _b64(x):
    return base64.b64decode(x) if x else b""


def _files(kind):
    files = sorted((SHARED / "vectors" / "rfc6962" / kind).rglob("*.json"))
    assert files, f"no {kind} vectors"
    return files


@pytest.mark.parametrize("kind", ["inclusion", "consistency"])
def test_rfc6962_vectors(kind):
    for f in _files(kind):
        v = json.loads(f.read_text())
        proof = [_b64(p) for p in (v.get("proof") or [])]
        try:
            if kind == "inclusion":
                verify_inclusion(_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b64(v["root"]))
            else:
                verify_consistency(v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
            ok = True
        except ProofError:
            ok = False
        assert ok != v["wantErr"], f"{f}: {v['desc']}"


def test_tree_roots():
    t = json.loads((SHARED / "vectors" / "rfc6962" / "tree_roots.json").read_text())
    leaves = [bytes.fromhex(x) for x in t["leaf_inputs_hex"]]
    for size, want in enumerate(t["root_by_tree_size_hex"]):
        assert root(leaves[:size]).hex() == want, size
    assert hashlib.sha256(b"").hexdigest() == t["root_by_tree_size_hex"][0]
