"""A process started while PostgreSQL refuses connections waits for it with backoff — one
WARNING line for the outage, one line when it answers — instead of exiting with a traceback
(issue 13): the relay as its own OS process, and the API's start-up."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fgd_api.app import build_when_store_answers, create_app
from tests.integration.test_relay import BROKER
from tests.tcpproxy import TCPProxy

ROOT = Path(__file__).resolve().parents[2]


def proxied(pg_url: str, proxy: TCPProxy) -> str:
    return pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


def wait_for(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.1)


def test_the_relay_started_before_postgresql_waits_for_it(tmp_path: Path, pg_url: str) -> None:
    if "127.0.0.1:5432" not in pg_url:
        pytest.fail("this test proxies the shared PostgreSQL on 127.0.0.1:5432")
    proxy = TCPProxy(("127.0.0.1", 5432))  # not started yet: connections are refused
    log_path = tmp_path / "relay.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "HEDGEHOG_FGD_DATABASE_URL": proxied(pg_url, proxy),
           "HEDGEHOG_FGD_BROKER_URL": BROKER}
    with log_path.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "fgd_core.cli.worker", "relay"], env=env,
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        def lines() -> list[dict[str, Any]]:
            text = log_path.read_text(errors="replace")
            return [json.loads(line) for line in text.splitlines() if line.strip()]

        def waiting() -> bool:
            assert proc.poll() is None, log_path.read_text()
            return any("event store unreachable" in e["message"] for e in lines())

        wait_for(waiting, "the relay says it waits")
        proxy.start()
        wait_for(lambda: any(e["message"] == "relay relay started" for e in lines()),
                 f"the relay starts once PostgreSQL answers\n{log_path.read_text()}")
        entries = lines()
        unreachable = [e for e in entries if "unreachable" in e["message"]]
        assert len(unreachable) == 1 and unreachable[0]["level"] == "warning", entries
        assert "backoff" in unreachable[0]["message"]
        assert any("answers again" in e["message"] and e["level"] == "info" for e in entries)
        assert not any("Traceback" in json.dumps(e) for e in entries)
    finally:
        proc.terminate()
        proc.wait(20)
        proxy.stop()


def test_the_api_started_before_postgresql_waits_for_it(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fgd_workers")
    proxy = TCPProxy(("127.0.0.1", 5432))
    monkeypatch.setenv("HEDGEHOG_FGD_DATABASE_URL", proxied(pg_url, proxy))
    monkeypatch.setenv("HEDGEHOG_FGD_SQLITE_PATH", str(tmp_path / "unused.sqlite3"))
    monkeypatch.delenv("HEDGEHOG_FGD_BROKER_URL", raising=False)
    monkeypatch.delenv("HEDGEHOG_FGD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    built: list[Any] = []
    stop = threading.Event()
    thread = threading.Thread(target=lambda: built.append(build_when_store_answers(stop)),
                              daemon=True)
    thread.start()
    try:
        wait_for(lambda: "API start-up: event store unreachable" in caplog.text,
                 "the API says it waits")
        assert not built
        proxy.start()
        thread.join(60)
        assert built, caplog.text
        messages = [r.getMessage() for r in caplog.records if r.name == "fgd_workers"]
        assert len([m for m in messages if "unreachable" in m]) == 1, messages
        assert any("API start-up: event store answers again" in m for m in messages)
        with TestClient(create_app(built[0])) as client:  # it serves, on that database
            answer = client.get("/api/plugins/hedgehog/health/").json()
            assert answer["checks"]["database"]["status"] == "ok", answer
    finally:
        stop.set()
        thread.join(30)
        for container in built:
            container.close()
        proxy.stop()
