"""Notifications: settings, payloads, and delivery over real HTTP to a server on loopback,
including one that fails, one that is slow and one that is not there."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from drtool.config import check_environment, environment_from_description
from drtool.core.model import FAILED, PASSED, Check, Failure, Journal, Objectives
from drtool.ops import notify
from tests.http_endpoint import Endpoint, closed_port, serve

from .test_config import as_described

TOKEN = "T0KEN-5ecret-in-the-path"


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with serve() as server:
        yield server


def journal(status: str = PASSED) -> Journal:
    j = Journal(drill_id="20261122T070000Z-abc123", env="staging", operation="drill",
                started_at="2026-11-22T07:00:00+00:00", status=status,
                ended_at="2026-11-22T07:00:40+00:00", objectives=Objectives(300, 120),
                rto_s=23.25, rpo_measured_s=7.5, rpo_backup_age_s=6.0)
    j.checks = [Check("postgres.row_count", "t", 1, 1, PASSED),
                Check("objective.rto", "drill", 300, 23.25, PASSED)]
    if status == FAILED:
        j.failure = Failure("restore", "target-db: task 'Restore' failed", "orchestration",
                            ["target-db"])
        j.checks.append(Check("backup.integrity", "x", "a", "b", FAILED))
    return j


def settings(endpoint: Endpoint, **extra: object) -> notify.NotifySettings:
    parsed, problems = notify.parse_settings({
        "webhooks": [
            {"url": endpoint.url(f"/hook/{TOKEN}"), "format": "json", "secret": "hmac-key"},
            {"url": endpoint.url(f"/slack/{TOKEN}"), "format": "slack", "outcomes": ["failed"]},
        ],
        "healthchecks_url": endpoint.url(f"/ping/{TOKEN}"),
        "timeout_s": 2, "retries": 1, **extra})
    assert problems == []
    return parsed


# -- settings ------------------------------------------------------------------------------------

def test_settings_are_parsed_with_defaults():
    parsed, problems = notify.parse_settings({"webhooks": [{"url": "https://h.example/x"}]})
    assert problems == []
    assert parsed.webhooks == (notify.Webhook("https://h.example/x", "json", notify.OUTCOMES),)
    assert (parsed.timeout_s, parsed.retries) == (notify.DEFAULT_TIMEOUT_S,
                                                    notify.DEFAULT_RETRIES)
    assert notify.parse_settings(None)[0].configured is False


def test_every_bad_setting_is_named_and_no_url_is_quoted():
    secret_url = f"ftp://h.example/{TOKEN}"
    _parsed, problems = notify.parse_settings({
        "webhooks": [{"url": secret_url}, {"url": "https://h/x", "format": "xml"},
                     {"url": "https://h/x", "outcomes": ["sometimes"]}, "just a string",
                     {"url": "https://h/x", "colour": "red"}],
        "healthchecks_url": "not a url", "timeout_s": 0, "retries": 99, "extra": 1})
    keys = [key for key, _message in problems]
    assert keys == ["drtool_notify.extra", "drtool_notify.timeout_s", "drtool_notify.retries",
                    "drtool_notify.healthchecks_url", "drtool_notify.webhooks[1].url",
                    "drtool_notify.webhooks[2].format", "drtool_notify.webhooks[3].outcomes",
                    "drtool_notify.webhooks[4]", "drtool_notify.webhooks[5].colour"]
    assert not any(TOKEN in message for _key, message in problems)
    assert notify.parse_settings("yes")[1] == [("drtool_notify", "must be a mapping")]


def test_a_yaml_on_key_is_named_for_what_it_became():
    # YAML 1.1 (Ansible's) reads `on: [failed]` as {True: ["failed"]}.
    _parsed, problems = notify.parse_settings(
        {"webhooks": [{"url": "https://h.example/x", True: ["failed"]}]})
    assert problems == [("drtool_notify.webhooks[1].True", "unknown setting (did you mean "
                         "outcomes?) (known: format, outcomes, secret, url)")]


def test_an_empty_url_turns_a_webhook_off():
    # What an unset vault variable or environment lookup resolves to.
    parsed, problems = notify.parse_settings({"webhooks": [{"url": ""}], "healthchecks_url": ""})
    assert problems == [] and not parsed.configured


def test_the_inventory_check_reports_notify_problems_and_keeps_urls_away_from_hosts():
    described = {name: {"groups": [group], "tier": "staging", "drill_target": True,
                        "rto_objective_s": 60, "rpo_objective_s": 60,
                        "backup_path": "/b", "snapshot_path": "/s", "address": f"192.0.2.{i + 1}",
                        "postgres_port": 5432 + i, "redis_port": 6379 + i,
                        "notify": {"webhooks": [{"url": f"https://h.example/{TOKEN}"}]}}
                 for i, (name, group) in enumerate([
                     ("pg1", "pg_primary"), ("pg2", "pg_restore_target"),
                     ("r1", "redis_primary"), ("r2", "redis_restore_target"), ("app", "app")])}
    described["pg1"]["drill_target"] = False
    described["r1"]["drill_target"] = False
    described = as_described(described)
    env = environment_from_description("staging", Path("/inv"), described)
    assert env.notify.webhooks[0].url.endswith(TOKEN)
    assert all("notify" not in values for values in env.hosts.values())

    described["app"]["notify"] = {"retries": "many"}  # "app" is read first: sorted names
    _settings, problems, _refusals = check_environment("staging", described)
    assert [(p.key, p.message) for p in problems] == [
        ("drtool_notify", "differs between hosts; set it once in group_vars/all"),
        ("drtool_notify.retries", "must be a whole number from 0 to 10")]


# -- payloads ------------------------------------------------------------------------------------

def test_redacted_targets_hide_the_token_and_tell_endpoints_apart():
    one, two = f"https://hooks.example:8443/a/{TOKEN}", "https://hooks.example:8443/b/other"
    assert notify.redact(one).startswith("https://hooks.example:8443 #")
    assert TOKEN not in notify.redact(one) and notify.redact(one) != notify.redact(two)


def test_payloads_say_what_happened():
    data = notify.json_payload(journal(FAILED), "/evidence/j.json")
    assert data["event"] == "drill.finished" and data["status"] == "failed"
    assert data["failure"]["phase"] == "restore" and data["checks"] == {"passed": 2, "failed": 1}
    assert data["objectives"] == {"rto_s": 300, "rpo_s": 120} and data["rto_s"] == 23.25
    text = notify.slack_payload(journal(PASSED), "/evidence/j.json")["text"]
    assert text.startswith(":white_check_mark: drtool drill 20261122T070000Z-abc123 on "
                           "staging: PASSED; RTO 23.2 s (objective 300 s); RPO 7.5 s "
                           "(objective 120 s)")
    assert "/evidence/j.json" in text


def test_end_messages_follow_each_webhooks_outcomes_and_the_healthchecks_state(endpoint):
    passed = notify.end_messages(settings(endpoint), journal(PASSED), "j")
    assert [(m.kind, m.format) for m in passed] == [("webhook", "json"), ("healthchecks", None)]
    assert urlsplit(passed[1].url).path == f"/ping/{TOKEN}"
    failed = notify.end_messages(settings(endpoint), journal(FAILED), "j")
    assert [(m.kind, m.format) for m in failed] == [
        ("webhook", "json"), ("webhook", "slack"), ("healthchecks", None)]
    assert urlsplit(failed[2].url).path == f"/ping/{TOKEN}/fail"
    # A manual restore or backup does not touch the dead man's switch.
    manual = journal(PASSED)
    manual.operation = "restore"
    assert [m.kind for m in notify.end_messages(settings(endpoint), manual, "j")] == ["webhook"]
    assert notify.start_messages(settings(endpoint), manual) == []


# -- delivery ------------------------------------------------------------------------------------

def test_everything_is_delivered_signed_and_paired(endpoint):
    config = settings(endpoint)
    j = journal(FAILED)
    sent = notify.deliver_all([*notify.start_messages(config, j),
                               *notify.end_messages(config, j, "/e/j.json")], config)
    assert [(s.kind, s.event, s.status, s.attempts, s.http_status) for s in sent] == [
        ("healthchecks", "start", "delivered", 1, 200),
        ("webhook", "finished", "delivered", 1, 200),
        ("webhook", "finished", "delivered", 1, 200),
        ("healthchecks", "finished", "delivered", 1, 200)]
    assert not any(TOKEN in json.dumps(s.__dict__) for s in sent)
    by_path = {urlsplit(r["path"]).path: r for r in endpoint.received}
    hook = by_path[f"/hook/{TOKEN}"]
    expected = hmac.new(b"hmac-key", hook["body"], hashlib.sha256).hexdigest()
    assert hook["headers"]["X-Drtool-Signature-256"] == f"sha256={expected}"
    assert hook["headers"]["X-Drtool-Event"] == "drill.finished"
    assert json.loads(hook["body"])["drill_id"] == j.drill_id
    assert json.loads(by_path[f"/slack/{TOKEN}"]["body"])["text"].startswith(":x: drtool drill")
    start, end = by_path[f"/ping/{TOKEN}/start"], by_path[f"/ping/{TOKEN}/fail"]
    rid = {parse_qs(urlsplit(r["path"]).query)["rid"][0] for r in (start, end)}
    assert rid == {notify.run_id(j.drill_id)}
    assert end["body"].decode().startswith("drtool drill 20261122T070000Z-abc123 on staging: "
                                           "FAILED")


def test_a_server_error_is_retried_with_backoff(endpoint):
    endpoint.replies = [500, 503]
    waits: list[float] = []
    message = notify.end_messages(settings(endpoint), journal(), "j")[0]
    sent = notify.deliver(message, timeout_s=2, retries=3, sleep=waits.append)
    assert (sent.status, sent.attempts, sent.http_status, sent.error) == (
        "delivered", 3, 200, None)
    assert waits == [1.0, 2.0] and len(endpoint.received) == 3


def test_a_client_error_is_not_retried(endpoint):
    endpoint.replies = [404]
    message = notify.end_messages(settings(endpoint), journal(), "j")[0]
    sent = notify.deliver(message, timeout_s=2, retries=3, sleep=lambda _s: None)
    assert (sent.status, sent.attempts, sent.http_status) == ("failed", 1, 404)
    assert sent.error == "HTTP 404 Not Found"


def test_a_missing_endpoint_fails_after_every_retry_without_naming_the_url():
    url = f"http://127.0.0.1:{closed_port()}/hook/{TOKEN}"
    config, _ = notify.parse_settings({"webhooks": [{"url": url}], "retries": 2})
    waits: list[float] = []
    sent = notify.deliver(notify.end_messages(config, journal(), "j")[0], 2, 2,
                          sleep=waits.append)
    assert (sent.status, sent.attempts, sent.http_status) == ("failed", 3, None)
    assert "ConnectionRefusedError" in (sent.error or "") and waits == [1.0, 2.0]
    assert TOKEN not in json.dumps(sent.__dict__)


def test_a_slow_endpoint_is_given_up_within_the_bound(endpoint):
    endpoint.delay = 3.0
    config, _ = notify.parse_settings({"webhooks": [{"url": endpoint.url("/slow")}],
                                       "timeout_s": 0.5, "retries": 1})
    sent = notify.deliver_all(notify.end_messages(config, journal(), "j"), config)
    assert sent[0].status == "failed" and sent[0].attempts == 2
    assert "timed out" in (sent[0].error or "")
    # Two attempts of 0.5 s and one wait of 1 s; the server's 3 s are not waited for.
    assert config.worst_case_s() == 2.0
    assert sent[0].duration_s is not None and sent[0].duration_s < config.worst_case_s() + 1.0


# -- URLs that are credentials -------------------------------------------------------------------

@pytest.mark.parametrize(("url", "why"), [
    (f"https://hc-ping.example/{TOKEN}\n", "whitespace or control characters"),
    (f"https://hc-ping.example/{TOKEN} ", "whitespace or control characters"),
    (f"https://hooks.example/a\tb/{TOKEN}", "whitespace or control characters"),
    (f"https://hooks.example/{TOKEN}\x00", "whitespace or control characters"),
    (f"https://hooks.example/{TOKEN}/é", "must be ASCII"),
    (f"https://hooks.example:99999/{TOKEN}", "valid host and port"),
    (f"https://hooks.example:port/{TOKEN}", "valid host and port"),
    (f"https:///{TOKEN}", "must be an http(s) URL"),
])
def test_a_url_http_client_would_refuse_is_refused_at_validate_naming_only_the_key(url, why):
    _parsed, problems = notify.parse_settings({"healthchecks_url": url,
                                               "webhooks": [{"url": url}]})
    assert [key for key, _message in problems] == ["drtool_notify.healthchecks_url",
                                                   "drtool_notify.webhooks[1].url"]
    assert all(why in message for _key, message in problems), problems
    assert not any(TOKEN in message or "hooks" in message or "hc-ping" in message
                   for _key, message in problems)
    assert TOKEN not in notify.redact(url)  # and naming it never raises


def test_an_invalid_url_that_reaches_delivery_is_a_failed_delivery_not_a_crash(endpoint):
    # What a healthchecks URL with a trailing newline did before validation: the ping's URL
    # became ".../TOKEN\n/start?rid=..." and urllib raised http.client.InvalidURL, uncaught,
    # quoting the URL. Sent for real, through urllib, to a live server.
    config = notify.NotifySettings(healthchecks_url=endpoint.url(f"/ping/{TOKEN}\n"))
    (message,) = notify.start_messages(config, journal())
    sent = notify.deliver(message, timeout_s=2, retries=2, sleep=lambda _s: None)
    assert (sent.status, sent.attempts, sent.http_status) == ("failed", 1, None)
    assert sent.error == "InvalidURL" and endpoint.received == []
    assert TOKEN not in json.dumps(sent.__dict__)
    assert sent.target.startswith("http://127.0.0.1:")


def test_no_error_text_ever_quotes_the_url():
    url = f"https://user:{TOKEN}@hooks.example/hook/{TOKEN}?k={TOKEN}"

    def opener(_request: object, _timeout: float) -> int:
        raise RuntimeError(f"something odd about {url} and /hook/{TOKEN}")

    message = notify.Request(url, "webhook", "finished", b"{}", format="json")
    sent = notify.deliver(message, timeout_s=1, retries=1, sleep=lambda _s: None,
                          opener=opener)
    assert (sent.status, sent.attempts, sent.error) == ("failed", 2, "RuntimeError")
    assert TOKEN not in json.dumps(sent.__dict__)
