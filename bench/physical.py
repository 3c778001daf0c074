"""Benchmark: drtool's physical restore (pgBackRest) and logical restore against the raw
tools, on the same cluster and data, in the same run.

Needs a running sandbox (`drtool sandbox up`: its primary archives into a pgBackRest
repository). --filler-mb adds a table of random bytes to the primary (dropped at the end)
and a full pgBackRest backup is taken of it, so the repository's newest backup holds it.
Then, per run:

  physical, drtool  the restore phase of `drtool drill --env sandbox-physical` (a recovery
                    target set on the source, pgbackrest restore into pg_physical, started,
                    recovered, promoted, each database measured)
  physical, raw     pg_physical stopped and emptied, then `pgbackrest restore` (to the end
                    of the archive, --archive-mode=off), its own config and port put back,
                    `pg_ctl start`, wait until promoted
  logical, drtool   the restore phase of `drtool restore --env sandbox-postgres` of a backup
                    `drtool backup` made
  logical, raw      pg_restore -j2 of a pg_dump -Fd -j2 of the same database

and prints the medians, the ratios drtool/raw, and last the physical drills' RPO figures.

    .venv/bin/python bench/physical.py --runs 2 --filler-mb 1000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time

from run import Bench, phase_time, timed  # bench/run.py, beside this file

from drtool.adapters import postgres
from drtool.adapters.execute import as_user
from drtool.sandbox import layout as lay
from drtool.sandbox import physical
from drtool.sandbox.services import PG_USER

OWN_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf")


class Physical(Bench):
    def full_backup(self) -> float:
        return timed(lambda: physical.pgbackrest(self.layout, "--type=full", "backup",
                                                 timeout=3600))

    def raw_physical_restore(self) -> float:
        """pg_physical restored by hand, as an operator would, timed from the stop."""
        root = self.layout.postgres_root / "pg_physical"
        data, own = root / "data", self.work / "pg_physical-own"
        own.mkdir(parents=True, exist_ok=True)
        for name in OWN_FILES:
            shutil.copy2(data / name, own / name)

        def restore() -> None:
            run(as_user([str(lay.PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                         "stop"], PG_USER), check=False)
            for entry in data.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            run(as_user([shutil.which("pgbackrest") or "pgbackrest",
                         f"--config={physical.config(self.layout)}",
                         f"--stanza={physical.STANZA}", f"--pg1-path={data}",
                         "--archive-mode=off", "--delta", "restore"], PG_USER))
            for name in OWN_FILES:
                shutil.copy2(own / name, data / name)
            with open(data / "postgresql.auto.conf", "a", encoding="utf-8") as auto:
                auto.write(f"\nport = {self.layout.port('pg_physical')}\n")
            run(as_user([str(lay.PG_BIN / "pg_ctl"), "-D", str(data), "-l",
                         str(root / "postgres.log"), "-w", "-t", "3600", "start"], PG_USER))
            while True:
                # Until it takes connections, and then until it is out of recovery.
                with contextlib.suppress(postgres.Error), self.pg("pg_physical",
                                                                  "postgres") as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
                time.sleep(0.05)

        return timed(restore)


def run(argv: list[str], check: bool = True) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False,
                          env=dict(os.environ))
    if check and done.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[:4])} failed: {done.stderr.strip()[-500:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--filler-mb", type=int, default=0)
    args = parser.parse_args()
    bench = Physical()
    rows: dict[str, list[float]] = {}
    rpo: list[tuple[float | None, float | None]] = []

    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    try:
        if args.filler_mb:
            bench.add_filler(args.filler_mb)
        add("pgbackrest backup --type=full (setup)", bench.full_backup())
        for _ in range(args.runs):
            drill = bench.drtool("drill", "--env", "sandbox-physical")
            add("physical, drtool: restore phase", phase_time(drill, "restore"))
            restore = next(p for p in drill["phases"] if p["name"] == "restore")
            for task in restore["tasks"]:
                if task["action"] == "drtool.postgres.physical":
                    add(f"  of which {task['name'].split(': ', 1)[1]}", task["duration_s"])
            rpo.append((drill["rpo_measured_s"], drill["rpo_backup_age_s"]))
            add("physical, raw: pgbackrest restore + start + promote",
                bench.raw_physical_restore())
            pg_s, _redis_s = bench.raw_backup()
            add("logical, raw: pg_dump -Fd -j2 (setup)", pg_s)
            pg_s, _redis_s = bench.raw_restore()
            add("logical, raw: pg_restore -j2", pg_s)
            backup = bench.drtool("backup", "--env", "sandbox-postgres")
            restored = bench.drtool("restore", "--env", "sandbox-postgres", "--backup",
                                    backup["backup"]["id"])
            add("logical, drtool: restore phase", phase_time(restored, "restore"))
    finally:
        if args.filler_mb:
            bench.drop_filler()
        bench.close()
    med = {name: statistics.median(values) for name, values in rows.items()}
    print(f"filler {args.filler_mb} MB, {args.runs} runs, medians in seconds\n")
    print("| what | median s |\n| --- | ---: |")
    for name, value in med.items():
        print(f"| {name} | {value:.2f} |")
    print("\n| ratio | value |\n| --- | ---: |")
    print(f"| physical restore phase / raw pgbackrest restore + start + promote | "
          f"{med['physical, drtool: restore phase'] / med['physical, raw: pgbackrest restore + start + promote']:.2f} |")  # noqa: E501
    print(f"| logical restore phase / raw pg_restore -j2 | "
          f"{med['logical, drtool: restore phase'] / med['logical, raw: pg_restore -j2']:.2f} |")
    print("\n| physical drill | measured RPO s | backup age s |\n| --- | ---: | ---: |")
    for index, (measured, age) in enumerate(rpo, start=1):
        print(f"| run {index} | {measured} | {age} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
