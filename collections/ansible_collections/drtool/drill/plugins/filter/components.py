"""Filters that read an environment's components (drtool_postgres_clusters,
drtool_redis_instances, drtool_services) for the plays that run them.

A component is a list entry with a stable `name`; a data component has a `source` and a
`target` side, each naming an inventory `host`; a service names its `host` directly. Any
component may also declare a `recovery` side: where `drtool recover` restores it (or, for a
service, how it runs there) on the day of a real disaster. A recovery runs every phase with
`drtool_target_side: recovery`: the roles still act on their "target", found at the
component's `recovery` side instead (see `place`). The
roles take flat variables (drtool_postgres_port, ...): `resolve` gives one component's
values for one side, by the role's variable names without their prefix, from (lowest first)
the role's defaults, the host's own variables, the component's keys and its side's keys.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# A side's `address` is where the server listens as seen from that side's host: the roles
# call it `host` (drtool_postgres_host). A side's `host` is the inventory host it is on.
SIDE_KEYS = {"address": "host", "host": "inventory_host"}
SIDES = ("source", "target")
# The side `drtool recover` restores onto; a service's inherits the service's `host`.
RECOVERY = "recovery"
# Each kind's inventory list (roles/drtool_component/defaults/main.yml runs them in order).
LISTS = {"postgres": "drtool_postgres_clusters", "redis": "drtool_redis_instances",
         "files": "drtool_file_trees", "service": "drtool_services"}
# Keys whose values are secrets (a role's drtool_postgres_password, a {role: password} map):
# `described` neither publishes them nor reads a host's variable for them (it would resolve a
# vault or file lookup just to describe the environment); `public` says only that they are set.
SECRET_KEYS = ("password", "role_passwords")


def _entries(entries):
    if entries in (None, ""):
        return []
    if not isinstance(entries, list):
        raise AnsibleFilterError(f"components must be a list, got {type(entries).__name__}")
    return entries


def _side(entry, side):
    """The dict of `side` of a component entry; a service's side is the entry itself, and
    its recovery side the service's `host` with what its `recovery` sets."""
    if side == "host":
        return entry
    value = entry.get(side) if isinstance(entry, dict) else None
    if not isinstance(value, dict):
        return {}
    if side == RECOVERY and "host" not in value and "source" not in entry and "host" in entry:
        return {"host": entry["host"], **value}
    return value


def place(side, targets="target", service=False):
    """The key a component's `side` is found at: a target is at `targets` ("target" in a
    drill, "recovery" in a recovery); a service's target is the entry itself ("host")."""
    if side != "target":
        return side
    if targets == RECOVERY:
        return RECOVERY
    return "host" if service else "target"


def on_host(entries, side, host):
    """The names of the components whose `side` ("source", "target", or "host" for a
    service) is on inventory host `host`, in their declared order."""
    return [entry.get("name") for entry in _entries(entries)
            if isinstance(entry, dict) and _side(entry, side).get("host") == host]


def field(data, path):
    """The value at a dotted `path` in parsed JSON (a list index is a number: items.0.state);
    None when the path leads nowhere."""
    value = data
    for part in str(path).split(".") if path else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def waves(services):
    """The services' names in waves: each wave's services depend (`after`) only on services
    of earlier waves. Names of other components in `after` are restored before any service
    starts, so only services order services. A cycle is an error."""
    entries = [e for e in _entries(services) if isinstance(e, dict)]
    names = {e.get("name") for e in entries}
    needs = {e.get("name"): {a for a in e.get("after") or [] if a in names} for e in entries}
    out, done = [], set()
    while len(done) < len(needs):
        wave = [n for n in (e.get("name") for e in entries)
                if n not in done and needs[n] <= done]
        if not wave:
            raise AnsibleFilterError("the services' `after` form a cycle: "
                                     + ", ".join(sorted(set(needs) - done)))
        out.append(wave)
        done.update(wave)
    return out


def only(names, wanted=None):
    """`names` restricted to `wanted` (drtool_only_components: a run of some components
    only, as drtool runs the restores side by side); all of them when `wanted` is None."""
    if wanted is None:
        return list(names)
    return [name for name in names if name in wanted]


def components_of(kinds, host_vars, host, side, wanted=None, targets="target"):
    """[{kind, name, at}] of every component on `host` at `side`, kind by kind in the order
    of `kinds` (drtool_component_kinds entries: {kind, list}), each kind's in declared order;
    a service is on its `host`; only those named in `wanted` unless it is None; `at`: the key
    its side is found at (see `place`). One list for one include loop: a phase dispatches
    each component without an include per kind."""
    found = []
    for entry in kinds:
        entries = host_vars.get(entry["list"], [])
        at = place(side, targets, entry["kind"] == "service")
        names = on_host(entries, at, host)
        found += [{"kind": entry["kind"], "name": name, "at": at} for name in only(names, wanted)]
    return found


