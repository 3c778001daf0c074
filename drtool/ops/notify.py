"""Telling people how a drill went: webhooks (generic JSON or Slack) and a healthchecks-style
dead man's switch, configured per environment by the inventory's `drtool_notify`.

A notification never changes a drill's outcome. Each delivery has a timeout and a bounded
number of retries with backoff, runs in parallel with the others, and is recorded in the
journal, whether it arrived or not. URLs often carry a token, so the journal and every message
drtool prints name an endpoint only by scheme, host and a short hash of the full URL.

The standard library's urllib is enough for a POST with a timeout; no HTTP library is added.
"""

from __future__ import annotations

import hashlib
import hmac
import http
import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from drtool import __version__
from drtool.core.clock import iso, utc_now
from drtool.core.model import ABORTED, FAILED, PASSED, Journal, Notification

FORMATS = ("json", "slack")
OUTCOMES = (PASSED, FAILED, ABORTED)
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 2
MAX_RETRIES = 10
# Waits between attempts: 1 s, 2 s, 4 s, ... capped, so that the worst case stays bounded:
# (retries + 1) * timeout + the sum of these.
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
HEALTHCHECKS_BODY_LIMIT = 10_000  # healthchecks.io keeps the first 100 kB; a summary is enough


@dataclass(frozen=True)
class Webhook:
    url: str = field(repr=False)
    format: str = "json"
    outcomes: tuple[str, ...] = OUTCOMES  # which drill outcomes it is sent for
    secret: str | None = field(default=None, repr=False)  # HMAC key for the signature header


@dataclass(frozen=True)
class NotifySettings:
    webhooks: tuple[Webhook, ...] = ()
    healthchecks_url: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES

    @property
    def configured(self) -> bool:
        return bool(self.webhooks or self.healthchecks_url)

    def worst_case_s(self) -> float:
        """How long one delivery can take at most, every attempt timing out."""
        waits = sum(backoff(n) for n in range(1, self.retries + 1))
        return (self.retries + 1) * self.timeout_s + waits


def backoff(attempt: int) -> float:
    """The wait before retry number `attempt` (1-based)."""
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))


def redact(url: str) -> str:
    """An endpoint as the journal may name it: scheme://host[:port] and 8 hex digits of the
    full URL's sha256, so that two endpoints on one host stay apart and no token is shown."""
    digest = hashlib.sha256(url.encode(errors="replace")).hexdigest()[:8]
    try:
        parts = urllib.parse.urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is no number: name no part of it
        return f"? #{digest}"
    host = parts.hostname or "?"
    if not (host + parts.scheme).isprintable() or any(c.isspace() for c in host):
        host = "?"
    return f"{parts.scheme}://{host}{port} #{digest}"


# -- settings, from the inventory -----------------------------------------------------------

def _url_problem(value: Any) -> str | None:
    """What is wrong with a notification URL, never quoting it; None when it is usable.

    urllib forgives more than http.client: a trailing newline passes urlsplit and then
    raises InvalidURL at the first delivery, so whitespace and control characters are
    refused here, at validate time."""
    if not isinstance(value, str):
        return "must be an http(s) URL"
    if any(c.isspace() or not c.isprintable() for c in value):
        return ("must not contain whitespace or control characters (a trailing newline "
                "from a file or a variable?)")
    if not value.isascii():
        return "must be ASCII (percent-encode other characters)"
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError when the port is no number or too big
    except ValueError:
        return "must be an http(s) URL with a valid host and port"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL"
    return None


