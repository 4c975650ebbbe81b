"""Shared fixtures: paths to the repository's vectors and a live node (`auditchain dev`, the
binary from AUDITCHAIN_BIN or target/debug) on a free loopback port, stopped after the tests."""
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import time

import httpx
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]  # repository root
SHARED = ROOT.parent / "shared"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def node():
    binary = os.environ.get("AUDITCHAIN_BIN", str(ROOT / "target" / "debug" / "auditchain"))
    if not os.path.exists(binary):
        pytest.fail(f"no auditchain binary at {binary} (build it, or set AUDITCHAIN_BIN)")
    tmp = tempfile.TemporaryDirectory()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([binary, "dev", "--dir", tmp.name, "--rpc-addr", f"127.0.0.1:{port}",
                             "--block-time-ms", "50"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "RUST_LOG": "warn"})
    try:
        deadline = time.time() + 30
        while True:
            try:
                httpx.get(url + "/health", timeout=1).raise_for_status()
                break
            except Exception:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("auditchain dev did not start")
                time.sleep(0.1)
        with open(os.path.join(tmp.name, "genesis.json")) as f:
            genesis = json.load(f)
        yield {"url": url, "writer_key": os.path.join(tmp.name, "writer.key"), "genesis": genesis}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        tmp.cleanup()
