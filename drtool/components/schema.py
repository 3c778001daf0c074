"""The components' schema, and every problem of an inventory's component lists.

One place says what a component takes: the kind role's defaults
(roles/drtool_<kind>/defaults/main.yml). Every `drtool_<kind>_<key>` there is a key a
component (or one of its sides) may set, of the type its argument spec gives (else the
default's); the roles resolve a
component the same way (the drtool.drill.resolve filter: role default, then the host's
variable, then the component's key, then its side's). Around those keys each kind has a
small fixed structure (name, source/target with their host, a cluster's databases, a
service's host and `after`). JSON Schema (jsonschema) checks the structure and the types;
the rules between entries (unique names, known hosts, `after` naming components) are
checked here, and every problem is given with its key, e.g.
`drtool_redis_instances[1].target.port`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from drtool.components import methods

# Each kind: its inventory list, and the keys beyond its role's defaults. `sides`: whether a
# component has a source and a target (a service has only its host).
KINDS: dict[str, dict[str, Any]] = {
    "postgres": {"list": "drtool_postgres_clusters", "sides": True,
                 # A list of databases, or `all`: every one the source has at preflight.
                 "entry": {"databases": {"anyOf": [
                     {"type": "array", "minItems": 1, "uniqueItems": True,
                      "items": {"type": "string", "minLength": 1, "not": {"const": "postgres"},
                                # a folder of the backup: postgres/CLUSTER/DATABASE
                                "pattern": r"^(?!\.\.?$)[^/\x00-\x1f\x7f]+$"}},
                     {"const": "all"}]},
                     "method": {"enum": methods.names()}},
                 "side": {"data_dir": {"type": "string"}, "method": {"enum": methods.names()}}},
    "redis": {"list": "drtool_redis_instances", "sides": True, "entry": {}, "side": {}},
    # A tree's sides must each say where the tree is.
    "files": {"list": "drtool_file_trees", "sides": True, "entry": {},
              "side": {"path": {"type": "string", "minLength": 1}}, "side_required": ["path"]},
    "service": {"list": "drtool_services", "sides": False,
                "entry": {"host": {"type": "string", "minLength": 1},
                          "after": {"type": "array", "uniqueItems": True,
                                    "items": {"type": "string"}}},
                "side": {}},
}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
NUMBER = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^\s*[0-9]+\s*$"}]}


def role_defaults(roles: Path, kind: str) -> dict[str, Any]:
    """The kind role's defaults, by key without the `drtool_<kind>_` prefix."""
    return dict(_defaults(roles, kind))


@functools.lru_cache(maxsize=8)
def _defaults(roles: Path, kind: str) -> tuple[tuple[str, Any], ...]:
    data = yaml.safe_load((roles / f"drtool_{kind}" / "defaults" / "main.yml").read_text(
        encoding="utf-8")) or {}
    prefix = f"drtool_{kind}_"
    return tuple((k[len(prefix):], v) for k, v in data.items() if k.startswith(prefix))


@functools.lru_cache(maxsize=8)
def _spec_options(roles: Path, kind: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Each `drtool_<kind>_<key>`'s option in the role's argument specs (by key)."""
    path = roles / f"drtool_{kind}" / "meta" / "argument_specs.yml"
    specs = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("argument_specs") or {}
    prefix, found = f"drtool_{kind}_", dict[str, dict[str, Any]]()
    for entry in specs.values():
        for name, option in ((entry or {}).get("options") or {}).items():
            if name.startswith(prefix) and isinstance(option, dict):
                found.setdefault(name[len(prefix):], option)
    return tuple(found.items())


def _spec_types(roles: Path, kind: str) -> tuple[tuple[str, str], ...]:
    """The type each `drtool_<kind>_<key>` has in the role's argument specs (by key)."""
    return tuple((key, str(option.get("type", "str")))
                 for key, option in _spec_options(roles, kind))


def _spec_choices(roles: Path, kind: str) -> dict[str, list[Any]]:
    """The values a `drtool_<kind>_<key>` is limited to by the argument specs' choices."""
    return {key: list(option["choices"]) for key, option in _spec_options(roles, kind)
            if isinstance(option.get("choices"), list)}


# The argument specs' types as JSON Schema; `raw` takes any value.
SPEC_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"}, "path": {"type": "string"}, "int": {},  # int: NUMBER below
    "bool": {"type": "boolean"}, "list": {"type": "array"}, "dict": {"type": "object"},
    "raw": {},
}


