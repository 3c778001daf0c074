"""Keep Ansible's module payloads from one ansible-playbook run to the next.

Before a module runs, Ansible builds its payload: the module and every module_utils file it
imports, found by parsing them (recursive_finder), zipped. It keeps what it built in a
folder of its own temporary directory, which lives as long as one ansible-playbook process.
A drill is a dozen runs or more (a run per phase, a run per component restored side by
side), so the same payloads were built again in every run: 13 % of the samples of a sandbox
drill's profile; sharing them saves a tenth of its CPU (bench/README.md).

drtool sets DRTOOL_PAYLOAD_CACHE to a private folder named by what the payloads are made of
(ansible-core's version and place, the drtool.drill collection's plugins; see
drtool.adapters.ansible.payload_cache); this callback, loaded before any task runs, makes
Ansible's folder a link to it. Ansible itself still does the rest: it takes a file lock
before it builds a payload and renames the finished file into place, so runs side by side
share the folder safely. Without the variable (a playbook run by hand, molecule) it does
nothing, and Ansible builds its payloads as it always does.

Each payload it builds then also holds the bytecode of its module_utils. A module runs by
importing them from the payload's zip, and zipimport writes no bytecode: without it, every
module run compiled ansible's module_utils again (about 50 ms of CPU a module run here;
bench/README.md, "Bytecode in the module payloads"). The bytecode is checked against its
source (PEP 552 hash pycs), compiled without optimisation whatever the controller's -O, by
the controller's Python: a host whose Python is another version sees a magic number it does
not know and imports the source, as before (its payloads are larger for nothing).

The module's own file keeps its source only, so that what Ansible reads from a module's
code (which plugin a deprecation comes from, the module's __file__) is as without drtool.
Code from the bytecode carries its file name as compiled, "/" and its place in the payload
(/ansible/module_utils/basic.py), not the payload's temporary path: tracebacks read the
same, a collection's module_utils are still found as such, but a deprecation raised from
ansible-core's own module_utils, which Ansible attributes to ansible-core by that path, is
then attributed to no one; and basic.py's __file__, which it logs to the host's journal as
MODULE, ends in .pyc. drtool's modules raise no deprecation.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: payload_cache
type: aggregate
short_description: Share Ansible's module payloads between drtool's runs
description:
  - Links the ansiballz_cache folder of ansible-playbook's temporary directory to the folder
    DRTOOL_PAYLOAD_CACHE names, so that module payloads are built once, not once a run.
  - Adds the bytecode of each payload's module_utils to the payloads it builds, so that a
    module run does not compile them again.
  - Does nothing when DRTOOL_PAYLOAD_CACHE is not set.
requirements:
  - enabled in ansible.cfg (callbacks_enabled)
"""

import functools
import importlib.util
import inspect
import marshal
import os
import warnings
import zipfile

from ansible import constants as C
from ansible.executor import module_common
from ansible.plugins.callback import CallbackBase

# The folder of ANSIBLE_LOCAL_TEMP's per-run directory where ansible-core keeps payloads
# (ansible.executor.module_common).
ANSIBLE_FOLDER = "ansiballz_cache"
# PEP 552: a pyc whose header holds its source's hash, which the importer checks.
CHECKED_HASH_PYC = 0b11


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "drtool.drill.payload_cache"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        shared = os.environ.get("DRTOOL_PAYLOAD_CACHE")
        local_tmp = getattr(C, "DEFAULT_LOCAL_TMP", None)
        if not shared or not local_tmp:
            return
        add_bytecode_to_payloads()
        link = os.path.join(local_tmp, ANSIBLE_FOLDER)
        try:
            os.makedirs(shared, mode=0o700, exist_ok=True)
            # A folder it could not write to would fail every module: no link then.
            if os.access(shared, os.W_OK | os.X_OK) and not os.path.lexists(link):
                os.symlink(shared, link)
        except OSError:
            pass  # no link: Ansible builds the payloads in its own folder, as without drtool


def add_bytecode_to_payloads():
    """Make the ansible-playbook process (and its task workers, forked from it) add bytecode
    to the module payloads it builds: Ansible writes the module last (_add_module_to_zip),
    with the payload's zip still open. Nothing changes where that function is not what it
    was written against, or where a payload carries a debugger's or coverage's extensions
    (they map source files)."""
    build = getattr(module_common, "_add_module_to_zip", None)
    if build is None or getattr(build, "drtool_bytecode", False):
        return
    try:
        signature = inspect.signature(build)
    except (TypeError, ValueError):
        return
    parameters = list(signature.parameters)
    if parameters[:1] != ["zf"] or parameters[-1:] != ["extension_manager"] or (
            "remote_module_fqn" not in parameters):
        return

    @functools.wraps(build)
    def with_bytecode(*args, **kwargs):
        build(*args, **kwargs)
        given = signature.bind(*args, **kwargs).arguments
        zf, extensions = given["zf"], given["extension_manager"]
        if isinstance(zf, zipfile.ZipFile) and not getattr(extensions, "extension_names", None):
            module = "/".join(str(given["remote_module_fqn"]).split(".")) + ".py"
            add_bytecode(zf, leave=(module,))

    with_bytecode.drtool_bytecode = True
    module_common._add_module_to_zip = with_bytecode


def add_bytecode(zf, leave=()):
    """Beside every .py file of the open zip `zf` but those in `leave`, its bytecode (a
    checked-hash .pyc, which zipimport prefers to the source while it matches it); a file
    this Python cannot compile keeps its source only."""
    names = set(zf.namelist())
    for info in list(zf.infolist()):
        if (not info.filename.endswith(".py") or info.filename in leave
                or info.filename + "c" in names):
            continue
        source = zf.read(info)
        try:
            with warnings.catch_warnings():
                # A newer Python's warnings about a file's escapes are not drtool's to show.
                warnings.simplefilter("ignore", SyntaxWarning)
                code = compile(source, "/" + info.filename, "exec", dont_inherit=True,
                               optimize=0)
        except (SyntaxError, ValueError):
            continue
        pyc = zipfile.ZipInfo(info.filename + "c", date_time=info.date_time)
        pyc.compress_type = zf.compression
        pyc.external_attr = info.external_attr
        zf.writestr(pyc, importlib.util.MAGIC_NUMBER + CHECKED_HASH_PYC.to_bytes(4, "little")
                    + importlib.util.source_hash(source) + marshal.dumps(code))
