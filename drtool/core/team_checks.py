"""The team's own checks (`drtool_checks`): what they declare, where each runs, and the
judging of what the verify phase measured.

A check is declared in the inventory, next to the components it reads:

    drtool_checks:
      - name: every-order-has-lines
        kind: sql
        component: main
        database: appdb
        query: SELECT count(*) FROM orders o WHERE NOT EXISTS (...)
        expect: {equals: 0}

Ansible measures (the drtool.drill.check_probe module, on the host the check belongs to);
this module judges, so that the same expectation means the same everywhere and a check
that could not measure is a failed check with its error, not a failed drill. Checks are
recorded as `team.<name>`: drtool's own checks never carry that prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from drtool.components.model import Component
from drtool.components.schema import error_key, error_message, name_problems
from drtool.core.model import FAILED, PASSED, Check

PREFIX = "team."
LIST = "drtool_checks"
KINDS = ("sql", "redis", "http", "command")
DEFAULT_TIMEOUT_S = 30
MAX_TIMEOUT_S = 600

_NUMBER = {"type": "number"}
EXPECT = {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "properties": {
        "equals": {"type": ["string", "number", "boolean", "null"]},
        "at_least": _NUMBER, "at_most": _NUMBER,
        "matches": {"type": "string", "minLength": 1},
        "rows": {"const": True},
        "equals_check": {"type": "string", "minLength": 1},
    },
}
_COMMON = {
    "name": {"type": "string"}, "kind": {"enum": list(KINDS)},
    "description": {"type": "string"},
    "timeout_s": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_S},
    "writes": {"type": "boolean"}, "expect": EXPECT,
}
_TEXT = {"type": "string", "minLength": 1}
SCHEMAS: dict[str, dict[str, Any]] = {
    "sql": {"required": ["component", "query", "expect"],
            "properties": {"component": _TEXT, "database": _TEXT, "query": _TEXT}},
    "redis": {"required": ["component"],
              "properties": {"component": _TEXT, "db": {"type": "integer", "minimum": 0},
                             "key": _TEXT, "pattern": _TEXT, "field": _TEXT,
                             "type": {"enum": ["string", "list", "set", "zset", "hash",
                                               "stream"]},
                             "ttl": {**EXPECT, "properties": {"at_least": _NUMBER,
                                                              "at_most": _NUMBER}}}},
    "http": {"required": ["url"],
             "properties": {"service": _TEXT, "host": _TEXT,
                            "url": {"type": "string", "pattern": "^https?://"},
                            "status": {"type": "integer", "minimum": 100, "maximum": 599},
                            "json_path": _TEXT}},
    "command": {"required": ["host", "argv"],
                "properties": {"host": _TEXT,
                               "argv": {"type": "array", "minItems": 1,
                                        "items": {"type": "string"}}}},
}


@dataclass(frozen=True)
class TeamCheck:
    """One declared check, with the host it runs on and what it names there."""

    name: str
    kind: str
    host: str
    target: str  # where it looks, as the journal names it
    spec: Mapping[str, Any]

    @property
    def recorded_as(self) -> str:
        return PREFIX + self.name

    @property
    def expect(self) -> Mapping[str, Any]:
        return self.spec.get("expect") or {}


def schema_of(kind: str) -> dict[str, Any]:
    spec = SCHEMAS[kind]
    return {"type": "object", "additionalProperties": False,
            "required": ["name", "kind", *spec["required"]],
            "properties": {**_COMMON, **spec["properties"]}}


def problems_of(entries: Any, components: tuple[Component, ...], hosts: set[str],
                target_hosts: set[str]) -> list[tuple[str, str]]:
    """Every problem of the `drtool_checks` list as (key, message): its structure and types,
    unique plain names, the components, databases, services and hosts it names, `expect`
    where a kind needs one, and `writes` only where a drill may write (a restore target)."""
    if entries in (None, "", []):
        return []
    if not isinstance(entries, list):
        return [(LIST, f"must be a list of checks, got {type(entries).__name__}")]
    found: list[tuple[str, str]] = []
    names: dict[str, str] = {}
    by_name = {c.name: c for c in components}
    for index, entry in enumerate(entries):
        key = f"{LIST}[{index}]"
        if not isinstance(entry, dict):
            found.append((key, "must be a mapping"))
            continue
        if isinstance(entry.get("name"), str):  # a name is judged even when the rest is wrong
            found += [(k or key, m) for k, m in name_problems(key, entry["name"], names, "check")]
        kind = entry.get("kind")
        if kind not in KINDS:
            found.append((f"{key}.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}"))
            continue
        validator = jsonschema.Draft202012Validator(schema_of(kind))
        errors = sorted(validator.iter_errors(entry), key=lambda e: list(e.absolute_path))
        found += [(error_key(key, e), error_message(e)) for e in errors]
        if errors:
            continue
        found += [(f"{key}.{k}", m) for k, m in _names(entry, by_name, hosts)]
        expect = entry.get("expect") or {}
        if "equals_check" in expect and expect["equals_check"] not in {
                e.get("name") for e in entries if isinstance(e, dict)}:
            found.append((f"{key}.expect.equals_check",
                          f"{expect['equals_check']!r} names no check"))
        if "matches" in expect:
            try:
                re.compile(expect["matches"])
            except re.error as exc:
                found.append((f"{key}.expect.matches", f"is not a regular expression: {exc}"))
        if kind == "redis" and ("key" in entry) == ("pattern" in entry):
            found.append((key, "a redis check names either a key or a pattern"))
        if kind == "redis" and "pattern" in entry and not expect:
            found.append((f"{key}.expect", "is missing (what count of keys is right?)"))
        if kind == "http" and ("service" in entry) == ("host" in entry):
            found.append((key, "an http check runs on a service's host or a named host: "
                               "give one of service or host"))
        if entry.get("writes") is True:
            host = host_of(entry, by_name)
            if host is not None and host not in target_hosts:
                found.append((f"{key}.writes", f"a check may write only on a restore target; "
                                               f"{host} is not one"))
    return found


def _names(entry: Mapping[str, Any], by_name: Mapping[str, Component], hosts: set[str]
           ) -> list[tuple[str, str]]:
    """Problems of the components, database, service and host a valid entry names."""
    kind, found = entry["kind"], []
    wanted = {"sql": "postgres", "redis": "redis"}.get(kind)
    if wanted:
        component = by_name.get(entry["component"])
        if component is None or component.kind != wanted:
            found.append(("component", f"{entry['component']!r} is not a {wanted} component"))
        elif kind == "sql" and component.all_databases:
            if "database" not in entry:  # which ones there will be, only the backup knows
                found.append(("database", f"is missing: {component.name} says databases: "
                                          "all, so a check names its database"))
        elif kind == "sql" and "database" in entry and (
                entry["database"] not in component.databases):
            found.append(("database", f"{entry['database']!r} is not a database of "
                                      f"{component.name}"))
    if "service" in entry:
        component = by_name.get(entry["service"])
        if component is None or component.kind != "service":
            found.append(("service", f"{entry['service']!r} is not a service"))
    if "host" in entry and entry["host"] not in hosts:
        found.append(("host", f"{entry['host']!r} is not a host of the inventory"))
    return found


def host_of(entry: Mapping[str, Any], by_name: Mapping[str, Component]) -> str | None:
    """The inventory host a check runs on: a data store's restore target, a service's host,
    or the host it names."""
    if "host" in entry:
        return str(entry["host"])
    component = by_name.get(entry.get("component") or entry.get("service") or "")
    return component.target.host if component and component.target else None


def from_entries(entries: Any, components: tuple[Component, ...]) -> tuple[TeamCheck, ...]:
    """The declared checks (of an inventory problems_of found nothing wrong with)."""
    by_name = {c.name: c for c in components}
    checks = []
    for entry in entries or []:
        host = host_of(entry, by_name) or ""
        kind = entry["kind"]
        if kind == "sql":
            component = by_name[entry["component"]]
            database = entry.get("database") or component.databases[0]
            target = f"{host}/{component.name}/{database}"
        elif kind == "redis":
            what = entry.get("key") or entry.get("pattern")
            target = f"{host}/{entry['component']}:db{entry.get('db', 0)} {what}"
        elif kind == "http":
            target = f"{host} {entry['url']}" + (f" {entry['json_path']}"
                                                 if entry.get("json_path") else "")
        else:
            target = f"{host} {' '.join(entry['argv'])}"
        checks.append(TeamCheck(entry["name"], kind, host, target, entry))
    return tuple(checks)


# -- judging --------------------------------------------------------------------------------

def judge_all(checks: tuple[TeamCheck, ...], measured: Mapping[str, Any]) -> list[Check]:
    """A Check for every declared check, from what the probes measured ({name: result}). A
    check no probe reported on failed: it did not run."""
    values = {name: (result or {}).get("value") for name, result in measured.items()
              if isinstance(result, dict) and not result.get("error")}
    return [judge(check, measured.get(check.name), values) for check in checks]


def judge(check: TeamCheck, result: Any, values: Mapping[str, Any]) -> Check:
    """Judge one check's measure against its declaration."""
    def verdict(expected: Any, actual: Any, ok: bool, detail: str = "") -> Check:
        return Check(check.recorded_as, check.target, expected, actual,
                     PASSED if ok else FAILED, detail)

    spec, expect = check.spec, check.expect
    wanted = describe(expect, values) if expect else None
    if not isinstance(result, dict):
        return verdict(wanted or "measured", None, False, "the check did not run")
    error = result.get("error")
    if check.kind == "http":
        status = spec.get("status", 200)
        if result.get("status") is not None and result["status"] != status:
            return verdict(f"HTTP {status}", f"HTTP {result['status']}", False, error or "")
    if error:
        return verdict(wanted or "measured", None, False, error)
    if check.kind == "redis" and "key" in spec:
        if not result.get("exists"):
            return verdict(wanted or "the key exists", "no such key", False)
        if spec.get("type") and result.get("type") != spec["type"]:
            return verdict(f"type {spec['type']}", f"type {result.get('type')}", False)
        if spec.get("ttl"):
            problem = unmet(spec["ttl"], result.get("ttl"), result, values)
            if problem is not None:
                return verdict(f"TTL {describe(spec['ttl'], values)}", result.get("ttl"), False,
                               problem)
        if "field" in spec and result.get("value") is None:
            return verdict(wanted or f"field {spec['field']}", "no such field", False)
    if not expect:
        shown = {"redis": "the key exists", "http": f"HTTP {spec.get('status', 200)}",
                 "command": "exit 0"}.get(check.kind, "measured")
        found = {"redis": f"exists ({result.get('type')})",
                 "http": f"HTTP {result.get('status')}"}.get(check.kind, result.get("value"))
        return verdict(shown, found, True)
    problem = unmet(expect, result.get("value"), result, values)
    actual = result.get("value")
    if "rows" in expect:
        actual = f"{result.get('rows', 0)} rows"
    return verdict(wanted, actual, problem is None, problem or "")