def _type_of(default: Any) -> dict[str, Any]:
    """The JSON Schema of a value like `default` (a number may come templated, as text)."""
    if isinstance(default, bool):
        return {"type": "boolean"}
    if isinstance(default, int):
        return NUMBER
    if isinstance(default, list):
        return {"type": "array"}
    if isinstance(default, dict):
        return {"type": "object"}
    return {"type": "string"}


def entry_schema(roles: Path, kind: str) -> dict[str, Any]:
    """The JSON Schema of one entry of the kind's list."""
    spec = KINDS[kind]
    typed = dict(_spec_types(roles, kind))
    settings = {key: (NUMBER if typed.get(key) == "int" else SPEC_TYPES[typed[key]])
                if typed.get(key) in SPEC_TYPES else _type_of(value)
                for key, value in role_defaults(roles, kind).items()}
    settings.update({key: {"enum": values} for key, values in _spec_choices(roles, kind).items()
                     if key in settings})
    side = {"type": "object", "required": ["host", *spec.get("side_required", [])],
            "additionalProperties": False,
            "properties": {"host": {"type": "string", "minLength": 1},
                           "address": {"type": "string", "minLength": 1},
                           **settings, **spec["side"]}}
    properties = {"name": {"type": "string"}, **settings, **spec["entry"]}
    required = ["name"]
    if spec["sides"]:
        # `recovery`: where `drtool recover` restores it on the day of a real disaster.
        properties.update(source=side, target=side, recovery=side)
        required += ["source", "target"]
    else:
        required.append("host")
        # A service's recovery: how it runs once its stores are recovered (its host, unless
        # it says another, and any of its settings).
        properties["recovery"] = {"type": "object", "additionalProperties": False,
                                  "properties": {"host": {"type": "string", "minLength": 1},
                                                 **settings}}
    return {"type": "object", "required": required, "additionalProperties": False,
            "properties": properties}


def problems_of(lists: Mapping[str, Any], hosts: set[str], roles: Path
                ) -> list[tuple[str | None, str]]:
    """Every problem of the component lists as (key, message): structure and types, then
    names (unique across every kind, a plain word), hosts (in the inventory), a service's
    `after` (names of components) and at least one component in all."""
    found: list[tuple[str | None, str]] = []
    names: dict[str, str] = {}
    afters: list[tuple[str, list[Any]]] = []
    total = 0
    for kind, spec in KINDS.items():
        variable = spec["list"]
        entries = lists.get(variable)
        if entries in (None, "", []):
            continue
        if not isinstance(entries, list):
            found.append((variable, f"must be a list of components, got {_shown(entries)}"))
            total += 1  # declared, wrongly: that is the problem to report
            continue
        validator = jsonschema.Draft202012Validator(entry_schema(roles, kind))
        for index, entry in enumerate(entries):
            key = f"{variable}[{index}]"
            total += 1
            errors = sorted(validator.iter_errors(entry), key=lambda e: list(e.absolute_path))
            found += [(error_key(key, error), error_message(error)) for error in errors]
            if not isinstance(entry, dict):
                continue
            name = entry.get("name")
            if isinstance(name, str):
                found += name_problems(key, name, names, "component")
            for side in ("source", "target", "recovery", None):
                where = entry.get(side) if side else (entry if not spec["sides"] else None)
                host = where.get("host") if isinstance(where, dict) else None
                if isinstance(host, str) and host and host not in hosts:
                    found.append((f"{key}.{side}.host" if side else f"{key}.host",
                                  f"{host!r} is not a host of the inventory"))
            if isinstance(entry.get("after"), list):
                afters.append((f"{key}.after", entry["after"]))
    for key, after in afters:
        for name in after:
            if isinstance(name, str) and name not in names:
                found.append((key, f"{name!r} names no component"))
    found += _cycles(lists.get(KINDS["service"]["list"]))
    if total == 0:
        found.append((None, "the environment declares no component: list its data stores and "
                            "services in " + ", ".join(s["list"] for s in KINDS.values())))
    return found


