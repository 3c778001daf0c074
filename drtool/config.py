"""Environments: an inventory found by name, resolved by Ansible once, validated up front.

Every problem is collected and reported at once, each with the inventory file and the key
(or host) it concerns (exit 2), before anything runs.
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re
import shlex
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from drtool import components as kinds
from drtool import paths
from drtool.adapters.execute import run
from drtool.components import Component, Place, schema
from drtool.components import postgres as postgres_kind
from drtool.core import team_checks
from drtool.core.model import Objectives
from drtool.core.phases import ALL_PHASES
from drtool.core.team_checks import TeamCheck
from drtool.core.timing import parse_phase_limits
from drtool.errors import ConfigError, DrtoolError
from drtool.ops.notify import NotifySettings, parse_settings
from drtool.store.settings import EvidenceSettings, S3StoreSettings, parse_evidence, parse_store

ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
THIS_MACHINE = "this machine"  # what a local connection, or a loopback address, points at
# The only tiers in which destructive steps may run, compared exactly (no case folding, no
# trimming): every other value, empty and null included, is production. An environment adds
# its own with `drtool_nonproduction_tiers`; roles/drtool_guard/defaults/main.yml holds the
# same list for the Ansible side of the guard.
NONPRODUCTION_TIERS = ("sandbox", "lab", "dev", "test", "staging", "drill")
SSH_CONFIG_TIMEOUT_S = 5  # `ssh -G` only reads configuration files
# Described settings that may hold credentials or tokens: kept out of the host settings (which
# plans and journals show), in Environment's own fields only.
SECRET_SETTINGS = ("notify", "store_s3", "evidence_s3")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an inventory: the key or host it concerns, and why."""

    message: str
    key: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class Inventory:
    """Where an environment's hosts and settings come from: the folder `--env NAME` found,
    or the sources `-i` gave, as ansible-playbook takes them (files, folders, inventory
    plugins' files), in order."""

    sources: tuple[Path, ...]

    def __str__(self) -> str:
        return ", ".join(str(s) for s in self.sources)

    @property
    def folder(self) -> Path:
        """The folder of the first source: where problems are located and whose git
        commit a journal records."""
        first = self.sources[0]
        return first.parent if first.is_file() else first


@dataclass(frozen=True)
class Environment:
    """One environment's drill configuration, as its inventory declares it."""

    name: str
    inventory: Inventory
    tier: str
    objectives: Objectives
    groups: dict[str, tuple[str, ...]]
    hosts: dict[str, dict[str, Any]]  # as playbooks/describe.yml resolved them
    components: tuple[Component, ...]
    store_root: Path
    growing_tables: tuple[str, ...]
    cadence_days: float | None = None
    requires_sandbox: bool = False
    notify: NotifySettings = NotifySettings()
    store_s3: S3StoreSettings | None = None  # None: backups stay in store_root
    evidence_s3: EvidenceSettings | None = None  # an Object Lock bucket for evidence copies
    # Seconds each phase may run (drtool_phase_timeout_s); a phase it leaves out gets
    # core.timing's default, derived from the RTO objective.
    phase_time_limits: dict[str, float] | None = None
    # The team's own checks of the restored data (drtool_checks), run in the verify phase.
    checks: tuple[TeamCheck, ...] = ()
    # A recovery's view (`drtool recover`): each component's target is its recovery side;
    # `unrecovered` names the components that declare none (no phase touches them).
    recovering: bool = False
    unrecovered: tuple[str, ...] = ()
    # Whom the runbook names (drtool_contacts): ({name, role, reach}, ...).
    contacts: tuple[dict[str, str], ...] = ()

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def production_hosts(self) -> frozenset[str]:
        """The hosts whose own tier counts as production (see is_nonproduction)."""
        return frozenset(h for h, s in self.hosts.items()
                         if not is_nonproduction(s.get("tier"), nonproduction_tiers(s)))


# The inventories given by path (-i) in this process, by the environment's name.
_GIVEN: dict[str, Inventory] = {}


