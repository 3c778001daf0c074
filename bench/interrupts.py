"""Stress: drills interrupted at random moments of random destructive phases must always end
rolled back and verified.

For each run it starts `drtool drill --env sandbox`, waits until a phase chosen at random
among snapshot, disaster, restore and restart is running, waits a random 0-3 s more, and
sends SIGTERM. A run counts as "rolled back and verified" when:

  - drtool exited 130 and its journal says aborted (never running);
  - the rollback passed, with its rollback.* checks, or no rollback was needed (the snapshot
    phase changes nothing) and none ran;
  - the target database holds exactly the rows per table it held before the drill, and the
    target Redis the same number of keys;
  - no process started under the drill's DRTOOL_RUN_ID is left, but for the Redis server
    and the application the rollback restarts;
  - the application answers on the primary stores.

Needs a running sandbox (`drtool sandbox up`), and a passed drill first so that the targets
hold data (the script runs one). Prints one line per run and `K/N rolled back and verified`
last; exits 1 unless K == N.

    .venv/bin/python bench/interrupts.py --runs 30 --seed 1
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from drtool import paths
from drtool.adapters import postgres, redis_client
from drtool.sandbox import layout as lay

BIN = Path(sys.executable).parent
PHASES = ("snapshot", "disaster", "restore", "restart")


def target_state(layout: Any) -> dict[str, Any]:
    """Exact rows per table of the target's appdb (None when it has none), and Redis keys."""
    password = layout.secret("postgres_password")
    with postgres.connect("127.0.0.1", layout.port("pg_target"), "postgres", password,
                          "postgres") as admin:
        exists = admin.execute("SELECT count(*) FROM pg_database WHERE datname = 'appdb'"
                               ).fetchone()[0]
    rows = None
    if exists:
        with postgres.connect("127.0.0.1", layout.port("pg_target"), "postgres", password,
                              "appdb") as conn:
            tables = conn.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) "
                "FROM pg_stat_user_tables ORDER BY 1").fetchall()
            rows = {t: conn.execute(f"SELECT count(*) FROM ONLY {t}").fetchone()[0]  # noqa: S608
                    for (t,) in tables}
    client = redis_client.connect("127.0.0.1", layout.port("redis_target"),
                                  layout.secret("redis_password"))
    return {"rows": rows, "redis_keys": client.dbsize()}


def leftovers(drill_id: str) -> list[str]:
    marker = f"DRTOOL_RUN_ID={drill_id}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                stat = environ.with_name("stat").read_text().rsplit(")", 1)[1].split()[0]
                command = environ.with_name("cmdline").read_bytes().replace(b"\0", b" ")
                if stat != "Z":
                    found.append(command.decode(errors="replace"))
        except OSError:
            continue
    return [c for c in found if "redis-server" not in c and "drtool.sandbox.app serve" not in c]


def running_phase(evidence: Path, known: set[str]) -> tuple[Path, str] | None:
    """The new drill's journal and its running phase, once there is one."""
    for path in evidence.glob("*/journal.json"):
        if path.parent.name in known:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        phase = next((p["name"] for p in data["phases"] if p["status"] == "running"), None)
        if phase:
            return path, phase
    return None


def app_stores(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return json.loads(answer.read()).get("stores")
    except (OSError, ValueError):
        return None


def one_run(layout: Any, rng: random.Random) -> tuple[bool, str]:
    phase, delay = rng.choice(PHASES), rng.uniform(0, 3)
    evidence = paths.evidence_dir("sandbox")
    known = {p.name for p in evidence.iterdir()} if evidence.is_dir() else set()
    before = target_state(layout)
    drill = subprocess.Popen([str(BIN / "drtool"), "drill", "--env", "sandbox", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and drill.poll() is None:
        found = running_phase(evidence, known)
        if found and found[1] == phase:
            break
        time.sleep(0.05)
    time.sleep(delay)
    drill.send_signal(signal.SIGTERM)
    out, err = drill.communicate(timeout=900)
    what = f"SIGTERM {delay:.1f} s into {phase}"
    try:
        journal = json.loads(out)
    except ValueError:
        return False, f"{what}: no journal printed (exit {drill.returncode}): {err[-300:]}"
    problems = []
    if drill.returncode != 130 or journal["status"] != "aborted":
        problems.append(f"exit {drill.returncode}, status {journal['status']}")
    rollback = journal.get("rollback")
    if rollback is not None and rollback["status"] != "passed":
        problems.append(f"rollback {rollback['status']}: {rollback.get('error')}")
    if rollback is None and any(p["name"] in ("disaster", "restore", "restart")
                                and p["status"] not in ("pending", "skipped")
                                for p in journal["phases"]):
        problems.append("the targets changed and no rollback ran")
    after = target_state(layout)
    if after != before:
        rows_before, rows_after = before["rows"] or {}, after["rows"] or {}
        tables = sorted(t for t in rows_before.keys() | rows_after.keys()
                        if rows_before.get(t) != rows_after.get(t))
        problems.append(f"targets differ: Redis keys {before['redis_keys']} -> "
                        f"{after['redis_keys']}, tables {tables}")
    left = leftovers(journal["drill_id"])
    if left:
        problems.append(f"processes left: {left}")
    if app_stores(layout.port("app")) != "primary":
        problems.append("the application is not on the primary stores")
    rolled = f"rollback {rollback['status']} in {rollback['duration_s']} s" if rollback else (
        "no rollback needed")
    return not problems, f"{what}: {'; '.join(problems) or rolled}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    layout = lay.load(paths.drtool_home() / "sandbox")
    if layout is None:
        print("interrupts: the sandbox is not set up: run `drtool sandbox up` first",
              file=sys.stderr)
        return 2
    rng = random.Random(args.seed)  # noqa: S311 - picks moments to interrupt, not secrets
    first = subprocess.run([str(BIN / "drtool"), "drill", "--env", "sandbox"],
                           capture_output=True, text=True, check=False)
    if first.returncode != 0:
        print(f"interrupts: the first drill did not pass: {first.stderr[-500:]}",
              file=sys.stderr)
        return 2
    good = 0
    for index in range(1, args.runs + 1):
        ok, line = one_run(layout, rng)
        good += ok
        print(f"{index:>3} {'ok  ' if ok else 'FAIL'} {line}", flush=True)
    print(f"{good}/{args.runs} rolled back and verified")
    return 0 if good == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
