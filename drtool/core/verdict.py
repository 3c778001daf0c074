"""Verdicts: the facts measured after a restore, judged against the manifest and the
environment's objectives. Pure: given dicts and dataclasses, returns Checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from drtool.core.clock import parse_iso
from drtool.core.manifest import Manifest, PostgresPart, RedisPart
from drtool.core.model import FAILED, PASSED, Check, Objectives


def _check(name: str, target: str, expected: Any, actual: Any, ok: bool, detail: str = "") -> Check:
    return Check(name, target, expected, actual, PASSED if ok else FAILED, detail)


def postgres_checks(
    expected: PostgresPart | None, where: str, facts: dict[str, Any],
    growing_tables: Iterable[str] = ()
) -> list[Check]:
    """Judge a restored database (`where`: host/cluster/database) against its part of the
    manifest: it exists; every table's exact row count equals the manifest's (tables the
    application appends to after the restart may hold more); no sequence went backwards;
    the sentinel row is there; a write round-tripped."""
    if expected is None:
        return [_check("postgres.database", where, "in the backup", "not in the backup", False,
                       "the backup holds no part for this database")]
    checks = [_check("postgres.database", where, "exists",
                     "exists" if facts.get("exists") else "missing", bool(facts.get("exists")))]
    if not facts.get("exists"):
        return checks
    counts = facts.get("counts", {})
    growing = set(growing_tables)
    for table in sorted(set(expected.counts) | set(counts)):
        want, got = expected.counts.get(table), counts.get(table)
        if table in growing and want is not None and got is not None:
            checks.append(_check("postgres.row_count", f"{where}:{table}", f">= {want}", got,
                                 got >= want, "appended to by the application"))
        else:
            checks.append(_check("postgres.row_count", f"{where}:{table}", want, got, want == got))
    sequences = facts.get("sequences", {})
    for name, want in sorted(expected.sequences.items()):
        got = sequences.get(name)
        ok = got is not None if want is None else (got is not None and got >= want)
        checks.append(_check("postgres.sequence", f"{where}:{name}",
                             f">= {want}" if want is not None else "present", got, ok))
    sentinel = expected.sentinel.get("value")
    checks.append(_check("postgres.sentinel", f"{where}:drtool.sentinel", sentinel,
                         facts.get("sentinel_value"), facts.get("sentinel_value") == sentinel))
    return checks + _write_check(where, facts)


def uncounted_checks(where: str, facts: dict[str, Any], why: str) -> list[Check]:
    """Judge a restored database whose backup recorded no counts to compare (`why`: it was
    recovered to a point in time drtool did not set, or backed up with counts none): it
    exists and takes a write; its counts are reported as not comparable, not guessed."""
    exists = bool(facts.get("exists"))
    checks = [_check("postgres.database", where, "exists", "exists" if exists else "missing",
                     exists)]
    if not exists:
        return checks
    tables = len(facts.get("counts") or {})
    checks.append(_check("postgres.row_count", where, "not comparable", f"{tables} tables",
                         True, f"{why}, so none is compared"))
    return checks + _write_check(where, facts)


def recovery_time_checks(target_time: str, restored: Mapping[str, Mapping[str, Any]],
                         keys: Iterable[str]) -> list[Check]:
    """Proof that a recovery to `target_time` stopped there: the newest heartbeat each
    restored database (`keys`) holds is at or before it. A database without heartbeats
    proves nothing either way and is not judged."""
    limit = parse_iso(target_time)
    checks = []
    for key in sorted(keys):
        beat = (restored.get(key) or {}).get("heartbeat_at")
        if beat is None:
            continue
        moment = parse_iso(beat)
        checks.append(_check("postgres.recovery_target", key, f"<= {target_time}", beat,
                             moment is not None and limit is not None and moment <= limit,
                             "no data newer than the point in time came back"))
    return checks


def _write_check(where: str, facts: dict[str, Any]) -> list[Check]:
    """The restored database took a write and gave it back, when the verify tried one."""
    if "write_check" not in facts:
        return []
    written = facts["write_check"].get("written")
    read_back = facts["write_check"].get("read_back")
    return [_check("postgres.write", where, written, read_back,
                   written is not None and written == read_back)]


def redis_checks(expected: RedisPart | None, where: str, facts: dict[str, Any]) -> list[Check]:
    """Judge a restored Redis (`where`: host/component) against its part of the manifest: it
    answers PING, every database holds exactly the manifest's key count, and the sentinel
    key holds the sentinel value."""
    checks = [_check("redis.ping", where, True, bool(facts.get("ping")),
                     bool(facts.get("ping")))]
    if expected is None:
        return [*checks, _check("redis.backup", where, "in the backup", "not in the backup",
                                False, "the backup holds no part for this instance")]
    counts = facts.get("counts", {})
    for db in sorted(set(expected.counts) | set(counts)):
        want, got = expected.counts.get(db), counts.get(db)
        checks.append(_check("redis.key_count", f"{where}:{db}", want, got, want == got))
    sentinel = expected.sentinel.get("value")
    checks.append(_check("redis.sentinel", f"{where}:{expected.sentinel.get('key')}", sentinel,
                         facts.get("sentinel_value"), facts.get("sentinel_value") == sentinel))
    return checks


def heartbeat_checks(manifest: Manifest,
                     restored: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    """The newest heartbeat found right after the restore must be the one the backup saw:
    proof that the restored data is that backup, no older and no newer. `restored`:
    {"postgres": {part key: facts}, "redis": {part key: facts}}."""
    checks = []
    for store in ("postgres", "redis"):
        for key, facts in sorted(restored.get(store, {}).items()):
            part = (manifest.postgres_part(key) if store == "postgres"
                    else manifest.redis_part(key))
            want, got = (part.heartbeat_at if part else None), facts.get("heartbeat_at")
            checks.append(_check(f"{store}.heartbeat", key, want, got, got == want))
    return checks


def service_checks(health: dict[str, dict[str, Any]]) -> list[Check]:
    """Every service answered its health check with the status it must (200 unless its
    inventory says otherwise) and, when one is asked, with the value its JSON field must
    hold (`health`: {name: facts})."""
    checks = []
    for name, facts in sorted(health.items()):
        where = f"{name} {facts.get('url', '')}".strip()
        want = facts.get("expected_status") or 200
        checks.append(_check("service.health", where, want, facts.get("status"),
                             facts.get("status") == want))
        if facts.get("field"):
            checks.append(_check("service.health_field", f"{where} {facts['field']}",
                                 facts.get("expected_value"), facts.get("value"),
                                 facts.get("value") == facts.get("expected_value")))
    return checks


def objective_checks(
    objectives: Objectives, rto_s: float | None, rpo_measured_s: float | None,
    rpo_backup_age_s: float | None,
) -> list[Check]:
    """RTO and RPO against the environment's objectives. RPO is judged on the loss measured
    from the data; the backup's age stands in only when no heartbeat was found. A negative
    value fails: a time cannot run backwards, so the clocks it came from were wrong."""
    rpo, source = (rpo_measured_s, "measured") if rpo_measured_s is not None else (
        rpo_backup_age_s, "backup age")
    rto_detail = "the restore was not verified" if rto_s is None else _sign(rto_s)
    return [
        _check("objective.rto", "drill", f"<= {objectives.rto_s}", rto_s,
               rto_s is not None and 0 <= rto_s <= objectives.rto_s, rto_detail),
        _check("objective.rpo", "drill", f"<= {objectives.rpo_s}", rpo,
               rpo is not None and 0 <= rpo <= objectives.rpo_s,
               "; ".join(part for part in (source, _sign(rpo)) if part)),
    ]


def _sign(seconds: float | None) -> str:
    """Why a negative time fails whatever the objective: it is no measurement."""
    if seconds is None or seconds >= 0:
        return ""
    return "negative: the clocks it was read from disagree, so it proves nothing"


def failed(checks: Iterable[Check]) -> list[Check]:
    return [check for check in checks if not check.passed]