def give_inventory(name: str, sources: Sequence[Path]) -> Inventory:
    """Record that environment `name` is the inventory at `sources` (-i) for this process:
    find_inventory(name) returns it instead of looking `name` up."""
    _GIVEN[name] = Inventory(tuple(Path(s).resolve() for s in sources))
    return _GIVEN[name]


def forget_given_inventories() -> None:
    """Forget the inventories given so far: a command starts with none."""
    _GIVEN.clear()


def given_inventory(name: str) -> Inventory | None:
    """The inventory -i gave for environment `name` in this process, if any."""
    return _GIVEN.get(name)


def name_from_sources(sources: Sequence[Path]) -> str:
    """An environment's name when only -i was given: the first source's folder name (a
    file's own folder), or ConfigError saying to give --env."""
    name = Inventory((Path(sources[0]).resolve(),)).folder.name
    if not ENV_NAME.match(name):
        raise ConfigError(f"cannot name the environment of {sources[0]} after its folder "
                          f"{name!r}: give --env NAME or set drtool_env_name")
    return name


def inventory_search_path() -> list[Path]:
    """Where `--env NAME` looks for inventories/NAME, in order."""
    return [paths.content_root() / "inventories", paths.drtool_home() / "inventories"]


def known_environments() -> list[str]:
    """The environment names `--env` finds, sorted."""
    return sorted({p.name for f in inventory_search_path() if f.is_dir() for p in f.iterdir()
                   if p.is_dir() and ENV_NAME.match(p.name)})


def find_inventory(name: str) -> Inventory:
    """The inventory of environment `name`: the one -i gave, else inventories/NAME in the
    search path; ConfigError otherwise."""
    if not ENV_NAME.match(name):
        raise ConfigError(f"not an environment name: {name!r}")
    if name in _GIVEN:
        return _GIVEN[name]
    for folder in inventory_search_path():
        if (folder / name).is_dir():
            return Inventory((folder / name,))
    known = known_environments()
    raise ConfigError(f"unknown environment {name!r} (known: {', '.join(known) or 'none'}; "
                      "or give its inventory with -i PATH)")


