"""Which existing backup a drill restores (`drtool drill --backup`). Pure over a catalog.

Real disaster recovery starts from the backup the schedule made, hours before: a drill of
that backup measures the data loss a disaster would have caused. `latest` drills the
newest; `random` and `random-verified` pick uniformly among the complete (or the verified)
backups the store keeps, so that older backups are tested too, the way AWS Backup's
restore testing picks recovery points.
"""

from __future__ import annotations

import random

from drtool.errors import ConfigError
from drtool.store.base import BackupSummary

LATEST, RANDOM, RANDOM_VERIFIED, NAMED = "latest", "random", "random-verified", "named"
# The newest backup a passed drill restored: what `drtool recover` takes unless told.
LATEST_VERIFIED = "latest-verified"
CHOICES = (LATEST, RANDOM, RANDOM_VERIFIED, LATEST_VERIFIED)
# What a drill that makes its own backup records as its backup's choice.
FRESH = "fresh"


def choose(catalog: list[BackupSummary], spec: str, seed: int | None = None,
           env: str = "") -> tuple[str, str]:
    """(backup id, how it was chosen: latest, random, random-verified or named) for `spec`,
    one of CHOICES or a backup id. Raises ConfigError when nothing fits."""
    complete = sorted((b for b in catalog if b.complete), key=lambda b: b.id, reverse=True)
    if spec not in CHOICES:
        return spec, NAMED  # the store says whether it exists (Drill reads its manifest)
    verified = spec in (RANDOM_VERIFIED, LATEST_VERIFIED)
    pool = [b for b in complete if b.verified] if verified else complete
    if not pool:
        what = "verified backup" if verified else "complete backup"
        raise ConfigError(f"--backup {spec}: the store of {env or 'the environment'} holds no "
                          f"{what}; make one with `drtool backup --env {env or 'ENV'}`"
                          + (" and drill it" if verified else "")
                          + (", or name one: --backup latest, or its id" if complete else ""))
    if spec in (LATEST, LATEST_VERIFIED):
        return pool[0].id, spec
    return random.Random(seed).choice(pool).id, spec  # noqa: S311 - a pick, not a secret
