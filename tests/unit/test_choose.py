"""Which existing backup `drtool drill --backup` restores."""

from __future__ import annotations

import pytest

from drtool.errors import ConfigError
from drtool.store.base import BackupSummary
from drtool.store.choose import choose


def summary(day: int, complete: bool = True, verified: bool = False) -> BackupSummary:
    backup_id = f"bk-202612{day:02d}T010000Z-00000{day % 10}"
    return BackupSummary(backup_id, None, 1, "/store", complete,
                         "d-1" if verified else None)


CATALOG = [summary(5, complete=False), summary(4, verified=True), summary(3), summary(2),
           summary(1, verified=True)]


def test_latest_is_the_newest_complete_backup():
    assert choose(CATALOG, "latest") == (summary(4).id, "latest")


def test_random_picks_uniformly_among_the_complete_ones_and_a_seed_repeats_it():
    picks = {choose(CATALOG, "random", seed)[0] for seed in range(200)}
    assert picks == {summary(d).id for d in (1, 2, 3, 4)}  # never the incomplete one
    assert choose(CATALOG, "random", 7) == choose(CATALOG, "random", 7)


def test_random_verified_picks_only_verified_backups():
    picks = {choose(CATALOG, "random-verified", seed)[0] for seed in range(100)}
    assert picks == {summary(4).id, summary(1).id}


def test_an_id_is_taken_as_named():
    assert choose(CATALOG, "bk-anything") == ("bk-anything", "named")


@pytest.mark.parametrize(("spec", "says"), [
    ("latest", "holds no complete backup; make one with `drtool backup --env shop`"),
    ("random-verified", "holds no verified backup"),
])
def test_nothing_to_pick_is_a_configuration_error(spec, says):
    catalog = [summary(5, complete=False)] if spec == "latest" else CATALOG[2:4]
    with pytest.raises(ConfigError) as caught:
        choose(catalog, spec, env="shop")
    assert says in str(caught.value)