def _positive_number(value: Any) -> float | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def check_environment(name: str, described: dict[str, dict[str, Any]],
                      recovering: bool = False
                      ) -> tuple[dict[str, Any], list[Problem], list[Problem]]:
    """Judge an environment from its described hosts; return its settings, every problem,
    and every refusal of the production guard. With `recovering`, the components are the
    recovery's (each target its recovery side) and the refusals the recovery's rules.

    Given {host: settings} as playbooks/describe.yml resolved them; the only outside look is
    `ssh -G` for the ssh hosts whose connection_address is not known yet (and DNS).
    """
    described = with_connection_addresses(described)
    problems: list[Problem] = []
    groups = {g: tuple(sorted(h for h, d in described.items() if g in d.get("groups", [])))
              for g in sorted({g for d in described.values() for g in d.get("groups", [])})}
    every = sorted(described)
    first = described[every[0]] if every else {}
    lists = setting_of(described, "component_lists", "drtool_postgres_clusters", problems) or {}
    problems += [Problem(message, key=key) for key, message in schema.problems_of(
        lists, set(described), paths.content_root() / "roles")]
    components = kinds.from_described(described)
    problems += [Problem(message, key=key) for component in kinds.of_family(components, "postgres")
                 for key, message in postgres_kind.method_problems(component)]

    def setting(field: str, key: str) -> Any:
        return setting_of(described, field, key, problems)

    objectives = {}
    for field, key in (("rto_objective_s", "drtool_rto_objective_s"),
                       ("rpo_objective_s", "drtool_rpo_objective_s")):
        value = _positive_number(setting(field, key))
        if value is None:
            problems.append(Problem(f"must be a positive number of seconds, got "
                                    f"{first.get(field)!r}", key=key))
        objectives[field] = value or 0.0
    contacts, contact_problem = parse_contacts(setting("contacts", "drtool_contacts"))
    if contact_problem:
        problems.append(Problem(contact_problem, key="drtool_contacts"))
    cadence = setting("cadence_days", "drtool_drill_cadence_days")
    if cadence not in (None, "") and _positive_number(cadence) is None:
        problems.append(Problem(f"must be a positive number of days, got {cadence!r}",
                                key="drtool_drill_cadence_days"))
    growing = setting("growing_tables", "drtool_verify_growing_tables") or []
    if not isinstance(growing, list) or not all(isinstance(t, str) for t in growing):
        problems.append(Problem("must be a list of schema.table names",
                                key="drtool_verify_growing_tables"))
        growing = []
    store = setting("store_path", "drtool_store_path")
    if store not in (None, "") and (not isinstance(store, str) or not Path(store).is_absolute()):
        problems.append(Problem(f"must be an absolute path, got {store!r}",
                                key="drtool_store_path"))
        store = None
    problems += deletable_path_problems(
        described, components,
        store if isinstance(store, str) and store else str(paths.backups_dir(name)))
    phase_limits, limit_problems = parse_phase_limits(
        setting("phase_timeout_s", "drtool_phase_timeout_s"), ALL_PHASES)
    problems += [Problem(message, key=key) for key, message in limit_problems]
    notify, notify_problems = parse_settings(setting("notify", "drtool_notify"))
    problems += [Problem(message, key=key) for key, message in notify_problems]
    store_s3, s3_problems = parse_store(setting("store_s3", "drtool_store_s3"))
    evidence_s3, evidence_problems = parse_evidence(setting("evidence_s3", "drtool_evidence_s3"))
    problems += [Problem(message, key=key) for key, message in s3_problems + evidence_problems]
    _declared, tiers_problem = declared_tiers(setting("nonproduction_tiers",
                                                      "drtool_nonproduction_tiers"))
    if tiers_problem:
        problems.append(Problem(tiers_problem, key="drtool_nonproduction_tiers"))
    refusals = guard_problems(components, described)
    drilled = components
    if recovering:
        components = kinds.from_described(described, kinds.RECOVERY)
        refusals = recovery_problems(components, drilled, described)
    targets = list(kinds.targets(components))
    declared_checks = setting("checks", team_checks.LIST)
    check_problems = team_checks.problems_of(declared_checks, drilled, set(described),
                                             set(kinds.targets(drilled)))
    if recovering and not check_problems:
        # A recovery runs the checks of what it recovers (and those naming their host).
        names = {c.name for c in components}
        declared_checks = [e for e in declared_checks or [] if "host" in e
                           or (e.get("component") or e.get("service")) in names]
    problems += [Problem(message, key=key) for key, message in check_problems]
    tiers = {described[h].get("tier") for h in targets}
    settings = {
        "groups": groups, "components": components,
        "objectives": Objectives(objectives["rto_objective_s"], objectives["rpo_objective_s"]),
        "tier": tiers.pop() if len(tiers) == 1 else "mixed", "growing": tuple(growing),
        # Every target's tier counts as production: drills are refused, backups run.
        "production": bool(targets) and not any(
            is_nonproduction(described[h].get("tier"), nonproduction_tiers(described[h]))
            for h in targets),
        "store": store, "cadence": _positive_number(cadence),
        "requires_sandbox": first.get("requires_sandbox") is True, "notify": notify,
        "store_s3": store_s3, "evidence_s3": evidence_s3, "phase_limits": phase_limits,
        "checks": () if check_problems else team_checks.from_entries(declared_checks,
                                                                     components),
        "contacts": contacts,
        "unrecovered": tuple(c.name for c in drilled
                             if c.name not in {r.name for r in components}),
    }
    return settings, problems, refusals


CONTACT_KEYS = ("name", "role", "reach")


