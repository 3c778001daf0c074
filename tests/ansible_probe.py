"""Real ansible-playbook runs of a few tasks on this machine (connection local), through
AnsibleAdapter exactly as a drill runs a phase, with drtool's roles and modules at hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from drtool.adapters.ansible import AnsibleAdapter, PlaybookRun
from drtool.paths import content_root

Probe = Callable[..., PlaybookRun]


def probe_runner(folder: Path) -> Probe:
    """A function that runs a one-play playbook of the tasks it is given on a local host and
    returns the run; its artifacts go to `folder`/artifacts/probe."""
    root = folder / "content"
    (root / "playbooks").mkdir(parents=True)
    real = content_root()
    (root / "ansible.cfg").write_text(
        f"[defaults]\nroles_path = {real / 'roles'}\ncollections_path = {real / 'collections'}\n"
        "interpreter_python = auto_silent\ngathering = explicit\nany_errors_fatal = True\n")
    (root / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {"probe-host": {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}))

    def run(tasks: list[dict[str, Any]],
            on_event: Callable[[dict[str, Any], Any], None] | None = None) -> PlaybookRun:
        (root / "playbooks" / "probe.yml").write_text(yaml.safe_dump(
            [{"name": "Probe", "hosts": "all", "tasks": tasks}], sort_keys=False))
        adapter = AnsibleAdapter(root, root / "inventory.yml", folder / "run")
        return adapter.run("probe", {}, folder / "artifacts" / "probe", on_event)

    return run


def artifacts_text(folder: Path) -> str:
    """Everything the probe's runs wrote under `folder`/artifacts, as text."""
    return "\n".join(p.read_text(errors="replace")
                     for p in (folder / "artifacts").rglob("*") if p.is_file())


def only_failure(run: PlaybookRun) -> str:
    """The message of the run's one failure (the test fails unless there is exactly one)."""
    assert run.status == "failed" and len(run.failures) == 1, run.failures
    return run.failures[0].message
