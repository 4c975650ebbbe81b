"""JSON-RPC clients (httpx): `Client` (synchronous) and `AsyncClient` whose `record()` is the
non-blocking audit bridge — it never raises into the caller unless asked, and gives up after a
timeout. Method names and shapes: docs/rpc.md."""
import itertools
import threading

import httpx

from .tx import data_hash, sign_record


class RpcError(Exception):
    """A JSON-RPC error: `code` (docs/rpc.md §Errors), `message`, optional `data`."""

    def __init__(self, code, message, data=None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.data = code, message, data


def _result(resp: httpx.Response):
    resp.raise_for_status()
    j = resp.json()
    if "error" in j:
        e = j["error"]
        raise RpcError(e["code"], e["message"], e.get("data"))
    return j["result"]


class _Nonces:
    """Local nonce counter per signer, seeded from `audit_nextNonce` once."""

    def __init__(self):
        self._next, self._lock = {}, threading.Lock()

    def take(self, signer, fetch):
        with self._lock:
            if signer not in self._next:
                self._next[signer] = fetch()
            n = self._next[signer]
            self._next[signer] = n + 1
            return n

    def reset(self, signer):
        with self._lock:
            self._next.pop(signer, None)


class Client:
    """A synchronous client for one node, e.g. Client("http://127.0.0.1:8645", key=Key.load(p))."""

    def __init__(self, url: str, key=None, timeout: float = 30.0):
        self.url, self.key = url, key
        self._http = httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)
        self._nonces = _Nonces()
        self._chain_id = None

    def close(self):
        """Closes the HTTP connection pool."""
        self._http.close()

    def call(self, method: str, *params):
        """One JSON-RPC call; returns its result. Raises RpcError or httpx.HTTPError."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        return _result(self._http.post(self.url, json=body))

    def chain_id(self) -> str:
        """The chain id (genesis hash, hex), fetched once."""
        if self._chain_id is None:
            self._chain_id = self.call("node_status")["chain_id"]
        return self._chain_id

    def status(self):
        """`node_status`."""
        return self.call("node_status")

    def genesis(self):
        """The genesis document (`chain_getGenesis`)."""
        return self.call("chain_getGenesis")

    def validators(self, height=None):
        """The public keys (hex), in proposer order, of the validator set that certifies
        blocks at `height` (default: the next block); governance can change it."""
        params = [] if height is None else [height]
        return [v["public_key"] for v in self.call("chain_getValidators", *params)]

    def next_nonce(self, signer: str) -> int:
        """The next nonce `signer` should use (`audit_nextNonce`)."""
        return self.call("audit_nextNonce", signer)

    def submit(self, tx: dict) -> str:
        """Admits a signed transaction to the mempool; returns its id."""
        return self.call("audit_submit", tx)

    def submit_and_wait(self, tx: dict, timeout_ms: int = 10_000) -> dict:
        """Submits and waits for the commit; returns the receipt."""
        return self.call("audit_submitAndWait", tx, timeout_ms)

    def _send(self, event_type, entity, data=None, data_hash_hex=None, wait=False):
        """Signs with the next local nonce and submits; if the node says the nonce is stale
        (another process used this key), re-reads it and tries once more."""
        if self.key is None:
            raise ValueError("this client has no key")
        pk = self.key.public_key
        for attempt in (0, 1):
            nonce = self._nonces.take(pk, lambda: self.next_nonce(pk))
            tx = sign_record(self.key, self.chain_id(), nonce, event_type, entity, data, data_hash_hex)
            try:
                return self.submit_and_wait(tx) if wait else self.submit(tx)
            except RpcError as e:
                if e.code not in (1004, 1005, 1006):
                    raise
                self._nonces.reset(pk)
                if attempt:
                    raise

    def record(self, event_type: str, entity: str, data=None, wait: bool = False):
        """Signs (next nonce) and submits an event; returns its id, or its receipt if `wait`."""
        return self._send(event_type, entity, data=data, wait=wait)

    def get(self, tx_id: str) -> dict:
        """Status of a transaction: pending, or committed with its position."""
        return self.call("audit_getTransaction", tx_id)

    def trail(self, page: int = 500, **filters):
        """Every event matching `filters` (entity, signer, event_type, from_ms, to_ms), in chain
        order, following the cursor."""
        q = {k: v for k, v in filters.items() if v is not None}
        q["limit"] = page
        while True:
            r = self.call("audit_getTrail", q)
            yield from r["events"]
            if not r.get("next_cursor"):
                return
            q["cursor"] = r["next_cursor"]

    def proof(self, tx_id: str) -> dict:
        """The offline-verifiable receipt of a committed transaction."""
        return self.call("audit_getProof", tx_id)

    def create_record(self, action: str, data, entity: str = "records") -> str:
        """Hash-only: records SHA-256 of the canonical `data` (the data stays with the caller),
        waits for the commit, returns the transaction id."""
        return self._send(action, entity, data_hash_hex=data_hash(data), wait=True)["tx_id"]

    def verify_record(self, tx_id: str, data) -> bool:
        """Whether `data` is exactly what record `tx_id` committed to (compared locally)."""
        view = self.get(tx_id)
        if view["status"] != "committed":
            return False
        return view["tx"]["body"]["payload"]["data_hash"] == data_hash(data)


class AsyncClient:
    """The non-blocking audit bridge: `await bridge.record(...)` returns the transaction id, or
    None if the node is unreachable, refuses the event, or `timeout` seconds pass — it never
    raises into the application unless `raise_errors=True`. The last failure is in
    `last_error`."""

    def __init__(self, url: str, key, timeout: float = 2.0, raise_errors: bool = False):
        self.url, self.key, self.timeout, self.raise_errors = url, key, timeout, raise_errors
        self._http = httpx.AsyncClient(timeout=timeout)
        self._ids = itertools.count(1)
        self._next_nonce = None
        self._chain_id = None
        self.last_error = None

    async def aclose(self):
        """Closes the HTTP connection pool."""
        await self._http.aclose()

    async def call(self, method: str, *params):
        """One JSON-RPC call; returns its result. Raises RpcError or httpx.HTTPError."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        return _result(await self._http.post(self.url, json=body))

    async def record(self, event_type: str, entity: str, data=None):
        try:
            if self._chain_id is None:
                self._chain_id = (await self.call("node_status"))["chain_id"]
            if self._next_nonce is None:
                self._next_nonce = await self.call("audit_nextNonce", self.key.public_key)
            nonce = self._next_nonce
            self._next_nonce += 1
            tx = sign_record(self.key, self._chain_id, nonce, event_type, entity, data)
            return await self.call("audit_submit", tx)
        except Exception as e:  # the bridge must not break the application
            self._next_nonce = None
            self.last_error = e
            if self.raise_errors:
                raise
            return None