def parse_contacts(value: Any) -> tuple[tuple[dict[str, str], ...], str | None]:
    """`drtool_contacts`: a list of {name, role, reach} (name required, each a line of
    text), whom a runbook names on the day; (contacts, problem)."""
    if value in (None, "", []):
        return (), None
    why = ("must be a list of {name, role, reach}, each a line of text (name required): "
           "the people the runbook names")
    if not isinstance(value, list):
        return (), why
    out = []
    for entry in value:
        if (not isinstance(entry, dict) or set(entry) - set(CONTACT_KEYS)
                or not isinstance(entry.get("name"), str) or not entry["name"].strip()
                or not all(isinstance(v, str) and "\n" not in v for v in entry.values())):
            return (), why
        out.append({k: str(entry.get(k) or "") for k in CONTACT_KEYS})
    return tuple(out), None


def setting_of(described: dict[str, dict[str, Any]], field: str, key: str,
               problems: list[Problem]) -> Any:
    """An environment-wide setting as the hosts describe it; a Problem when two hosts see
    it differently (it belongs in group_vars/all)."""
    every = sorted(described)
    if len({repr(described[h].get(field)) for h in every}) > 1:
        problems.append(Problem("differs between hosts; set it once in group_vars/all",
                                key=key))
    return described[every[0]].get(field) if every else None


def environment_from_description(name: str, inventory: Inventory | Path,
                                 described: dict[str, dict[str, Any]],
                                 touches_targets: bool = True,
                                 recovering: bool = False) -> Environment:
    """Build an Environment, or raise ConfigError listing every problem with its file.

    The production guard's refusals count only when the operation touches the restore
    targets: a backup of a production environment only reads its primaries. Each host
    keeps the connection_address the guard judged (see with_connection_addresses).
    """
    if isinstance(inventory, Path):
        inventory = Inventory((inventory,))
    described = with_connection_addresses(described)
    settings, problems, refusals = check_environment(name, described, recovering)
    if touches_targets or recovering:
        problems += refusals
    if problems:
        raise ConfigError(f"inventory {inventory} is not usable",
                          [render(inventory.folder, p) for p in problems])
    hosts = {host: {k: v for k, v in values.items() if k not in SECRET_SETTINGS}
             for host, values in described.items()}
    return Environment(
        name=name, inventory=inventory, tier=settings["tier"],
        objectives=settings["objectives"], groups=settings["groups"], hosts=hosts,
        components=settings["components"],
        store_root=Path(settings["store"]) if settings["store"] else paths.backups_dir(name),
        growing_tables=settings["growing"], cadence_days=settings["cadence"],
        requires_sandbox=settings["requires_sandbox"], notify=settings["notify"],
        store_s3=settings["store_s3"], evidence_s3=settings["evidence_s3"],
        phase_time_limits=settings["phase_limits"], checks=settings["checks"],
        recovering=recovering, unrecovered=settings["unrecovered"] if recovering else (),
        contacts=settings["contacts"],
    )


# -- paths drtool writes into and later deletes ----------------------------------------------

# What drtool deletes on a host after writing it: a backup's staging copy (drtool_backup_path)
# and a drill's safety snapshot (drtool_snapshot_path); on this machine, the backups in the
# store (drtool_store_path, also the S3 store's staging folder) when they are pruned.
DELETABLE_PATHS = (("backup_path", "drtool_backup_path"),
                   ("snapshot_path", "drtool_snapshot_path"))
# describe's stand-in for drtool_store_backup_path: the store's folder of one backup.
STORE_BACKUP_PATH = "STORE_PATH"


@dataclass(frozen=True)
class DataDirectory:
    """A data store's directory on a host, as its inventory declares it."""

    host: str
    store: str  # "PostgreSQL" or "Redis"
    key: str  # the setting that declares it
    path: PurePosixPath


def data_directories(components: tuple[Component, ...]
                     ) -> tuple[list[DataDirectory], list[Problem]]:
    """Every data directory the components declare, and a Problem for each that is not an
    absolute path: a postgres component's cluster (drtool_postgres_data_dir) and a redis
    component's `dir`, the folder of drtool_redis_rdb_path (a restore target without one
    loads the role's default, components.redis.RDB_DEFAULT), on each side."""
    found, problems, seen = [], [], set()
    for component in components:
        kind = kinds.kind(component)
        if kind.PATH_KEY is None:
            continue
        for place in (component.source, component.target):
            if place is None or not place.path or (place.host, place.path) in seen:
                continue
            seen.add((place.host, place.path))
            why = path_problem(place.path)
            if why:
                problems.append(Problem(why, key=kind.PATH_KEY, host=place.host))
                continue
            path = normal_path(place.path)
            found.append(DataDirectory(place.host, kind.LABEL, kind.PATH_KEY,
                                       path.parent if kind.PATH_IS_FILE else path))
    return found, problems


