"""What the commands share: loading an environment, exit codes, JSON output."""

from __future__ import annotations

import functools
import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import click

from drtool import paths
from drtool.adapters.ansible import AnsibleAdapter
from drtool.config import (
    ENV_NAME,
    Environment,
    Inventory,
    environment_from_description,
    find_inventory,
    forget_given_inventories,
    give_inventory,
    known_environments,
    name_from_sources,
)
from drtool.core.model import ABORTED, PASSED, Journal
from drtool.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_ORCHESTRATION,
    EXIT_PASSED,
    EXIT_USAGE,
    ConfigError,
    OrchestrationError,
)


def not_text(value: str, allow: str = "") -> str | None:
    """What makes `value` unfit to be shown on one line or written into a journal, report or
    JUnit file (None when nothing): bytes that are not UTF-8 (Python keeps them as lone
    surrogates), or a control character (other than those in `allow`)."""
    if any(unicodedata.category(c) == "Cs" for c in value):
        return "is not valid UTF-8"
    bad = sorted({c for c in value if c not in allow
                  and unicodedata.category(c) in ("Cc", "Zl", "Zp")})
    if bad:
        return f"holds control characters ({', '.join(ascii(c) for c in bad)})"
    return None


def shown(value: str) -> str:
    """`value` as one printable line: undecodable bytes as \\xNN, control characters
    escaped."""
    raw = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(ascii(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
                   for c in raw)


class FilePath(click.Path):
    """A click.Path whose name is UTF-8 text without control characters: drtool prints the
    names it is given and writes them into journals and reports."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            why = not_text(value)
            if why:
                self.fail(f"the file name '{shown(value)}' {why}", param, ctx)
        return super().convert(value, param, ctx)


def complete_env(_ctx: click.Context, _param: click.Parameter,
                 incomplete: str) -> list[str]:
    """The shell's completions of --env: the environments drtool finds."""
    return [name for name in known_environments() if name.startswith(incomplete)]


# How Ansible opens vault-encrypted inventories: the options ansible-playbook takes, handed
# to every playbook drtool runs (describe.yml too) through the variables ansible-playbook
# reads, so a schedule installed with them passes them on (ops/schedule.py). drtool never
# reads a vault password itself; Ansible reads the file or runs the script.
VAULT_FILE = "ANSIBLE_VAULT_PASSWORD_FILE"
VAULT_IDS = "ANSIBLE_VAULT_IDENTITY_LIST"


def _vault_password_file(_ctx: click.Context, _param: click.Parameter,
                         value: str | None) -> None:
    if value:
        os.environ[VAULT_FILE] = value


def _vault_ids(_ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> None:
    # Joined to those the environment already names, as ansible-playbook joins them.
    given = [v for v in os.environ.get(VAULT_IDS, "").split(",") if v] if values else []
    for value in values:
        label, at, source = value.partition("@")  # Ansible splits at the first @
        if not at:
            label, source = "", value
        if "," in value:
            raise click.BadParameter(f"{shown(value)}: a comma would split it in two",
                                     param=param)
        if source == "prompt":
            raise click.BadParameter(f"{shown(value)}: drtool runs Ansible without a terminal "
                                     "to type a password into: give a password file or an "
                                     "executable script", param=param)
        if not Path(source).is_file():
            raise click.BadParameter(f"{shown(value)}: {shown(source)} is not a file",
                                     param=param)
        given.append(f"{label}@{Path(source).resolve()}" if label else str(Path(source).resolve()))
    if given:
        os.environ[VAULT_IDS] = ",".join(given)


def vault_options(command: Any) -> Any:
    """--vault-password-file and --vault-id, as ansible-playbook takes them."""
    command = click.option(
        "--vault-id", "vault_ids", multiple=True, metavar="[LABEL@]FILE", expose_value=False,
        callback=_vault_ids,
        help="A vault identity to open the inventory with (repeatable): a password file or "
             "an executable script, as for ansible-playbook.")(command)
    return click.option(
        "--vault-password-file", metavar="FILE", expose_value=False, callback=_vault_password_file,
        type=FilePath(exists=True, dir_okay=False, resolve_path=True),
        help="The vault password file (or executable script) that opens the inventory; "
             f"default ${VAULT_FILE}.")(command)


def env_option(command: Any) -> Any:
    """--env ENV and -i/--inventory PATH (either or both), the vault options the inventory
    may need, and --limit refused. The command is given the environment's name."""

    @functools.wraps(command)
    def with_environment(*args: Any, env_name: str | None, inventories: tuple[Path, ...],
                         **kwargs: Any) -> Any:
        # Only this command's -i and descriptions count (tests run several in one process).
        forget_given_inventories()
        _DESCRIBED.clear()
        if inventories:
            env_name = name_inventory(env_name, inventories)
        elif env_name is None:
            raise click.UsageError("give the environment: --env ENV, or its inventory with "
                                   "-i PATH")
        return command(*args, env_name=env_name, **kwargs)

    with_environment = vault_options(with_environment)
    with_environment = click.option(
        "--limit", hidden=True, expose_value=False, callback=_refuse_limit,
        help="Refused: drtool covers the whole environment.")(with_environment)
    with_environment = click.option(
        "-i", "--inventory", "inventories", multiple=True, metavar="PATH",
        type=FilePath(exists=True, path_type=Path),
        help="The environment's inventory: a file or folder (an inventory plugin's file "
             "too), as ansible-playbook -i takes it; repeatable. The environment is then "
             "named by --env, else by drtool_env_name, else by the folder's name.")(
        with_environment)
    return click.option("--env", "env_name", metavar="ENV", shell_complete=complete_env,
                        help="Environment: its name, and its inventory under "
                             "inventories/ENV unless -i gives one.")(with_environment)


def _refuse_limit(_ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.BadParameter(
            "drtool runs on the whole environment (a drill that restores part of it proves "
            "nothing of the rest): give an inventory of just the hosts to drill instead",
            param=param)


# Each inventory's hosts as describe.yml resolved them, by (environment name, inventory):
# naming an environment from its inventory and loading it resolve it once.
_DESCRIBED: dict[tuple[str, Inventory, bool], dict[str, dict[str, Any]]] = {}


def described(env_name: str, inventory: Inventory,
              recovering: bool = False) -> dict[str, dict[str, Any]]:
    """The environment's hosts as Ansible resolves them (ConfigError when it cannot); as a
    recovery resolves them with `recovering`."""
    key = (env_name, inventory, recovering)
    if key not in _DESCRIBED:
        adapter = AnsibleAdapter(paths.content_root(), inventory.sources, paths.runs_dir(),
                                 env_name)
        _DESCRIBED[key] = adapter.describe(recovering)
    return _DESCRIBED[key]


def name_inventory(env_name: str | None, sources: tuple[Path, ...]) -> str:
    """The name of the environment whose inventory -i gave: --env's, else the one its
    hosts' drtool_env_name sets, else its folder's; recorded so that find_inventory(name)
    finds these sources."""
    if env_name is not None:
        give_inventory(env_name, sources)
        return env_name
    provisional = name_from_sources(sources)
    names = {str(d.get("env_name")) for d in described(
        provisional, give_inventory(provisional, sources)).values() if d.get("env_name")}
    if len(names) > 1:
        raise ConfigError(f"drtool_env_name differs between the hosts of {sources[0]} "
                          f"({', '.join(sorted(names))}): set it once in group_vars/all")
    if not names or names == {provisional}:
        return provisional
    name = names.pop()
    if not ENV_NAME.match(name):
        raise ConfigError(f"drtool_env_name {name!r} is not an environment name (letters, "
                          "digits, - and _, up to 64)")
    give_inventory(name, sources)
    return name
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON on stdout instead of a table.")


def load(env_name: str, runs_phases: bool = True,
         touches_targets: bool = True,
         recovering: bool = False) -> tuple[Environment, AnsibleAdapter]:
    """Find, read and validate an environment; ConfigError (exit 2) lists every problem.
    With `recovering`, its recovery's view (`drtool recover`: each target a recovery side).

    With `runs_phases`, an environment that lives in the sandbox must also have every
    sandbox service running (OrchestrationError, exit 3, otherwise).
    """
    inventory = find_inventory(env_name)
    hosts = described(env_name, inventory, recovering)
    adapter = AnsibleAdapter(paths.content_root(), inventory.sources, paths.runs_dir(),
                             env_name)
    env = environment_from_description(env_name, inventory, hosts, touches_targets, recovering)
    if runs_phases and env.requires_sandbox:
        from drtool.sandbox import manage  # noqa: PLC0415 - only the sandbox needs it

        box = manage.current()
        # The application and the target Redis are what a drill stops and starts: a drill
        # killed half-way leaves them stopped, and the next operation's rollback starts them.
        stopped = [name for name, _port, pid in box.processes()
                   if pid is None and name not in manage.DRILL_STOPS] if box else []
        if box is None or stopped:
            what = f"not running ({', '.join(stopped)} stopped)" if box else "not set up"
            raise OrchestrationError(f"the sandbox is {what}: start it with `drtool sandbox up`")
    return env, adapter


def exit_code(journal: Journal) -> int:
    """0 passed; 130 aborted; 2 when the production guard refused at preflight (a target is
    a source under another name); 3 when a phase could not run (or preflight found the hosts
    not ready, a phase went over its time limit, or the journal could not be written); 1
    when a check failed."""
    if journal.status == PASSED:
        return EXIT_PASSED
    if journal.status == ABORTED:
        return EXIT_INTERRUPTED
    if journal.failure is not None and journal.failure.kind == "guard":
        return EXIT_USAGE
    if journal.failure is not None and journal.failure.kind == "locked":
        return EXIT_LOCKED  # a target was being drilled under another name: try again later
    if journal.failure is not None and journal.failure.kind in ("orchestration", "preflight",
                                                                 "evidence", "timeout"):
        return EXIT_ORCHESTRATION
    return EXIT_FAILED


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
