"""The collection's module_utils, imported by file for unit tests: they run on managed hosts
under Ansible's own package names, which a plain import here would not find."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

FOLDER = (Path(__file__).resolve().parents[1] / "collections" / "ansible_collections" / "drtool"
          / "drill" / "plugins" / "module_utils")


def load(name: str) -> Any:
    """module_utils/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(f"drtool_module_utils_{name}",
                                                  FOLDER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
