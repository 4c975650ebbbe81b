"""Transactions as docs/signing.md specifies them: the unsigned body as RFC 8785 (JCS) canonical
JSON, the preimage "auditchain:tx:v1" || 0x00 || chain_id (32 bytes) || body, tx id = SHA-256 of
the preimage, data_hash = SHA-256 of the canonical data."""
import base64
import hashlib
import json
import math
import time

DOMAIN = b"auditchain:tx:v1\x00"


def canonical_json(v) -> str:
    """RFC 8785 canonical JSON (standard library only)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("NaN/Infinity not allowed")
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        r = repr(v)  # shortest round-trip digits, like ECMAScript
        if "e" in r:
            m, e = r.split("e")
            e = int(e)
            if -7 < e < 21:
                return format(v, "f").rstrip("0").rstrip(".")
            return f"{m}e{'+' if e > 0 else '-'}{abs(e)}"
        return r
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(canonical_json(x) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical_json(x) for k, x in items) + "}"
    raise TypeError(f"not JSON: {type(v)}")


def data_hash(data) -> str:
    """SHA-256 (hex) of the canonical JSON of `data`."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def preimage(chain_id: str, body_text: str) -> bytes:
    """The signed bytes: "auditchain:tx:v1" || 0x00 || chain id (32 bytes, from hex) || body."""
    return DOMAIN + bytes.fromhex(chain_id) + body_text.encode()


def tx_id(chain_id: str, body_text: str) -> str:
    """The transaction id: SHA-256 of the preimage, hex (independent of the signature)."""
    return hashlib.sha256(preimage(chain_id, body_text)).hexdigest()


def sign_record(key, chain_id: str, nonce: int, event_type: str, entity_id: str,
                data=None, data_hash_hex: str = None, timestamp_ms: int = None) -> dict:
    """A signed `record_event` in wire form {"body": canonical text, "signature": hex}.
    Give `data` (kept on chain) or only `data_hash_hex` (hash-only)."""
    if data is None and data_hash_hex is None:
        raise ValueError("give data or data_hash_hex")
    payload = {"type": "record_event", "event_type": event_type, "entity_id": entity_id,
               "data_hash": data_hash(data) if data is not None else data_hash_hex}
    if data is not None:
        payload["data"] = data
    body = {"chain_id": chain_id, "signer": key.public_key, "nonce": nonce,
            "timestamp_ms": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "payload": payload}
    text = canonical_json(body)
    return {"body": text, "signature": key.sign(preimage(chain_id, text)).hex()}


def raw(tx: dict) -> str:
    """The raw form of a wire transaction (docs/rpc.md): base64 of the body's UTF-8 bytes followed
    by the 64 signature bytes. Accepted wherever the RPC takes a transaction; it spares the node
    the JSON escapes of the body, which matters for bulk submission."""
    return base64.b64encode(tx["body"].encode() + bytes.fromhex(tx["signature"])).decode()