def parse_settings(raw: Any) -> tuple[NotifySettings, list[tuple[str, str]]]:
    """NotifySettings from `drtool_notify` as Ansible resolved it, and every problem as
    (key, message). Pure. Messages never quote a URL: it may hold a token."""
    problems: list[tuple[str, str]] = []
    if raw in (None, "", {}):
        return NotifySettings(), problems
    if not isinstance(raw, dict):
        return NotifySettings(), [("drtool_notify", "must be a mapping")]
    known = {"webhooks", "healthchecks_url", "timeout_s", "retries"}
    for key in sorted(set(raw) - known, key=str):
        problems.append((f"drtool_notify.{key}",
                         f"unknown setting (known: {', '.join(sorted(known))})"))

    timeout = raw.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, str)):
        timeout = None
    try:
        timeout = float(timeout) if timeout is not None else None
    except ValueError:
        timeout = None
    if timeout is None or not 0 < timeout <= 300:
        problems.append(("drtool_notify.timeout_s", "must be a number of seconds in (0, 300]"))
        timeout = DEFAULT_TIMEOUT_S

    retries = raw.get("retries", DEFAULT_RETRIES)
    retries = int(retries) if not isinstance(retries, bool) and str(retries).isdigit() else -1
    if not 0 <= retries <= MAX_RETRIES:
        problems.append(("drtool_notify.retries",
                         f"must be a whole number from 0 to {MAX_RETRIES}"))
        retries = DEFAULT_RETRIES

    healthchecks = raw.get("healthchecks_url")
    if healthchecks in ("", None):
        healthchecks = None
    elif (problem := _url_problem(healthchecks)) is not None:
        problems.append(("drtool_notify.healthchecks_url", problem))
        healthchecks = None

    hooks = raw.get("webhooks") or []
    webhooks = []
    if not isinstance(hooks, list):
        problems.append(("drtool_notify.webhooks", "must be a list of {url, format, outcomes}"))
        hooks = []
    for number, hook in enumerate(hooks, start=1):
        key = f"drtool_notify.webhooks[{number}]"
        if not isinstance(hook, dict):
            problems.append((key, "must be a mapping with a url"))
            continue
        for extra in sorted(set(hook) - {"url", "format", "outcomes", "secret"}, key=str):
            # YAML 1.1 reads a bare `on:` key as true: name the real setting then.
            hint = " (did you mean outcomes?)" if extra is True else ""
            problems.append((f"{key}.{extra}",
                             f"unknown setting{hint} (known: format, outcomes, secret, url)"))
        if hook.get("url") in ("", None):
            continue  # an unset secret (a vault or env lookup left empty) turns the hook off
        if (problem := _url_problem(hook.get("url"))) is not None:
            problems.append((f"{key}.url", problem))
            continue
        fmt = hook.get("format", "json")
        if fmt not in FORMATS:
            problems.append((f"{key}.format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}"))
            continue
        outcomes = hook.get("outcomes", list(OUTCOMES))
        if isinstance(outcomes, str):
            outcomes = [outcomes]
        if (not isinstance(outcomes, list) or not outcomes
                or not set(outcomes) <= set(OUTCOMES)):
            problems.append((f"{key}.outcomes", f"must list some of {', '.join(OUTCOMES)}"))
            continue
        secret = hook.get("secret")
        if secret not in (None, "") and not isinstance(secret, str):
            problems.append((f"{key}.secret", "must be a string"))
            continue
        webhooks.append(Webhook(hook["url"], fmt, tuple(outcomes), secret or None))
    return NotifySettings(tuple(webhooks), healthchecks, timeout, retries), problems


# -- what is sent ------------------------------------------------------------------------------

def summary_line(journal: Journal) -> str:
    """One line a person reads in a chat or a pager."""
    def seconds(value: float | None) -> str:
        return "not measured" if value is None else f"{value:.1f} s"

    parts = [f"drtool {journal.operation} {journal.drill_id} on {journal.env}: "
             f"{journal.status.upper()}"]
    if journal.operation == "drill":
        rto = f"RTO {seconds(journal.rto_s)}"
        rpo = f"RPO {seconds(journal.rpo_measured_s)}"
        if journal.objectives is not None:
            rto += f" (objective {journal.objectives.rto_s:g} s)"
            rpo += f" (objective {journal.objectives.rpo_s:g} s)"
        parts += [rto, rpo]
    if journal.undoes:
        parts.append(f"undoes recovery {journal.undoes}")
    if journal.failure is not None:
        where = f"{journal.failure.phase}: " if journal.failure.phase else ""
        parts.append(f"failure at {where}{journal.failure.reason}")
    return "; ".join(parts)


