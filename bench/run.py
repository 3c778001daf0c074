"""Benchmark: a whole drtool drill against the raw tools, on the same data, in the same run.

Needs a running sandbox (`drtool sandbox up`). The drill is of `bench`, a copy of the sandbox
holding the cluster `main` (appdb and shop), the Redis `cache` and the `api` service (written
under $DRTOOL_HOME/inventories). --size-mb adds a table of random bytes to appdb for the
benchmark's duration (dropped at the end), so sizes are realistic and compression cannot
flatter anyone. Each run times:

  drill         `drtool drill --env bench`: its wall time, every phase, the RTO and where the
                RTO went (drtool.report.recovery_time)
  raw backup    pg_dump -Fd -j2 of each database, Redis BGSAVE + copy of the RDB
  raw restore   pg_restore -j2 of each into a fresh database on the target cluster
                (--no-owner: the raw restore does not carry roles), Redis stop / RDB in
                place / start / wait until loaded
  raw start     the api started on the primaries, until /health answers 200
  raw verify    an exact count(*) of every table of the databases restored, and DBSIZE

and prints the medians, then the ratios against the issue's goals, last. --json FILE writes
every figure of every run, the medians, the ratios and the RTO's breakdown as JSON.

    .venv/bin/python bench/run.py --size-mb 0 --runs 2 --json /tmp/bench.json
    .venv/bin/python bench/run.py --size-mb 1000 --runs 2 --json /tmp/bench-1g.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from drtool import paths
from drtool.adapters import postgres, redis_client
from drtool.report import recovery_time
from drtool.sandbox import layout as lay

ROOT = Path(__file__).resolve().parents[1]
BENCH_ENV = "bench"
DATABASES = ("appdb", "shop")
# The goals for each ratio (speed issue): at or under.
GOALS = {"restore phase / raw restore": 1.10, "orchestration share of the RTO": 0.10,
         "drill wall / (raw backup + raw restore)": 1.5}


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

    def raw_backup(self, databases: tuple[str, ...] = ("appdb",)) -> tuple[float, float]:
        """pg_dump -Fd -j2 of each database, one after another; Redis BGSAVE + copy."""
        target = self.work / "raw"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)

        def dumps() -> None:
            for database in databases:
                self.pg_cmd("pg_dump", "pg_primary", "-Fd", "-j2", "-f",
                            str(target / database), database)

        def redis_backup() -> None:
            client = self.redis("redis_primary")
            saves = client.info("persistence")["rdb_saves"]
            client.bgsave()
            while client.info("persistence")["rdb_saves"] == saves:
                time.sleep(0.01)
            shutil.copyfile(self.layout.root / "redis-primary" / "dump.rdb", target / "dump.rdb")

        return timed(dumps), timed(redis_backup)

    def raw_restore(self, databases: tuple[str, ...] = ("appdb",)) -> tuple[float, float]:
        """pg_restore -j2 of each dump into a fresh database bench_DATABASE on the target
        cluster; the target Redis stopped, the RDB put in place, started, loaded."""
        def pg_restore() -> None:
            for database in databases:
                with self.pg("pg_target", "postgres") as admin:
                    admin.execute(f"DROP DATABASE IF EXISTS bench_{database} WITH (FORCE)")
                    admin.execute(f"CREATE DATABASE bench_{database}")
                self.pg_cmd("pg_restore", "pg_target", "-j2", "--exit-on-error", "--no-owner",
                            "--no-privileges", "-d", f"bench_{database}",
                            str(self.work / "raw" / database))

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

    def raw_verify(self, databases: tuple[str, ...]) -> float:
        """An exact count(*) of every table of the raw restores, and the target's DBSIZE."""
        def counts() -> None:
            for database in databases:
                with self.pg("pg_target", f"bench_{database}") as conn:
                    tables = conn.execute(
                        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables"
                    ).fetchall()
                    for (table,) in tables:
                        # names quoted by format('%I.%I')
                        conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
            self.redis("redis_target").dbsize()

        return timed(counts)

    def raw_start(self) -> float:
        """The api started on the primaries (as it ran before), until /health answers 200."""
        app = [sys.executable, "-m", "drtool.sandbox.app"]
        subprocess.run([*app, "stop"], check=True, capture_output=True)
        url = f"http://127.0.0.1:{self.layout.port('app')}/health"

        def start() -> None:
            subprocess.run([*app, "start", "--stores", "primary"], check=True,
                           capture_output=True)
            while True:
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as ok:
                    if ok.status == 200:
                        return
                time.sleep(0.05)

        return timed(start)

    # -- drtool ----------------------------------------------------------------------------

    def drtool(self, *args: str) -> dict:
        # `python -m drtool` from this checkout's folder: the drtool measured is this one,
        # whichever checkout the virtual environment was installed from.
        done = subprocess.run([sys.executable, "-m", "drtool", *args, "--json"], cwd=ROOT,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"bench: drtool {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout)

    def bench_env(self) -> None:
        """$DRTOOL_HOME/inventories/bench: the tests' slim copy of the sandbox's inventory
        (the components main, cache and api, their hosts and the team checks that read
        them)."""
        sys.path.insert(0, str(ROOT))
        from tests.conftest import Drtool, copy_inventory  # the tests' own copy, kept one

        copy_inventory(Drtool(paths.drtool_home(), dict(os.environ)), BENCH_ENV, {})

    def close(self, databases: tuple[str, ...] = ("appdb",)) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        with self.pg("pg_target", "postgres") as admin:
            for database in (*databases, "restore"):
                admin.execute(f"DROP DATABASE IF EXISTS bench_{database} WITH (FORCE)")


def phase_time(journal: dict, phase: str) -> float:
    return next(p for p in journal["phases"] if p["name"] == phase)["duration_s"]


def machine() -> dict:
    memory = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return {"cores": os.cpu_count(), "memory_gb": round(memory / 1024 / 1024, 1),
            "python": platform.python_version(), "commit": commit + ("+dirty" if dirty else "")}


def ratios_of(med: dict[str, float]) -> dict[str, float]:
    raw_restore = med["raw restore: pg_restore -j2"] + med["raw restore: redis"]
    raw_backup = med["raw backup: pg_dump -Fd -j2"] + med["raw backup: redis"]
    # The RTO's critical path done by hand: the components restored side by side (the
    # longer of the two), then the service started, then the data counted. The disaster
    # (stopping the app, dropping what the restore replaces) is counted as orchestration.
    critical = (max(med["raw restore: pg_restore -j2"], med["raw restore: redis"])
                + med["raw start: api until healthy"] + med["raw verify: count(*) and DBSIZE"])
    return {
        "restore phase / raw restore": med["drill: restore phase"] / raw_restore,
        "orchestration share of the RTO": max(0.0, med["drill: RTO"] - critical)
        / med["drill: RTO"],
        "drill wall / (raw backup + raw restore)": med["drill: wall"]
        / (raw_backup + raw_restore),
        "snapshot phase / raw pg_dump": med["drill: snapshot phase"]
        / med["raw backup: pg_dump -Fd -j2"],
        "backup phase / raw backup": med["drill: backup phase"] / raw_backup,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=0,
                        help="MB of random bytes added to appdb for the benchmark")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="write every figure, median, ratio and the RTO's breakdown here")
    args = parser.parse_args()
    bench = Bench()
    runs: dict[str, list[float]] = {}
    drills: list[dict] = []

    def add(name: str, value: float) -> None:
        runs.setdefault(name, []).append(round(value, 3))

    began = time.perf_counter()
    try:
        bench.bench_env()
        if args.size_mb:
            bench.add_filler(args.size_mb)
        for _ in range(args.runs):
            start = time.perf_counter()
            drill = bench.drtool("drill", "--env", BENCH_ENV)
            add("drill: wall", time.perf_counter() - start)
            for phase in ("preflight", "snapshot", "backup", "disaster", "restore", "restart",
                          "verify", "cleanup"):
                add(f"drill: {phase} phase", phase_time(drill, phase))
            add("drill: RTO", drill["rto_s"])
            drills.append(drill)
            pg_s, redis_s = bench.raw_backup(DATABASES)
            add("raw backup: pg_dump -Fd -j2", pg_s)
            add("raw backup: redis", redis_s)
            pg_s, redis_s = bench.raw_restore(DATABASES)
            add("raw restore: pg_restore -j2", pg_s)
            add("raw restore: redis", redis_s)
            add("raw start: api until healthy", bench.raw_start())
            add("raw verify: count(*) and DBSIZE", bench.raw_verify(DATABASES))
    finally:
        if args.size_mb:
            bench.drop_filler()
        bench.close(DATABASES)
    med = {name: statistics.median(values) for name, values in runs.items()}
    ratios = ratios_of(med)
    middle = sorted(drills, key=lambda d: d["rto_s"])[len(drills) // 2]
    where = recovery_time.breakdown(middle)
    size = middle["backup"]["size"]
    if args.json:
        args.json.write_text(json.dumps({
            "command": " ".join(sys.argv), "machine": machine(), "size_mb": args.size_mb,
            "runs": args.runs, "backup_bytes": size, "minutes": (time.perf_counter() - began) / 60,
            "figures": runs, "medians": med, "ratios": ratios, "goals": GOALS,
            "recovery": where, "drill_ids": [d["drill_id"] for d in drills]}, indent=2) + "\n")
    print(f"backup {size / 1e6:.1f} MB, {args.runs} runs, medians in seconds\n")
    print("| what | median s |\n| --- | ---: |")
    for name, value in med.items():
        print(f"| {name} | {value:.2f} |")
    if where:
        print(f"\nWhere the RTO of drill {middle['drill_id']} went ({where['rto_s']:.1f} s):\n")
        print("| phase | s | steps acting on hosts | around them |\n| --- | ---: | ---: | ---: |")
        for phase in where["phases"]:
            print(f"| {phase['name']} | {phase['duration_s']:.2f} | {phase['work_s']:.2f} | "
                  f"{phase['orchestration_s']:.2f} |")
        print("\n| longest steps | phase | s |\n| --- | --- | ---: |")
        for step in where["steps"][:8]:
            print(f"| {step['name']} | {step['phase']} | {step['duration_s']:.2f} |")
    print("\n| ratio | value | goal |\n| --- | ---: | ---: |")
    for name, value in ratios.items():
        goal = GOALS.get(name)
        print(f"| {name} | {value:.2f} | {f'<= {goal:.2f}' if goal else '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