def path_problem(value: str) -> str | None:
    """Why `value` cannot be a path drtool writes into or judges on a host (None when it
    can): it must be absolute and free of `..` (which would hide where it really points)."""
    if not value.startswith("/"):
        return f"must be an absolute path on the host, got {value!r}"
    if ".." in PurePosixPath(value).parts:
        return f"must not contain '..', got {value!r}"
    return None


def normal_path(value: str) -> PurePosixPath:
    """An absolute path without `.`, repeated or trailing slashes (`..` is refused before)."""
    return PurePosixPath(posixpath.normpath(re.sub("/+", "/", value)))


def deletion_problem(path: PurePosixPath, directories: list[DataDirectory]) -> str | None:
    """Why drtool must not write into, then delete from, `path` (None when it may): it is
    `/`, or a data directory itself, or holds one."""
    if path == PurePosixPath("/"):
        return "must not be / (it holds every data directory): drtool deletes what it writes there"
    for directory in directories:
        if path == directory.path or directory.path.is_relative_to(path):
            what = "is" if path == directory.path else "holds"
            return (f"{path} {what} the data directory of {directory.host}'s {directory.store} "
                    f"({directory.key}: {directory.path}); drtool deletes what it writes there")
    return None


def deletable_path_problems(described: dict[str, dict[str, Any]],
                            components: tuple[Component, ...], store_root: str) -> list[Problem]:
    """A Problem for every path drtool later deletes that is relative, holds `..`, is `/`,
    or is or holds a data directory the inventory declares. Every host's directories count
    against every host's paths: hosts may share a file system (the lab's do)."""
    directories, problems = data_directories(components)
    if not path_problem(store_root):
        why = deletion_problem(normal_path(store_root), directories)
        if why:
            problems.append(Problem(why, key="drtool_store_path"))
    for host in sorted(described):
        for field, key in DELETABLE_PATHS:
            value = str(described[host].get(field) or "")
            if value.startswith(STORE_BACKUP_PATH):  # the store's folder of the backup
                value = f"{store_root}/BACKUP_ID{value[len(STORE_BACKUP_PATH):]}"
            why = (path_problem(value) if value else "must be set to an absolute path on the host")
            if why is None:
                why = deletion_problem(normal_path(value), directories)
            if why:
                problems.append(Problem(why, key=key, host=host))
    return problems


# -- the production guard ---------------------------------------------------------------------

def guard_problems(components: tuple[Component, ...],
                   described: dict[str, dict[str, Any]]) -> list[Problem]:
    """A destructive target must be marked drtool_drill_target, have a non-production tier,
    and be neither a backup source nor the same machine or server as one, under whatever
    name or address it is listed. One Problem per violation."""
    problems = []
    sources = kinds.sources(components)
    for host, restored in kinds.targets(components).items():
        target = described[host]

        def refuse(why: str, key: str | None = None, host: str = host) -> None:
            problems.append(Problem(f"refused as a destructive target: {why}", key, host))

        allowed = nonproduction_tiers(target)
        if not is_nonproduction(target.get("tier"), allowed):
            seen = "not set (null)" if target.get("tier") is None else repr(target["tier"])
            refuse(f"its tier is production: {seen} is not one of the non-production "
                   f"tiers ({', '.join(allowed)}), the only exact names that allow "
                   "destructive steps", "drtool_tier")
        if target.get("drill_target") is not True:
            refuse("it is not marked drtool_drill_target: true", "drtool_drill_target")
        for source, read in sources.items():
            if source == host:
                refuse(f"it is also a backup source ({_named(read)})")
                continue
            shared = machine(target) & machine(described[source])
            if shared and not (_local(target) and _local(described[source])):
                refuse(f"it is the same machine as backup source {source} "
                       f"({', '.join(sorted(shared))})")
        for component in restored:
            family = kinds.family(component)
            if family is None or component.target is None:
                continue
            for other in kinds.of_family(components, family):
                if other.source is None:
                    continue
                same = (endpoints(target, component.target)
                        & endpoints(described[other.source.host], other.source))
                if same:
                    where = ", ".join(f"{a}:{p}" for a, p in sorted(same))
                    refuse(f"its {family} endpoint {where} is backup source "
                           f"{other.source.host}'s")
    return problems + tree_problems(components, described)


