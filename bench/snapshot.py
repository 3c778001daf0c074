"""Benchmark: the two ways of a logical safety snapshot, on the same database, paired.

Needs a running sandbox (`drtool sandbox up`). A database `bench_snapshot` holding a table of
--size-mb of random bytes (the sandbox's rand_bytes, 8 KB a row) is made on the restore
target's cluster (nothing connects to it there), then, --runs times in turn:

  dump      what `snapshot_method: dump` runs: pg_dump -Fd -j2 --compress=1 of it, then the
            exact count of its table (pg_backup counts in the dump's own snapshot)
  template  what `template` runs (drtool.drill.pg_snapshot): CREATE DATABASE ... TEMPLATE
            ... STRATEGY FILE_COPY, then the exact count of the copy's table

and prints the median, min and max of each and their ratio, pair by pair. The database and
every copy are dropped at the end.

    .venv/bin/python bench/snapshot.py --size-mb 1000 --runs 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys

from run import Bench, timed  # bench/run.py, beside this file

DATABASE = "bench_snapshot"
COPY = "bench_snapshot_copy"


def make(bench: Bench, megabytes: int) -> int:
    """The benchmark's database on the target's cluster; its size in bytes."""
    with bench.pg("pg_target", "postgres") as conn:
        for name in (COPY, DATABASE):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    with bench.pg("pg_target", DATABASE) as conn:
        conn.execute("CREATE FUNCTION rand_bytes(n int) RETURNS bytea LANGUAGE sql VOLATILE AS "
                     "$$ SELECT decode(string_agg(md5(random()::text), ''), 'hex') "
                     "FROM generate_series(1, greatest(1, n / 16)) $$")
        conn.execute("CREATE TABLE filler (id int PRIMARY KEY, payload bytea)")
        conn.execute("INSERT INTO filler SELECT i, rand_bytes(8192) "
                     "FROM generate_series(1, %s) i", (megabytes * 128,))
        conn.execute("VACUUM ANALYZE filler")
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def count(bench: Bench, database: str) -> None:
    with bench.pg("pg_target", database) as conn:
        conn.execute("SELECT count(*) FROM filler").fetchone()


def by_dump(bench: Bench) -> float:
    folder = bench.work / "dump"
    shutil.rmtree(folder, ignore_errors=True)

    def run() -> None:
        bench.pg_cmd("pg_dump", "pg_target", "-Fd", "-j2", "--compress=1", "-f", str(folder),
                     DATABASE)
        count(bench, DATABASE)

    seconds = timed(run)
    shutil.rmtree(folder, ignore_errors=True)
    return seconds


def by_template(bench: Bench) -> float:
    with bench.pg("pg_target", "postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {COPY}")

        def run() -> None:
            conn.execute(f"CREATE DATABASE {COPY} TEMPLATE {DATABASE} STRATEGY FILE_COPY")
            count(bench, COPY)

        seconds = timed(run)
        conn.execute(f"DROP DATABASE {COPY}")
    return seconds


def figures(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} | {min(values):.2f}-{max(values):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bench = Bench()
    try:
        size = make(bench, args.size_mb)
        dumps, copies = [], []
        for _ in range(args.runs):
            dumps.append(by_dump(bench))
            copies.append(by_template(bench))
        ratios = [c / d for c, d in zip(copies, dumps, strict=True)]
        print(f"database {size / 1e6:.0f} MB, {args.runs} runs of each, in turn\n")
        print("| snapshot | median s | min-max s |\n| --- | ---: | ---: |")
        print(f"| dump (pg_dump -Fd -j2 --compress=1, count) | {figures(dumps)} |")
        print(f"| template (CREATE DATABASE ... FILE_COPY, count) | {figures(copies)} |")
        print(f"| template / dump, pair by pair | {figures(ratios)} |")
    finally:
        with bench.pg("pg_target", "postgres") as conn:
            for name in (COPY, DATABASE):
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(bench.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