def json_payload(journal: Journal, journal_path: str) -> dict[str, Any]:
    """The generic webhook's body: the drill's outcome, the figures, and where the proof is."""
    failed = sum(1 for c in journal.checks if c.status == FAILED)
    return {
        "event": f"{journal.operation}.finished",
        "drill_id": journal.drill_id,
        "env": journal.env,
        "operation": journal.operation,
        "status": journal.status,
        "started_at": journal.started_at,
        "ended_at": journal.ended_at,
        "rto_s": journal.rto_s,
        "rpo_measured_s": journal.rpo_measured_s,
        "rpo_backup_age_s": journal.rpo_backup_age_s,
        "objectives": (None if journal.objectives is None else
                       {"rto_s": journal.objectives.rto_s, "rpo_s": journal.objectives.rpo_s}),
        "failure": (None if journal.failure is None else
                    {"phase": journal.failure.phase, "reason": journal.failure.reason,
                     "kind": journal.failure.kind, "hosts": journal.failure.hosts}),
        "checks": {"passed": len(journal.checks) - failed, "failed": failed},
        "backup_id": journal.backup.id if journal.backup else None,
        "undoes": journal.undoes,
        "summary": summary_line(journal),
        "journal": journal_path,
        "host": socket.gethostname(),
        "drtool_version": __version__,
    }


def slack_payload(journal: Journal, journal_path: str) -> dict[str, Any]:
    """A Slack incoming webhook's body: mrkdwn text, with the journal's path."""
    mark = {PASSED: ":white_check_mark:", FAILED: ":x:"}.get(journal.status, ":warning:")
    text = f"{mark} {summary_line(journal)}\nJournal: `{journal_path}` on {socket.gethostname()}"
    return {"text": text}


def trial_journal(env: str) -> Journal:
    """A stand-in outcome for `drtool notify test`: says plainly that no drill ran."""
    journal = Journal(drill_id="notification-test", env=env, operation="test",
                      started_at=iso(utc_now()) or "", status="test")
    journal.ended_at = journal.started_at
    return journal


# -- delivery ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    """One message to deliver: its endpoint, kind and event, and its body."""

    url: str = field(repr=False)
    kind: str  # webhook or healthchecks
    event: str  # start, finished, test
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    format: str | None = None


Opener = Callable[[urllib.request.Request, float], int]


def _open(request: urllib.request.Request, timeout: float) -> int:
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only)
        response.read(65536)
        return int(response.status)


def _retryable(status: int | None) -> bool:
    # No answer at all, a server error, or "too many requests" may go away; other 4xx won't.
    return status is None or status >= 500 or status in (408, 429)