def recovery_problems(recovered: tuple[Component, ...], components: tuple[Component, ...],
                      described: dict[str, dict[str, Any]]) -> list[Problem]:
    """The refusals of a recovery (`drtool recover`), whose targets are the components'
    recovery sides (`recovered`). A recovery target may be a production-tier host and may
    be its own component's source (the rebuilt primary): the drill rules do not apply, the
    operator's confirmation by name does (drtool.cli). It must not be another component's
    source (the same server endpoint), and a recovered tree must not overlap another's
    data. One Problem per violation; none declared is one Problem."""
    if not recovered:
        return [Problem("no component declares a `recovery` side: `drtool recover` restores "
                        "each component onto the host its `recovery` names")]
    problems = []
    for component in recovered:
        family = kinds.family(component)
        target = component.target
        if family is None or target is None:
            continue
        for other in kinds.of_family(components, family):
            if other.source is None or other.name == component.name:
                continue
            same = (endpoints(described[target.host], target)
                    & endpoints(described[other.source.host], other.source))
            if same:
                where = ", ".join(f"{a}:{p}" for a, p in sorted(same))
                problems.append(Problem(
                    f"refused as a recovery target of {component.name}: its {family} endpoint "
                    f"{where} is the backup source of {other.name} on {other.source.host}",
                    kinds.kind(component).LIST, target.host))
    return problems + tree_problems(recovered, described, own_source=True)


def tree_problems(components: tuple[Component, ...],
                  described: dict[str, dict[str, Any]],
                  own_source: bool = False) -> list[Problem]:
    """A directory tree the disaster empties (a files component's target) must not be `/`,
    nor be, hold or lie inside a source's tree, or any other data directory the components
    declare, on the same machine (by host, or by address as `machine` says; local
    connections are all this machine). One Problem per overlap. With `own_source` (a
    recovery), a tree may be its own component's source tree."""
    problems = []
    for component in components:
        target = component.target
        if (component.kind != kinds.files.KIND or target is None or not target.path
                or path_problem(target.path)):
            continue  # not a tree, or a path validation already reports
        tree = normal_path(target.path)
        found = ["is /"] if tree == PurePosixPath("/") else [
            overlap for other in components for overlap in _overlaps(
                tree, component, other, described, own_source)]
        problems += [Problem(f"refused as a destructive target: the tree {tree} of "
                             f"{component.name} {why}; the disaster empties it",
                             kinds.files.LIST, target.host) for why in found]
    return problems


def _overlaps(tree: PurePosixPath, component: Component, other: Component,
              described: dict[str, dict[str, Any]], own_source: bool = False) -> list[str]:
    """How `tree` (component's target) overlaps each side of `other` on its machine."""
    module = kinds.kind(other)
    found = []
    for side, place in ((kinds.SOURCE, other.source), (kinds.TARGET, other.target)):
        if (module.PATH_KEY is None or place is None or not place.path
                or path_problem(place.path) or (other is component and side == kinds.TARGET)
                or (own_source and other is component and side == kinds.SOURCE)
                or component.target is None
                or not _same_machine(described, component.target.host, place.host)):
            continue
        path = normal_path(place.path)
        path = path.parent if module.PATH_IS_FILE else path
        relation = ("is" if tree == path else "holds" if path.is_relative_to(tree)
                    else "lies inside" if tree.is_relative_to(path) else None)
        if relation is None:
            continue
        role = "source" if side == kinds.SOURCE else "restore target"
        what = "tree" if module is kinds.files else "data directory"
        found.append(f"{relation} the {role} {what} of {other.name} on {place.host} "
                     f"({module.PATH_KEY}: {path}), the same machine")
    return found


