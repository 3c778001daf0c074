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
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: payload_cache
type: aggregate
short_description: Share Ansible's module payloads between drtool's runs
description:
  - Links the ansiballz_cache folder of ansible-playbook's temporary directory to the folder
    DRTOOL_PAYLOAD_CACHE names, so that module payloads are built once, not once a run.
  - Does nothing when DRTOOL_PAYLOAD_CACHE is not set.
requirements:
  - enabled in ansible.cfg (callbacks_enabled)
"""

import os

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

# The folder of ANSIBLE_LOCAL_TEMP's per-run directory where ansible-core keeps payloads
# (ansible.executor.module_common).
ANSIBLE_FOLDER = "ansiballz_cache"


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
        link = os.path.join(local_tmp, ANSIBLE_FOLDER)
        try:
            os.makedirs(shared, mode=0o700, exist_ok=True)
            # A folder it could not write to would fail every module: no link then.
            if os.access(shared, os.W_OK | os.X_OK) and not os.path.lexists(link):
                os.symlink(shared, link)
        except OSError:
            pass  # no link: Ansible builds the payloads in its own folder, as without drtool
