#!/usr/bin/env python3
"""Reproduces docs/signing-vectors.json with PyNaCl and the standard library only
(run from the repository root: python3 docs/check_signing_vectors.py)."""
import hashlib, importlib.util, json, os
from nacl.signing import SigningKey

# RFC 8785 canonical JSON: the Python client's standard-library implementation (its tx module
# alone, which needs nothing beyond the standard library)
_spec = importlib.util.spec_from_file_location(
    "auditchain_tx", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python", "auditchain", "tx.py"))
_tx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tx)
jcs = _tx.canonical_json

vec = json.load(open("docs/signing-vectors.json"))["vectors"]
for i, t in enumerate(vec):
    body = json.loads(t["body"])
    assert jcs(body) == t["body"], (i, jcs(body), t["body"])
    p = body["payload"]
    if "data" in p:
        assert hashlib.sha256(jcs(p["data"]).encode()).hexdigest() == p["data_hash"], i
    pre = b"auditchain:tx:v1\x00" + bytes.fromhex(t["chain_id"]) + t["body"].encode()
    assert pre.hex() == t["preimage_hex"], i
    sk = SigningKey(bytes.fromhex(t["secret_key"]))
    assert sk.verify_key.encode().hex() == t["public_key"], i
    assert sk.sign(pre).signature.hex() == t["signature"], i
    assert hashlib.sha256(pre).hexdigest() == t["tx_id"], i
print(f"{len(vec)} vectors reproduced with PyNaCl + stdlib JCS")