def _same_machine(described: dict[str, dict[str, Any]], host: str, other: str) -> bool:
    if host == other:
        return True
    if host not in described or other not in described:
        return False
    return bool(machine(described[host]) & machine(described[other]))


def _named(read: list[Component]) -> str:
    """The components read from a host, for a refusal."""
    names = [c.name for c in read]
    return ("component " if len(names) == 1 else "components ") + ", ".join(names)


def nonproduction_tiers(settings: dict[str, Any]) -> tuple[str, ...]:
    """The tiers that allow destructive steps on a host: NONPRODUCTION_TIERS and the names
    its `drtool_nonproduction_tiers` adds (a malformed setting adds nothing; validation
    reports it)."""
    extra, _problem = declared_tiers(settings.get("nonproduction_tiers"))
    return NONPRODUCTION_TIERS + tuple(t for t in extra if t not in NONPRODUCTION_TIERS)


def is_nonproduction(tier: Any, allowed: tuple[str, ...] = NONPRODUCTION_TIERS) -> bool:
    """True only when `tier`, as str(), is exactly one of `allowed`; None is production."""
    return tier is not None and str(tier) in allowed


def declared_tiers(value: Any) -> tuple[tuple[str, ...], str | None]:
    """The names a `drtool_nonproduction_tiers` setting declares, and what is wrong with it
    (None when nothing). A name that contains "prod" in any case is never taken."""
    if value in (None, "", []):
        return (), None
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        return (), f"must be a list of tier names, got {value!r}"
    named = [t for t in value if "prod" in t.lower()]
    if named:
        return (tuple(t for t in value if t not in named),
                f"cannot declare a production tier as non-production: {', '.join(named)}")
    return tuple(value), None


def _local(settings: dict[str, Any]) -> bool:
    return settings.get("connection") == "local"


def resolve(name: str) -> frozenset[str]:
    """Every address `name` resolves to, as an identity rather than a spelling: an
    IPv4-mapped IPv6 address becomes its IPv4 address, and loopback and unspecified
    addresses (0.0.0.0, ::), which all reach this machine, become THIS_MACHINE."""
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
    except (socket.gaierror, UnicodeError, ValueError):
        found = {name}
    out = set()
    for address in found:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            out.add(address)
            continue
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        out.add(THIS_MACHINE if ip.is_loopback or ip.is_unspecified else str(ip))
    return frozenset(out)


def machine(settings: dict[str, Any]) -> frozenset[str]:
    """The machine a host runs on, as a set of addresses: those of the address Ansible
    connects to (connection_address, when resolved, else address)."""
    if _local(settings):
        return frozenset({THIS_MACHINE})
    return resolve(str(settings.get("connection_address") or settings.get("address", "")))


def with_connection_addresses(described: dict[str, dict[str, Any]]
                              ) -> dict[str, dict[str, Any]]:
    """A copy of `described` in which every host has `connection_address`: where Ansible
    really connects. For the ssh connection, ssh_config's HostName for the host's address
    (as `ssh -G`, given the host's ssh arguments, says); THIS_MACHINE for a local
    connection; the described address otherwise. A value already there is kept."""
    out = {}
    for host, settings in described.items():
        settings = dict(settings)
        if not settings.get("connection_address"):
            address = str(settings.get("address") or host)
            if _local(settings):
                settings["connection_address"] = THIS_MACHINE
            elif settings.get("connection", "ssh") == "ssh":
                settings["connection_address"] = ssh_hostname(
                    address, str(settings.get("ssh_args") or ""))
            else:
                settings["connection_address"] = address
        out[host] = settings
    return out


