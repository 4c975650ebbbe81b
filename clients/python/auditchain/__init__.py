"""auditchain client: keys, the signing preimage of docs/signing.md, JSON-RPC (sync and async),
offline receipt verification with its own RFC 6962 code, and hash-only records."""

from .keys import Key
from .tx import canonical_json, data_hash, sign_record, preimage, raw, tx_id
from .merkle import leaf_hash, root, verify_inclusion, verify_consistency, ProofError
from .receipt import verify_receipt, follow_validator_set, header_hash, ReceiptError
from .client import Client, AsyncClient, RpcError

__all__ = [
    "Key", "canonical_json", "data_hash", "sign_record", "preimage", "raw", "tx_id",
    "leaf_hash", "root", "verify_inclusion", "verify_consistency", "ProofError",
    "verify_receipt", "follow_validator_set", "header_hash", "ReceiptError", "Client", "AsyncClient", "RpcError",
]