def name_problems(key: str, name: str, names: dict[str, str], what: str
                  ) -> list[tuple[str | None, str]]:
    """The problem of entry `key`'s `name`: not a plain word, or taken already by another
    entry of `names` ({name: key}, which a good name joins)."""
    if not NAME.match(name):
        return [(f"{key}.name", "must be a plain name (letters, digits, '.', '_', '-'), got "
                                f"{_shown(name)}")]
    if name in names:
        return [(f"{key}.name", f"{name!r} is also the name of {names[name]}: {what} names "
                                "are unique")]
    names[name] = key
    return []


def _cycles(services: Any) -> list[tuple[str | None, str]]:
    """A problem when the services' `after` (between services) form a cycle: none of them
    could start."""
    if not isinstance(services, list):
        return []
    entries = [e for e in services if isinstance(e, dict) and isinstance(e.get("name"), str)]
    names = {e["name"] for e in entries}
    needs = {e["name"]: {a for a in e.get("after") or [] if a in names}
             for e in entries if isinstance(e.get("after") or [], list)}
    done: set[str] = set()
    while True:
        ready = {n for n, wants in needs.items() if n not in done and wants <= done}
        if not ready:
            break
        done |= ready
    stuck = sorted(set(needs) - done)
    if not stuck:
        return []
    return [(KINDS["service"]["list"], "the services' `after` form a cycle, so none of "
                                       f"{', '.join(stuck)} could start")]


def error_key(base: str, error: jsonschema.ValidationError) -> str:
    key = base
    for part in error.absolute_path:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        key += f".{missing.group(1)}" if missing else ""
    return key


def error_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return "is missing"
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return (f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                f"(known: {', '.join(sorted(error.schema.get('properties', {})))})")
    if error.validator == "anyOf" and list(error.absolute_path)[-1:] == ["databases"]:
        return _databases_message(error.instance)
    if error.validator in ("type", "anyOf"):
        wanted = error.schema.get("type") or "a number"
        return f"must be {_article(wanted)}, got {_shown(error.instance)}"
    if error.validator == "minItems":
        return "must not be empty"
    if error.validator == "uniqueItems":
        return "lists a name twice"
    if error.validator == "minLength":
        return "must not be empty"
    return error.message


def _databases_message(value: Any) -> str:
    """Why a postgres component's `databases` is wrong (a list of names, or `all`)."""
    if isinstance(value, list) and "postgres" in value:
        return ("must not list postgres: it is the maintenance database drtool connects to "
                "while it drops and recreates the others")
    if isinstance(value, list) and not value:
        return "must not be empty"
    if isinstance(value, list) and any(
            isinstance(v, str) and (v in (".", "..") or "/" in v or any(
                ord(c) < 32 or ord(c) == 127 for c in v)) for v in value):
        return ("must name databases that can be folders of a backup: no '/', '.', '..' or "
                "control characters")
    if isinstance(value, list) and len(set(map(repr, value))) < len(value):
        return "lists a name twice"
    return f"must be a list of database names or all, got {_shown(value)}"


def _article(wanted: Any) -> str:
    names = {"string": "a string", "object": "a mapping", "array": "a list",
             "boolean": "true or false", "integer": "a whole number"}
    return names.get(str(wanted), str(wanted))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