def unmet(expect: Mapping[str, Any], value: Any, result: Mapping[str, Any],
          values: Mapping[str, Any]) -> str | None:
    """Why `value` does not meet `expect`, or None when it does."""
    if expect.get("rows") and not result.get("rows"):
        return "the query returned no row"
    if "equals" in expect and not same(value, expect["equals"]):
        return "not equal"
    if "equals_check" in expect:
        other = expect["equals_check"]
        if other not in values:
            return f"check {other} measured nothing to compare with"
        if not same(value, values[other]):
            return f"not equal to what check {other} measured"
    for bound, holds in (("at_least", lambda v, b: v >= b), ("at_most", lambda v, b: v <= b)):
        if bound in expect:
            number = as_number(value)
            if number is None:
                return "not a number"
            if not holds(number, expect[bound]):
                return f"{bound.replace('_', ' ')} {shown(expect[bound])} not met"
    if "matches" in expect and (value is None or not re.search(expect["matches"], str(value))):
        return "does not match"
    return None


def same(value: Any, expected: Any) -> bool:
    """Equal as the inventory means it: numbers by value (a count of 0 equals "0"), the
    rest as text."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return str(value).lower() == str(expected).lower()
    a, b = as_number(value), as_number(expected)
    if a is not None and b is not None:
        return a == b
    return str(value) == str(expected) if value is not None else expected is None


def shown(number: float) -> str:
    """A bound as the inventory wrote it: 1000000, not 1e+06; 0.5 as 0.5."""
    return str(int(number)) if float(number).is_integer() else str(number)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def describe(expect: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    """The expectation as a person reads it: "= 0", ">= 1 and <= 9", "matches ^ok$"."""
    parts = []
    if "equals" in expect:
        parts.append(f"= {expect['equals']!r}" if isinstance(expect["equals"], str)
                     else f"= {expect['equals']}")
    if "equals_check" in expect:
        other = expect["equals_check"]
        parts.append(f"= {PREFIX}{other}" + (f" ({values[other]})" if other in values else ""))
    if "at_least" in expect:
        parts.append(f">= {shown(expect['at_least'])}")
    if "at_most" in expect:
        parts.append(f"<= {shown(expect['at_most'])}")
    if "matches" in expect:
        parts.append(f"matches {expect['matches']}")
    if expect.get("rows"):
        parts.append("at least one row")
    return " and ".join(parts)
