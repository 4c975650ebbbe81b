"""Against a live node process: submit, submit_and_wait, get, trail, proof with offline
verification (and a forged receipt failing), hash-only create/verify_record, the async bridge
never raising, and /metrics parsed by prometheus_client's OpenMetrics parser."""
import asyncio
import copy

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from auditchain import AsyncClient, Client, Key, ReceiptError, RpcError, raw, sign_record, tx_id, verify_receipt


@pytest.fixture(scope="module")
def client(node):
    c = Client(node["url"], key=Key.load(node["writer_key"]))
    yield c
    c.close()


def test_record_get_trail_and_receipt(client, node):
    ids = [client.record("ssh_auth_failure", "py-host", {"ip": "5.36.59.76", "n": i}) for i in range(5)]
    receipt = client.record("ssh_accepted", "py-host", {"user": "deploy"}, wait=True)
    assert client.get(receipt["tx_id"])["status"] == "committed"
    events = list(client.trail(entity="py-host", page=2))
    assert [e["tx"]["id"] for e in events][:5] == ids
    assert len(events) == 6
    r = client.proof(ids[0])
    validators = node["genesis"]["consensus"]["round_robin"]["validators"]
    verify_receipt(r, client.chain_id(), validators)
    for forge in (lambda x: x.update(history_index=x["history_index"] + 1),
                  lambda x: x["header"].update(timestamp_ms=x["header"]["timestamp_ms"] + 1),
                  lambda x: x.update(tx_id="00" * 32)):
        bad = copy.deepcopy(r)
        forge(bad)
        with pytest.raises(ReceiptError):
            verify_receipt(bad, client.chain_id(), validators)
    with pytest.raises(ReceiptError):
        verify_receipt(r, client.chain_id(), [Key.generate().public_key])


def test_submit_and_wait_and_errors(client):
    pk = client.key.public_key
    tx = sign_record(client.key, client.chain_id(), client.next_nonce(pk), "login", "web1", {"u": 1})
    rcpt = client.submit_and_wait(tx, 10_000)
    assert rcpt["header"]["height"] >= 1
    with pytest.raises(RpcError) as e:
        client.submit(tx)  # the same transaction again
    assert e.value.code == 1008
    stranger = sign_record(Key.generate(), client.chain_id(), 0, "login", "web1", {"u": 1})
    with pytest.raises(RpcError) as e:
        client.submit(stranger)
    assert e.value.code == 1007
    # the raw form (base64 of body || signature) is the same transaction
    tx = sign_record(client.key, client.chain_id(), client.next_nonce(pk), "login", "web1", {"u": "\"2\""})
    rcpt = client.submit_and_wait(raw(tx), 10_000)
    assert rcpt["tx_id"] == tx_id(client.chain_id(), tx["body"])
    assert client.get(rcpt["tx_id"])["tx"]["tx"] == tx
    with pytest.raises(RpcError) as e:
        client.submit(raw(tx)[:-1])
    assert e.value.code == -32602 and "raw transaction" in e.value.message


def test_hash_only_records(client):
    record = {"patient": "12345", "action": "chart_viewed", "by": "dr-who"}
    rid = client.create_record("phi_access", record)
    view = client.get(rid)
    assert "data" not in view["tx"]["body"]["payload"], "hash-only keeps data off chain"
    assert client.verify_record(rid, record)
    assert not client.verify_record(rid, {**record, "by": "mallory"})


def test_async_bridge_never_raises(node):
    async def run():
        ok = AsyncClient(node["url"], Key.load(node["writer_key"]), timeout=5)
        first = await ok.record("critical_threat", "bridge", {"score": 0.97})
        await ok.aclose()
        down = AsyncClient("http://127.0.0.1:9", Key.generate(), timeout=0.5)
        nothing = await down.record("critical_threat", "bridge", {"score": 1})
        err = down.last_error
        strict = AsyncClient("http://127.0.0.1:9", Key.generate(), timeout=0.5, raise_errors=True)
        with pytest.raises(httpx.HTTPError):
            await strict.record("x", "y", {})
        await down.aclose()
        await strict.aclose()
        return first, nothing, err
    first, nothing, err = asyncio.run(run())
    assert isinstance(first, str) and len(first) == 64
    assert nothing is None and err is not None


def test_ops_endpoints_parse(node, client):
    assert httpx.get(node["url"] + "/health").status_code == 200
    ready = httpx.get(node["url"] + "/ready")
    assert ready.status_code == 200 and ready.json()["ready"]
    text = httpx.get(node["url"] + "/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["auditchain_head_height"].samples[0].value >= 1
    assert fams["auditchain_events_committed"].samples[0].value >= 1
    lat = fams["auditchain_rpc_request_duration_seconds"]
    methods = {s.labels.get("method") for s in lat.samples}
    assert "audit_submit" in methods