def ssh_hostname(address: str, ssh_args: str = "") -> str:
    """The HostName ssh_config gives `address` (`ssh -G`, which reads configuration only and
    connects nowhere), or `address` itself when ssh is missing, fails or says nothing."""
    try:
        argv = [*shlex.split(ssh_args), "-G", "--", address]
    except ValueError:
        argv = ["-G", "--", address]
    try:
        done = run(["ssh", *argv], timeout=SSH_CONFIG_TIMEOUT_S, check=False)
    except DrtoolError:  # ssh is not installed, or did not answer in time
        return address
    if done.returncode != 0:
        return address
    for line in done.stdout.splitlines():
        key, _sep, value = line.partition(" ")
        if key.lower() == "hostname" and value.strip():
            return value.strip()
    return address


def endpoints(settings: dict[str, Any], place: Place) -> frozenset[tuple[str, int]]:
    """Where a component's server really listens on one side: its configured address, as
    seen from its host (a loopback address means that host's machine, described by
    `settings`), and port."""
    addresses = resolve(place.address or "127.0.0.1")
    if THIS_MACHINE in addresses and not _local(settings):
        addresses = (addresses - {THIS_MACHINE}) | machine(settings)
    return frozenset((address, place.port or 0) for address in addresses)


# -- where a problem lives ---------------------------------------------------------------------

def render(inventory: Path, problem: Problem) -> str:
    """'file: host: key: message', naming the inventory file that sets the key (or lists the
    host), relative to the inventory folder."""
    # A nested key (drtool_notify.webhooks[1].url) lives where its variable is set.
    variable = re.split(r"[.\[]", problem.key, maxsplit=1)[0] if problem.key else None
    where = locate(inventory, variable, problem.host, _inventory_files(inventory))
    parts = [where] if where else []
    parts += [p for p in (problem.host, problem.key) if p]
    return ": ".join([*parts, problem.message])


@functools.lru_cache(maxsize=8)
def _inventory_files(inventory: Path) -> dict[Path, Any]:
    """Every YAML file of an inventory, parsed once per command, however many problems."""
    loaded = {}
    for path in sorted(p for p in inventory.rglob("*") if p.suffix in (".yml", ".yaml")):
        try:
            loaded[path] = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
    return loaded


def locate(inventory: Path, key: str | None, host: str | None,
           loaded: dict[Path, Any] | None = None) -> str | None:
    """The file under `inventory` that sets `key` (for `host`, when given), else the file
    that lists the host, else None. `loaded`: the inventory's files, already parsed."""
    if loaded is None:
        loaded = _inventory_files.__wrapped__(inventory)
    if key:
        # Most specific first: the host's own vars, its entry in an inventory file, group
        # vars, then anywhere in an inventory file.
        # A vars folder holds files (group_vars/all.yml) or folders of files
        # (group_vars/all/10-base.yml): Ansible reads those in name order, the last one
        # wins, so they are searched last first.
        def part(path: Path, index: int) -> str:
            parts = path.relative_to(inventory).parts
            return parts[index] if len(parts) > index else ""

        host_vars = sorted((p for p in loaded if part(p, 0) == "host_vars" and (
            p.stem if len(p.relative_to(inventory).parts) == 2 else part(p, 1)) == host),
            reverse=True)
        group_vars = sorted((p for p in loaded if part(p, 0) == "group_vars"), reverse=True)
        listings = [p for p in loaded if part(p, 0) not in ("host_vars", "group_vars")]
        searches: list[tuple[Path, str | None]] = [(p, None) for p in host_vars]
        searches += [(p, host) for p in listings if host]
        searches += [(p, None) for p in group_vars + listings]
        for path, under in searches:
            if _contains(loaded[path], key, under):
                return str(path.relative_to(inventory))
    if host:
        for path, data in loaded.items():
            if _contains(data, host, None):
                return str(path.relative_to(inventory))
    return None


def _contains(data: Any, key: str, under: str | None) -> bool:
    if isinstance(data, dict):
        if under is None and key in data:
            return True
        return any(_contains(v, key, None if k == under else under) for k, v in data.items())
    if isinstance(data, list):
        return any(_contains(v, key, under) for v in data)
    return False