def _http_error(status: int | None) -> str:
    """"HTTP 404 Not Found": the standard phrase, not the server's (which it may fill)."""
    try:
        return f"HTTP {status} {http.HTTPStatus(status or 0).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _describe(exc: BaseException) -> str:
    """An exception as a delivery error, by its type and only what cannot hold the URL: an
    errno's text (ConnectionRefusedError: Connection refused), a timeout, a TLS reason.
    InvalidURL and ValueError quote the URL, so they are named by their type alone."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return _describe(exc.reason)
    name = type(exc).__name__
    if isinstance(exc, TimeoutError):
        return f"{name}: timed out"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{name}: {exc.reason}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{name}: {exc.strerror}"
    return name


def _without_url(text: str, url: str) -> str:
    """`text` with the URL, and every part of it that may carry a token, replaced by the
    redacted endpoint: a last guard, since no message built here should quote them."""
    parts = urllib.parse.urlsplit(url.strip()) if _url_problem(url) is None else None
    pieces = [url, url.strip()]
    if parts is not None:
        pieces += [parts.path, parts.query, parts.fragment, parts.password or "",
                   parts.username or ""]
    for piece in sorted({p for p in pieces if len(p) > 3}, key=len, reverse=True):
        text = text.replace(piece, redact(url))
    return text


def deliver(message: Request, timeout_s: float, retries: int,
            sleep: Callable[[float], None] = time.sleep, opener: Opener = _open) -> Notification:
    """Send one message, retrying with backoff; never raises. The record names the endpoint
    only in redacted form and never quotes the URL in an error."""
    started = time.monotonic()
    sent_at = iso(utc_now())
    status: int | None = None
    error: str | None = None
    attempts = 0
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff(attempt))
        attempts += 1
        try:
            request = urllib.request.Request(  # noqa: S310 (parse_settings admits http(s) only)
                message.url, data=message.body, method="POST",
                headers={"Content-Type": message.content_type,
                         "User-Agent": f"drtool/{__version__}", **dict(message.headers)})
            status, error = opener(request, timeout_s), None
        except urllib.error.HTTPError as exc:
            status, error = exc.code, _http_error(exc.code)
        except Exception as exc:  # noqa: BLE001 - a notification must never end a drill
            status, error = None, _describe(exc)
            if isinstance(exc, ValueError | http.client.InvalidURL):
                break  # a bad URL stays bad: no retry
        if error is None and status is not None and 200 <= status < 300:
            break
        if error is None:
            error = _http_error(status)
        if not _retryable(status):
            break
    error = _without_url(error, message.url) if error else None
    return Notification(
        target=redact(message.url), kind=message.kind, event=message.event,
        format=message.format, status="delivered" if error is None else "failed",
        attempts=attempts, http_status=status, error=error, sent_at=sent_at,
        duration_s=round(time.monotonic() - started, 3))


def deliver_all(messages: Iterable[Request], settings: NotifySettings,
                opener: Opener = _open) -> list[Notification]:
    """Deliver every message in parallel; the records in the messages' order."""
    messages = list(messages)
    if not messages:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(messages))) as pool:
        return list(pool.map(
            lambda m: deliver(m, settings.timeout_s, settings.retries, opener=opener), messages))


def _signed(body: bytes, secret: str | None) -> tuple[tuple[str, str], ...]:
    if not secret:
        return ()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return (("X-Drtool-Signature-256", f"sha256={digest}"),)


def run_id(drill_id: str) -> str:
    """healthchecks' `rid`: a UUID that pairs a start ping with its end ping."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"drtool:{drill_id}"))


def _healthchecks(url: str, suffix: str, drill_id: str) -> str:
    base = url.rstrip("/") + suffix
    return f"{base}{'&' if '?' in base else '?'}rid={run_id(drill_id)}"


def start_messages(settings: NotifySettings, journal: Journal) -> list[Request]:
    """The start ping, when a healthchecks URL is set: a drill that never ends, or never
    starts (cron did not run it), shows up there as late."""
    if not settings.healthchecks_url or journal.operation != "drill":
        return []
    return [Request(_healthchecks(settings.healthchecks_url, "/start", journal.drill_id),
                    "healthchecks", "start", summary_line(journal).encode(), "text/plain")]


def end_messages(settings: NotifySettings, journal: Journal, journal_path: str) -> list[Request]:
    """The webhooks that asked for this outcome, and the healthchecks success or fail ping."""
    messages = []
    event = "test" if journal.operation == "test" else "finished"
    for hook in settings.webhooks:
        if event == "finished" and journal.status not in hook.outcomes:
            continue
        payload = (slack_payload if hook.format == "slack" else json_payload)(
            journal, journal_path)
        body = json.dumps(payload, sort_keys=True).encode()
        headers = (("X-Drtool-Event", payload.get("event", "drill.finished")),
                   *_signed(body, hook.secret)) if hook.format == "json" else ()
        messages.append(Request(hook.url, "webhook", event, body, "application/json",
                                headers, hook.format))
    # The dead man's switch watches scheduled drills; a manual backup or restore would reset it.
    if settings.healthchecks_url and journal.operation in ("drill", "test"):
        suffix = "" if journal.status in (PASSED, "test") else "/fail"
        body = summary_line(journal).encode()[:HEALTHCHECKS_BODY_LIMIT]
        messages.append(Request(_healthchecks(settings.healthchecks_url, suffix,
                                              journal.drill_id),
                                "healthchecks", event, body, "text/plain"))
    return messages
