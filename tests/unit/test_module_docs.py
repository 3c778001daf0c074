"""The drtool.drill modules' documentation as ansible-doc reads it: every module's
DOCUMENTATION and RETURN parse (with its doc fragments), describe the module and each of its
options, and document exactly the options its argument_spec takes, with the same types and
defaults."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "collections"
PLUGINS = COLLECTIONS / "ansible_collections" / "drtool" / "drill" / "plugins"
MODULES = sorted(path.stem for path in (PLUGINS / "modules").glob("*.py")
                 if path.stem != "__init__")
ANSIBLE_DOC = Path(sys.executable).parent / "ansible-doc"
# The fragment each family of modules extends: its shared connection options.
FRAGMENT_OF = {"pg_": "postgres", "redis_": "redis"}
# What ansible-doc and AnsibleModule assume for a key that is not given.
UNSET: dict[str, Any] = {"required": False, "default": None, "choices": None, "elements": None}

# Run in a separate Python: each module's main() up to its AnsibleModule, which gives up
# its argument_spec instead of reading parameters.
ARGUMENT_SPECS = r"""
import importlib, json, sys
from ansible.module_utils import basic

class Captured(Exception):
    pass

def capture(self, argument_spec, **kwargs):
    raise Captured(argument_spec)

basic.AnsibleModule.__init__ = capture
specs = {}
for name in sys.argv[1:]:
    module = importlib.import_module("ansible_collections.drtool.drill.plugins.modules." + name)
    try:
        module.main()
    except Captured as captured:
        specs[name] = captured.args[0]
print(json.dumps(specs))
"""


def environment() -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
    env.pop("PYTHONPATH", None)
    return env


@functools.cache
def ansible_doc(*names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ANSIBLE_DOC), "--json", *(f"drtool.drill.{n}" for n in names)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=environment(), cwd=ROOT)


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "[WARNING]" in line or "[ERROR]" in line]


@functools.cache
def all_docs() -> dict[str, Any]:
    """Every module's entry of one ansible-doc run; empty when any module fails (each test
    then runs ansible-doc on its own module, for its own error)."""
    done = ansible_doc(*MODULES)
    if done.returncode != 0 or warnings_in(done.stderr):
        return {}
    return json.loads(done.stdout)


def doc_of(name: str) -> dict[str, Any]:
    entry = all_docs().get(f"drtool.drill.{name}")
    if entry is None:
        done = ansible_doc(name)
        assert done.returncode == 0, done.stderr
        assert warnings_in(done.stderr) == [], done.stderr
        entry = json.loads(done.stdout)[f"drtool.drill.{name}"]
    return entry


@functools.cache
def argument_specs() -> dict[str, dict[str, dict[str, Any]]]:
    done = subprocess.run([sys.executable, "-c", ARGUMENT_SPECS, *MODULES], capture_output=True,
                          text=True, timeout=60, check=False, cwd=COLLECTIONS,
                          env=dict(environment(), PYTHONPATH=str(COLLECTIONS)))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fragment_options(fragment: str) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(f"drtool_doc_fragment_{fragment}",
                                                  PLUGINS / "doc_fragments" / f"{fragment}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION)["options"]


def test_every_module_is_checked() -> None:
    assert len(MODULES) >= 19
    assert {"pg_backup", "redis_facts", "files_backup", "target_lock"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_the_module_documents_itself_and_each_option(name: str) -> None:
    entry = doc_of(name)
    doc = entry["doc"]
    assert doc["module"] == name
    assert doc["short_description"]
    assert doc["author"]
    assert isinstance(doc["description"], list) and doc["description"]
    assert all(isinstance(line, str) and line for line in doc["description"])
    for option, spec in doc["options"].items():
        assert spec.get("description"), f"{option} has no description"
        assert spec.get("type"), f"{option} has no type"
        assert set(spec) <= {"description", "type", "required", "default", "choices",
                             "elements", "aliases", "no_log"}, f"{option}: {sorted(spec)}"
    for value, spec in (entry["return"] or {}).items():
        assert spec.get("description") and spec.get("type") and spec.get("returned"), value


@pytest.mark.parametrize("name", MODULES)
def test_the_documented_options_are_the_argument_spec(name: str) -> None:
    documented = doc_of(name)["doc"]["options"]
    taken = argument_specs()[name]
    assert sorted(documented) == sorted(taken)
    for option, spec in taken.items():
        doc = documented[option]
        for key in ("type", "required", "default", "elements"):
            assert doc.get(key, UNSET.get(key)) == spec.get(key, UNSET.get(key)), (option, key)
        assert sorted(doc.get("choices") or []) == sorted(spec.get("choices") or []), option


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith(tuple(FRAGMENT_OF))])
def test_connection_options_come_from_the_fragment(name: str) -> None:
    fragment = next(f for prefix, f in FRAGMENT_OF.items() if name.startswith(prefix))
    shared = fragment_options(fragment)
    documented = doc_of(name)["doc"]["options"]
    for option, spec in shared.items():
        assert option in documented
        for key in ("type", "default", "required"):
            assert documented[option].get(key) == spec.get(key), (option, key)
    source = (PLUGINS / "modules" / f"{name}.py").read_text()
    assert f"extends_documentation_fragment:\n  - drtool.drill.{fragment}\n" in source


@pytest.mark.parametrize(("kind", "missing"), [("sql", "port, database, query"),
                                               ("http", "url"), ("command", "argv")])
def test_a_check_probe_without_what_its_kind_needs_fails_naming_it(kind: str, missing: str):
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-m",
         "drtool.drill.check_probe", "-a", f"kind={kind}",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, timeout=120, check=False, env=environment(),
        cwd=ROOT)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"kind is {kind} but all of the following are missing: {missing}" in done.stdout
