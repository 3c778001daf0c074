"""Benchmark: pg_dump -Fd -j2 of appdb at --compress levels, on two kinds of data.

Needs a running sandbox (`drtool sandbox up`). For each kind, a table of --size-mb is added
to appdb on the primary (dropped at the end) and appdb is dumped --runs times per level:

  random  8 KB of random bytes per row (bytea): nothing to compress, and COPY writes bytea
          as hex, twice its size, which is what compression then wins back
  mixed   rows like an application's: ids, a customer, a status, an amount, a time, a note

and prints, per kind and level, the median seconds, min-max, and the dump's size. The
figures chose the safety snapshot's default (`drtool_postgres_snapshot_compress`).

    .venv/bin/python bench/compression.py --size-mb 256 --runs 3 --levels 0,1,6
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys

from run import Bench, timed  # bench/run.py, beside this file

FILLERS = {
    "random": ("CREATE TABLE bench_filler (id int PRIMARY KEY, payload bytea)",
               "INSERT INTO bench_filler SELECT i, rand_bytes(8192) "
               "FROM generate_series(1, %s) i", 128),
    "mixed": ("CREATE TABLE bench_filler (id int PRIMARY KEY, customer text, status text, "
              "amount numeric, at timestamptz, note text)",
              "INSERT INTO bench_filler SELECT i, 'customer-' || (i %% 50000), "
              "(ARRAY['paid', 'open', 'shipped', 'refunded'])[1 + i %% 4], "
              "round((random() * 1000)::numeric, 2), now() - (i || ' seconds')::interval, "
              "md5(i::text) || ' order placed through the web shop' "
              "FROM generate_series(1, %s) i", 1024 * 1024 // 150),
}


def fill(bench: Bench, kind: str, megabytes: int) -> int:
    """The filler of `kind` in appdb; its size on disk in bytes."""
    create, insert, rows_per_mb = FILLERS[kind]
    with bench.pg("pg_primary") as conn:
        conn.execute("DROP TABLE IF EXISTS bench_filler")
        conn.execute(create)
        conn.execute(insert, (megabytes * rows_per_mb,))
        conn.execute("VACUUM ANALYZE bench_filler")
        return conn.execute("SELECT pg_total_relation_size('bench_filler')").fetchone()[0]


def dump(bench: Bench, level: str) -> tuple[float, int]:
    """Seconds and bytes of one pg_dump -Fd -j2 --compress=LEVEL of appdb."""
    folder = bench.work / "dump"
    shutil.rmtree(folder, ignore_errors=True)
    seconds = timed(lambda: bench.pg_cmd("pg_dump", "pg_primary", "-Fd", "-j2",
                                         f"--compress={level}", "-f", str(folder), "appdb"))
    return seconds, sum(entry.stat().st_size for entry in os.scandir(folder))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--levels", default="0,1,6")
    args = parser.parse_args()
    bench = Bench()
    print("| data | level | median s | min-max s | dump MB |\n| --- | ---: | ---: | ---: | ---: |")
    try:
        for kind in FILLERS:
            size = fill(bench, kind, args.size_mb)
            print(f"| {kind} ({size / 1e6:.0f} MB table) | | | | |", flush=True)
            for level in args.levels.split(","):
                runs = [dump(bench, level) for _ in range(args.runs)]
                times = [seconds for seconds, _bytes in runs]
                print(f"| {kind} | {level} | {statistics.median(times):.2f} | "
                      f"{min(times):.2f}-{max(times):.2f} | {runs[-1][1] / 1e6:.0f} |",
                      flush=True)
    finally:
        bench.drop_filler()
        shutil.rmtree(bench.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
