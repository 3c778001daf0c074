"""The drtool.drill collection's own code, imported into drtool: the functions that build
the commands its modules run (pg_restore's, pgBackRest's), so that what the runbook prints
is what a recovery runs, from the same code. The only importer of the collection's Python.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from drtool import paths

PACKAGE = "ansible_collections.drtool.drill.plugins"


def load(name: str) -> ModuleType:
    """The collection's `modules.NAME` or `module_utils.NAME` (as 'modules.pg_restore'),
    imported from drtool's content root (ansible-core is a dependency: the modules import
    its module_utils)."""
    root = str(paths.content_root() / "collections")
    if root not in sys.path:
        sys.path.append(root)
    return importlib.import_module(f"{PACKAGE}.{name}")
