"""Benchmark: drtool's backup and restore against the raw tools, same data, same run.

Needs a running sandbox (`drtool sandbox up`). For each run it times:

  raw backup    pg_dump -Fd -j2 of appdb, and Redis BGSAVE + copy of the RDB
  drtool backup `drtool backup --env sandbox`: the whole phase, and its two module tasks
  raw restore   pg_restore -j2 into a fresh database on the target cluster, and Redis
                stop / RDB in place / start / wait until loaded
  drtool restore the restore phase of `drtool restore --env sandbox --backup ID`

and prints medians and the ratios drtool/raw. --filler-mb adds a table of random bytes to
the primary for the duration of the benchmark (dropped at the end), so sizes are realistic
and compression cannot flatter the figures.

    .venv/bin/python bench/run.py --runs 3 --filler-mb 200
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drtool import paths
from drtool.adapters import postgres, redis_client
from drtool.sandbox import layout as lay

BIN = Path(sys.executable).parent


def timed(fn) -> float:  # noqa: ANN001 - any callable
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Bench:
    def __init__(self) -> None:
        found = lay.load(paths.drtool_home() / "sandbox")
        if found is None:
            sys.exit("bench: the sandbox is not set up: run `drtool sandbox up` first")
        self.layout = found
        self.pg_password = found.secret("postgres_password")
        self.redis_password = found.secret("redis_password")
        self.pg_env = dict(os.environ, PGPASSWORD=self.pg_password)
        self.work = Path(tempfile.mkdtemp(prefix="drtool-bench-"))

    def pg(self, service: str, database: str = "appdb"):  # noqa: ANN201
        return postgres.connect("127.0.0.1", self.layout.port(service), "postgres",
                                self.pg_password, database)

    def redis(self, service: str, retry: bool = True):  # noqa: ANN201
        return redis_client.connect("127.0.0.1", self.layout.port(service), self.redis_password,
                                    retry=retry)

    def pg_cmd(self, tool: str, service: str, *args: str) -> None:
        done = subprocess.run([str(lay.PG_BIN / tool), "-h", "127.0.0.1", "-p",
                               str(self.layout.port(service)), "-U", "postgres", "--no-password",
                               *args], env=self.pg_env, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"bench: {tool} failed: {done.stderr.strip()}")

    def add_filler(self, megabytes: int) -> None:
        with self.pg("pg_primary") as conn:
            conn.execute("DROP TABLE IF EXISTS bench_filler")
            conn.execute("CREATE TABLE bench_filler (id int PRIMARY KEY, payload bytea)")
            conn.execute("INSERT INTO bench_filler SELECT i, rand_bytes(8192) "
                         "FROM generate_series(1, %s) i", (megabytes * 128,))

    def drop_filler(self) -> None:
        with self.pg("pg_primary") as conn:
            conn.execute("DROP TABLE IF EXISTS bench_filler")

    # -- raw tools -------------------------------------------------------------------------

    def raw_backup(self) -> tuple[float, float]:
        target = self.work / "raw"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        pg_s = timed(lambda: self.pg_cmd("pg_dump", "pg_primary", "-Fd", "-j2", "-f",
                                         str(target / "postgres"), "appdb"))

        def redis_backup() -> None:
            client = self.redis("redis_primary")
            saves = client.info("persistence")["rdb_saves"]
            client.bgsave()
            while client.info("persistence")["rdb_saves"] == saves:
                time.sleep(0.01)
            shutil.copyfile(self.layout.root / "redis-primary" / "dump.rdb", target / "dump.rdb")

        return pg_s, timed(redis_backup)

    def raw_restore(self) -> tuple[float, float]:
        def pg_restore() -> None:
            with self.pg("pg_target", "postgres") as admin:
                admin.execute("DROP DATABASE IF EXISTS bench_restore WITH (FORCE)")
                admin.execute("CREATE DATABASE bench_restore")
            self.pg_cmd("pg_restore", "pg_target", "-j2", "--exit-on-error", "-d",
                        "bench_restore", str(self.work / "raw" / "postgres"))

        def redis_restore() -> None:
            folder = self.layout.root / "redis-target"
            client = self.redis("redis_target", retry=False)
            with contextlib.suppress(redis_client.Error):  # it closes the connection
                client.shutdown(nosave=True)
            while (folder / "redis.pid").exists():
                time.sleep(0.01)
            shutil.copyfile(self.work / "raw" / "dump.rdb", folder / "dump.rdb")
            subprocess.run(["redis-server", str(folder / "redis.conf")], check=True)
            while True:
                try:
                    if not self.redis("redis_target").info("persistence")["loading"]:
                        return
                except redis_client.Error:
                    time.sleep(0.01)

        return timed(pg_restore), timed(redis_restore)

    # -- drtool ----------------------------------------------------------------------------

    def drtool(self, *args: str) -> dict:
        done = subprocess.run([str(BIN / "drtool"), *args, "--json"], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"bench: drtool {' '.join(args)} failed: {done.stderr.strip()}")
        return json.loads(done.stdout)

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        with self.pg("pg_target", "postgres") as admin:
            admin.execute("DROP DATABASE IF EXISTS bench_restore WITH (FORCE)")


def task_time(journal: dict, phase: str, action: str) -> float:
    record = next(p for p in journal["phases"] if p["name"] == phase)
    return sum(t["duration_s"] for t in record["tasks"] if t["action"] == action)


def phase_time(journal: dict, phase: str) -> float:
    return next(p for p in journal["phases"] if p["name"] == phase)["duration_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--filler-mb", type=int, default=0)
    args = parser.parse_args()
    bench = Bench()
    rows: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    try:
        if args.filler_mb:
            bench.add_filler(args.filler_mb)
        for _ in range(args.runs):
            pg_s, redis_s = bench.raw_backup()
            add("raw backup: pg_dump -Fd -j2", pg_s)
            add("raw backup: redis BGSAVE + copy", redis_s)
            backup = bench.drtool("backup", "--env", "sandbox")
            add("drtool backup phase (whole playbook)", phase_time(backup, "backup"))
            add("drtool pg_backup task", task_time(backup, "backup", "drtool.drill.pg_backup"))
            add("drtool redis_backup task",
                task_time(backup, "backup", "drtool.drill.redis_backup"))
            pg_s, redis_s = bench.raw_restore()
            add("raw restore: pg_restore -j2", pg_s)
            add("raw restore: redis stop/copy/start/load", redis_s)
            restore = bench.drtool("restore", "--env", "sandbox", "--backup",
                                   backup["backup"]["id"])
            add("drtool restore phase (integrity + both stores)", phase_time(restore, "restore"))
            size = backup["backup"]["size"]
    finally:
        if args.filler_mb:
            bench.drop_filler()
        bench.close()
    med = {name: statistics.median(values) for name, values in rows.items()}
    raw_backup = med["raw backup: pg_dump -Fd -j2"] + med["raw backup: redis BGSAVE + copy"]
    raw_restore = (med["raw restore: pg_restore -j2"]
                   + med["raw restore: redis stop/copy/start/load"])
    ratios = {
        "pg_backup task / pg_dump":
            med["drtool pg_backup task"] / med["raw backup: pg_dump -Fd -j2"],
        "backup phase / raw backup (pg + redis)":
            med["drtool backup phase (whole playbook)"] / raw_backup,
        "restore phase / raw restore (pg + redis)":
            med["drtool restore phase (integrity + both stores)"] / raw_restore,
    }
    print(f"backup size {size / 1e6:.1f} MB, {args.runs} runs, medians in seconds\n")
    print("| what | median s |\n| --- | ---: |")
    for name, value in med.items():
        print(f"| {name} | {value:.2f} |")
    print("\n| ratio | value |\n| --- | ---: |")
    for name, value in ratios.items():
        print(f"| {name} | {value:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
