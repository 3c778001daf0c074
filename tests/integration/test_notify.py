"""Notifications from real drills on the sandbox, to a real HTTP server on loopback: what
arrives, what the journal records, and that an endpoint that is down changes nothing."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from drtool.ops.notify import run_id
from tests.conftest import Drtool, copy_inventory, copy_inventory_with_components
from tests.http_endpoint import Endpoint, closed_port, serve

pytestmark = pytest.mark.integration

TOKEN = "hook-T0KEN-8f2d1c"  # stands for the secret part of a webhook URL
HMAC_KEY = "hmac-K3Y-5e1a"


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with serve() as server:
        yield server


def journal_of(drtool: Drtool, env: str, stdout: str) -> dict[str, Any]:
    path = next(line.split(None, 1)[1] for line in stdout.splitlines()
                if line.startswith("Journal "))
    assert Path(path).parent.parent == drtool.home / "evidence" / env
    return json.loads(Path(path).read_text())


def test_a_passed_drill_notifies_and_an_endpoint_that_is_down_changes_nothing(
        sandbox: Drtool, endpoint: Endpoint):
    down = f"http://127.0.0.1:{closed_port()}/down/{TOKEN}"
    env = copy_inventory(sandbox, "notified", {"drtool_notify": {
        "webhooks": [
            {"url": endpoint.url(f"/hook/{TOKEN}"), "format": "json", "secret": HMAC_KEY},
            {"url": endpoint.url(f"/slack/{TOKEN}"), "format": "slack"},
            {"url": endpoint.url(f"/failures-only/{TOKEN}"), "outcomes": ["failed", "aborted"]},
            {"url": down, "format": "json"},
        ],
        "healthchecks_url": endpoint.url(f"/ping/{TOKEN}"), "timeout_s": 2, "retries": 1}},
        keep={"main"})  # what is notified does not depend on what is drilled

    done = sandbox("drill", "--env", env)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    journal = journal_of(sandbox, env, done.stdout)
    assert journal["status"] == "passed" and journal["failure"] is None
    sent = [(n["kind"], n["event"], n["format"], n["status"], n["attempts"])
            for n in journal["notifications"]]
    assert sent == [("healthchecks", "start", None, "delivered", 1),
                    ("webhook", "finished", "json", "delivered", 1),
                    ("webhook", "finished", "slack", "delivered", 1),
                    ("webhook", "finished", "json", "failed", 2),
                    ("healthchecks", "finished", None, "delivered", 1)]
    refused = journal["notifications"][3]
    assert "ConnectionRefusedError" in refused["error"] and refused["http_status"] is None
    assert refused["target"].startswith("http://127.0.0.1:") and TOKEN not in refused["target"]
    assert "Notified  finished: webhook (json) http://127.0.0.1:" in done.stdout
    assert "not delivered after 2 attempts: ConnectionRefusedError" in done.stdout

    got = endpoint.by_path()
    assert set(got) == {f"/hook/{TOKEN}", f"/slack/{TOKEN}", f"/ping/{TOKEN}/start",
                        f"/ping/{TOKEN}"}  # nothing to the failures-only hook
    hook = got[f"/hook/{TOKEN}"]
    payload = json.loads(hook["body"])
    assert (payload["drill_id"], payload["status"], payload["rto_s"]) == (
        journal["drill_id"], "passed", journal["rto_s"])
    assert payload["checks"]["passed"] == len(journal["checks"]) and payload["failure"] is None
    assert hook["headers"]["X-Drtool-Signature-256"] == "sha256=" + hmac.new(
        HMAC_KEY.encode(), hook["body"], "sha256").hexdigest()
    assert json.loads(got[f"/slack/{TOKEN}"]["body"])["text"].startswith(
        f":white_check_mark: drtool drill {journal['drill_id']} on notified: PASSED; RTO ")
    for path in (f"/ping/{TOKEN}/start", f"/ping/{TOKEN}"):
        assert parse_qs(urlsplit(got[path]["path"]).query)["rid"] == [run_id(journal["drill_id"])]

    # The history recorded the journal as it is, notifications included: `evidence verify`
    # hashes the journal file again and compares it with the record.
    verified = sandbox("evidence", "verify", "--env", env)
    assert verified.returncode == 0 and "chain intact" in verified.stdout

    # Neither the URLs' tokens nor the signing key are written anywhere drtool writes.
    searched = 0
    for path in sandbox.home.rglob("*"):
        if path.is_file() and "inventories" not in path.parts:
            searched += 1
            data = path.read_bytes()
            assert TOKEN.encode() not in data and HMAC_KEY.encode() not in data, path
    assert searched > 50
    assert TOKEN not in done.stdout + done.stderr


def test_a_failed_drill_pings_fail_and_reaches_failure_webhooks(sandbox: Drtool,
                                                                 endpoint: Endpoint):
    env = copy_inventory_with_components(
        sandbox, "notified-broken",
        # Nothing listens there: preflight fails, before anything is changed.
        {"drtool_postgres_clusters[0].target.port": closed_port()},
        {"drtool_notify": {
            "webhooks": [{"url": endpoint.url(f"/failures-only/{TOKEN}"),
                          "outcomes": ["failed"]}],
            "healthchecks_url": endpoint.url(f"/ping/{TOKEN}"), "timeout_s": 2, "retries": 0}})

    done = sandbox("drill", "--env", env)

    assert done.returncode == 3, done.stdout[-3000:] + done.stderr
    journal = journal_of(sandbox, env, done.stdout)
    assert journal["status"] == "failed" and journal["failure"]["phase"] == "preflight"
    assert [n["status"] for n in journal["notifications"]] == ["delivered"] * 3
    got = endpoint.by_path()
    assert set(got) == {f"/failures-only/{TOKEN}", f"/ping/{TOKEN}/start", f"/ping/{TOKEN}/fail"}
    payload = json.loads(got[f"/failures-only/{TOKEN}"]["body"])
    assert payload["status"] == "failed" and payload["failure"]["phase"] == "preflight"
    assert got[f"/ping/{TOKEN}/fail"]["body"].decode().startswith(
        f"drtool drill {journal['drill_id']} on {env}: FAILED; RTO not measured")


def test_notify_test_sends_a_marked_message_and_exits_by_what_arrived(sandbox: Drtool,
                                                                     endpoint: Endpoint):
    good = copy_inventory(sandbox, "notify-good", {"drtool_notify": {
        "webhooks": [{"url": endpoint.url(f"/hook/{TOKEN}"), "outcomes": ["failed"]}],
        "healthchecks_url": endpoint.url(f"/ping/{TOKEN}")}})
    done = sandbox("notify", "test", "--env", good)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("delivered\n") == 2 and TOKEN not in done.stdout
    payload = json.loads(endpoint.by_path()[f"/hook/{TOKEN}"]["body"])
    assert (payload["event"], payload["status"], payload["operation"]) == (
        "test.finished", "test", "test")
    assert f"/ping/{TOKEN}" in endpoint.by_path()  # a test is reported as a success

    bad = copy_inventory(sandbox, "notify-down", {"drtool_notify": {
        "webhooks": [{"url": f"http://127.0.0.1:{closed_port()}/{TOKEN}"}], "retries": 0}})
    code, sent = sandbox.json("notify", "test", "--env", bad)
    assert code == 1 and [(s["status"], s["attempts"]) for s in sent] == [("failed", 1)]

    none = sandbox("notify", "test", "--env", "sandbox")
    assert none.returncode == 2 and none.stderr == (
        "drtool: error: sandbox: no notification is configured (set drtool_notify in its "
        "inventory)\n")


def test_a_bad_notify_setting_refuses_the_drill_naming_file_and_key(sandbox: Drtool):
    env = copy_inventory(sandbox, "notify-bad", {"drtool_notify": {
        "webhooks": [{"url": f"https://h.example/{TOKEN}", "format": "xml"}]}})
    done = sandbox("drill", "--env", env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "hosts.yml: drtool_notify.webhooks[1].format: must be one of json, slack" in done.stderr
    assert TOKEN not in done.stderr
    assert not (sandbox.home / "evidence" / env).exists()


def test_a_signal_while_the_start_ping_waits_aborts_before_any_phase(sandbox: Drtool,
                                                                     endpoint: Endpoint):
    # The start ping is the first thing a drill does that can take time: a SIGTERM that
    # arrives while it waits must abort the drill cleanly, not kill drtool with a journal
    # saying running.
    import signal
    import time

    endpoint.delay = 4
    env = copy_inventory(sandbox, "notified-slow", {"drtool_notify": {
        "healthchecks_url": endpoint.url(f"/ping/{TOKEN}"), "timeout_s": 20, "retries": 0}})
    drill = sandbox.popen("drill", "--env", env, "--json")
    deadline = time.monotonic() + 120
    while not endpoint.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert endpoint.received, "the start ping never arrived"

    drill.send_signal(signal.SIGTERM)
    out, err = drill.communicate(timeout=120)

    assert drill.returncode == 130, err
    journal = json.loads(out)
    assert journal["status"] == "aborted" and journal["failure"]["kind"] == "interrupted"
    assert {p["status"] for p in journal["phases"]} == {"skipped"}
    assert journal["rollback"] is None
    saved = sandbox.home / "evidence" / env / journal["drill_id"] / "journal.json"
    assert json.loads(saved.read_text())["status"] == "aborted"
    # The end ping says so: a monitor learns the drill was stopped.
    assert [urlsplit(r["path"]).path for r in endpoint.received][-1].endswith("/fail")
