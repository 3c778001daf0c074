"""Benchmark: a drill over SSH of the lab's multi-host estate, against its busiest host.

The lab (`drtool lab up`: five hosts in network namespaces, each with its own sshd) holds
the whole estate: a PostgreSQL cluster of two databases, two Redis instances, an uploads
tree, the app and a worker, each component read on one host and restored on another. A
phase runs on its hosts side by side, so a drill should take little longer than its busiest
host is busy. A host's busy time is the union of its tasks' spans (from the journal: each
task's start and duration on that host); the goal is

    drill wall time <= 1.5 x the busiest host's busy time

and the same ratio is printed for each phase, to show which phases wait on one host at a
time. Brings the lab up under $DRTOOL_HOME when it is not up, and takes down what it brought
up.

    PYTHONPATH=. .venv/bin/python bench/lab.py --runs 2 --json /tmp/bench-lab.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.5
PHASES = ("preflight", "snapshot", "backup", "disaster", "restore", "restart", "verify", "cleanup")


def drtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drtool", *args], cwd=ROOT, text=True,
                          capture_output=True, check=False)


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def union(spans: list[tuple[float, float]]) -> float:
    """The length of the union of the [start, end] spans."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def busy_by_host(tasks: list[dict]) -> dict[str, float]:
    spans: dict[str, list[tuple[float, float]]] = {}
    for task in tasks:
        if task.get("started_at") and task.get("duration_s") is not None:
            start = seconds(task["started_at"])
            spans.setdefault(task["host"], []).append((start, start + task["duration_s"]))
    return {host: union(found) for host, found in spans.items()}


def measure(journal: dict) -> dict:
    """The drill's wall time, each host's busy time and each phase's, with their ratios."""
    wall = seconds(journal["ended_at"]) - seconds(journal["started_at"])
    tasks = [t for p in journal["phases"] for t in p["tasks"]]
    hosts = busy_by_host(tasks)
    busiest = max(hosts, key=lambda host: hosts[host])
    phases = {}
    for phase in journal["phases"]:
        here = busy_by_host(phase["tasks"])
        top = max(here.values(), default=0.0)
        phases[phase["name"]] = {"duration_s": phase["duration_s"], "busiest_host_s": top,
                                 "ratio": phase["duration_s"] / top if top else None}
    return {"drill_id": journal["drill_id"], "status": journal["status"], "wall_s": wall,
            "hosts_busy_s": hosts, "busiest_host": busiest, "busiest_s": hosts[busiest],
            "ratio": wall / hosts[busiest], "phases": phases}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure here")
    args = parser.parse_args()
    brought_up = drtool("lab", "status").returncode != 0  # 0: every sshd and service runs
    if brought_up:
        up = drtool("lab", "up", "--json")
        if up.returncode != 0:
            sys.exit(f"bench: the lab did not come up: {up.stderr.strip()}")
    results = []
    try:
        for _ in range(args.runs):
            began = time.perf_counter()
            done = drtool("drill", "--env", "lab", "--json")
            took = time.perf_counter() - began
            if done.returncode != 0:
                sys.exit(f"bench: the lab drill failed (exit {done.returncode}): "
                         f"{done.stderr.strip()[-400:]}")
            result = measure(json.loads(done.stdout))
            result["process_s"] = took
            results.append(result)
    finally:
        if brought_up:
            drtool("lab", "down")
    middle = sorted(results, key=lambda r: r["ratio"])[len(results) // 2]
    if args.json:
        args.json.write_text(json.dumps({
            "command": " ".join(sys.argv), "cores": os.cpu_count(), "runs": results,
            "median_ratio": statistics.median(r["ratio"] for r in results), "goal": GOAL},
            indent=2) + "\n")
    print(f"lab drill {middle['drill_id']}: wall {middle['wall_s']:.1f} s, busiest host "
          f"{middle['busiest_host']} {middle['busiest_s']:.1f} s\n")
    print("| host | busy s |\n| --- | ---: |")
    for host, busy in sorted(middle["hosts_busy_s"].items(), key=lambda kv: -kv[1]):
        print(f"| {host} | {busy:.1f} |")
    print("\n| phase | s | busiest host s | ratio |\n| --- | ---: | ---: | ---: |")
    for name in PHASES:
        phase = middle["phases"].get(name)
        if phase:
            ratio = f"{phase['ratio']:.2f}" if phase["ratio"] else "-"
            print(f"| {name} | {phase['duration_s']:.1f} | {phase['busiest_host_s']:.1f} | "
                  f"{ratio} |")
    ratios = ", ".join(f"{r['ratio']:.2f}" for r in results)
    median = statistics.median(r["ratio"] for r in results)
    print(f"\ndrill wall / busiest host: median {median:.2f} (runs: {ratios}); goal <= {GOAL:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
