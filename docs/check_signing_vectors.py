#!/usr/bin/env python3
"""Reproduces docs/signing-vectors.json with PyNaCl and the standard library only
(run from the repository root: python3 docs/check_signing_vectors.py)."""
import json, hashlib, math
from nacl.signing import SigningKey

def jcs(v):
    """RFC 8785 canonical JSON using only the standard library."""
    if v is None: return "null"
    if v is True: return "true"
    if v is False: return "false"
    if isinstance(v, int): return str(v)
    if isinstance(v, float):
        if not math.isfinite(v): raise ValueError("NaN/Infinity not allowed")
        if v.is_integer() and abs(v) < 1e21: return str(int(v))
        r = repr(v)                       # shortest round-trip digits, like ECMAScript
        if "e" in r:
            m, e = r.split("e"); e = int(e)
            if -7 < e < 21:               # ECMAScript uses plain notation in this range
                return format(v, "f").rstrip("0").rstrip(".")
            return f"{m}e{'+' if e > 0 else '-'}{abs(e)}"
        return r
    if isinstance(v, str): return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list): return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(x) for k, x in items) + "}"
    raise TypeError(type(v))

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