def here(host_vars, host, side="target", kinds=None, targets="target"):
    """The names of every component (of `kinds`, default all) on `host` at `side` (a target
    at `targets`: see `place`), read from the host's variables; a service counts as a
    target."""
    names = []
    for kind, variable in LISTS.items():
        if kinds is not None and kind not in kinds:
            continue
        entries = host_vars.get(variable, [])
        if kind == "service" and side != "target":
            continue
        names += on_host(entries, place(side, targets, kind == "service"), host)
    return names


def sides_on(entries, hosts, mine=None):
    """Every side of the components in `entries` that is on one of `hosts`, as
    [{name, side, host, mine}] (`mine`: the side is on host `mine`), for the guard's
    identity rule: which servers to ask what they are."""
    out = []
    for entry in _entries(entries):
        if not isinstance(entry, dict):
            continue
        for side in SIDES:
            host = _side(entry, side).get("host")
            if host in hosts or host == mine:
                out.append({"name": entry.get("name"), "side": side, "host": host,
                            "mine": host == mine and side == "target"})
    return [s for s in out if s["mine"] or s["host"] != mine]


def resolve(entries, name, side, host_vars, role_defaults, prefix):
    """Component `name`'s values for `side`, keyed as the role's variables without `prefix`
    ("drtool_postgres_"); `component_name` is its name."""
    entry = next((e for e in _entries(entries) if isinstance(e, dict) and e.get("name") == name),
                 None)
    if entry is None:
        raise AnsibleFilterError(f"no component named {name!r}")
    out = {}
    for variable, default in (role_defaults or {}).items():
        if variable.startswith(prefix):
            out[variable[len(prefix):]] = host_vars.get(variable, default)
    for key, value in entry.items():
        if key not in (*SIDES, RECOVERY, "name", "host"):
            out[key] = value
    for key, value in _side(entry, side).items():
        out[SIDE_KEYS.get(key, key)] = value
    out["component_name"] = name
    return out


def checks_on(checks, host, host_vars, targets="target"):
    """The names of the team's checks (drtool_checks) that run on inventory host `host`: a
    check of a data component runs on its restore target's host (at `targets`: see
    `place`), one of a service on the service's host, and one that names a `host` there."""
    where = {}
    for variable in (LISTS["postgres"], LISTS["redis"]):
        for entry in _entries(host_vars.get(variable)):
            if isinstance(entry, dict):
                where[entry.get("name")] = _side(entry, place("target", targets)).get("host")
    for entry in _entries(host_vars.get(LISTS["service"])):
        if isinstance(entry, dict):
            where[entry.get("name")] = _side(entry, place("target", targets, True)).get("host")
    return [check.get("name") for check in _entries(checks) if isinstance(check, dict)
            and (check.get("host") or where.get(check.get("component") or check.get("service")))
            == host]


def described(host_vars, host, defaults):
    """Every component side on `host`, resolved as its role would run it, without secrets:
    [{name, kind, side, values}] for playbooks/describe.yml. `defaults`: {kind: the kind
    role's defaults}."""
    out = []
    for kind, variable in LISTS.items():
        entries = host_vars.get(variable, [])
        sides = ("host", RECOVERY) if kind == "service" else (*SIDES, RECOVERY)
        prefix = "drtool_%s_" % kind
        kind_defaults = {k: v for k, v in (defaults.get(kind) or {}).items()
                         if k[len(prefix):] not in SECRET_KEYS}
        for side in sides:
            for name in on_host(entries, side, host):
                values = resolve(entries, name, side, host_vars, kind_defaults, prefix)
                out.append({"name": name, "kind": kind,
                            "side": "target" if side == "host" else side,
                            "values": public(values)})
    return out


def public(entries, secret_keys=SECRET_KEYS):
    """The entries without their secret keys (for playbooks/describe.yml)."""
    def hidden(value):
        # A map of secrets ({role: password}) keeps its keys, which are no secret.
        return {k: "(set)" for k in value} if isinstance(value, dict) else "(set)"

    def strip(value):
        if isinstance(value, dict):
            return {k: (hidden(v) if k in secret_keys and v not in (None, "") else strip(v))
                    for k, v in value.items() if k not in secret_keys or v not in (None, "")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(entries if isinstance(entries, dict) else _entries(entries))


class FilterModule:
    def filters(self):
        return {"on_host": on_host, "only": only, "here": here,
                "components_of": components_of, "field": field, "waves": waves,
                "resolve": resolve, "public": public, "described": described,
                "sides_on": sides_on, "checks_on": checks_on, "place": place}
