"""What drtool's modules ask of the managed host itself, whatever the data store."""

from __future__ import annotations

import hashlib
import os


def machine_id_sha256(path="/etc/machine-id"):
    """The sha256 of the host's machine-id file, as `stat`'s checksum gives it (machine-id(5)
    asks that the id itself never leave the machine); None where there is none (some
    containers): such a host has no machine identity to compare."""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def missing_tools(bin_dir, names):
    """The programs of `names` that are not an executable file in `bin_dir`."""
    return [name for name in names
            if not (os.path.isfile(os.path.join(bin_dir, name))
                    and os.access(os.path.join(bin_dir, name), os.X_OK))]
