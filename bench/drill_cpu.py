"""Where a drill's CPU time goes: run one drtool command and sample, every 50 ms, the CPU
time of every process on the machine, grouped by what it is (ansible-playbook and its task
workers, the modules they run, drtool itself, PostgreSQL, Redis, the rest).

    .venv/bin/python bench/drill_cpu.py .venv/bin/drtool drill --env sandbox

A process that starts and ends between two samples is missed, so the figures are lower
bounds; compare them with each other, run against run, not with `time`."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def kind(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmd = handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
    for needle, name in (("ansible-playbook", "ansible-playbook and its workers"),
                         ("AnsiballZ", "modules"), ("/.ansible/tmp", "modules"),
                         ("drtool drill", "drtool"), ("drtool ", "drtool"),
                         ("postgres", "postgresql"), ("pg_", "postgresql client tools"),
                         ("redis", "redis")):
        if needle in cmd:
            return name
    return "other"


def cpu_seconds(pid: str) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    seen: dict[str, tuple[str, float, float]] = {}
    before = {pid: cpu_seconds(pid) or 0.0 for pid in filter(str.isdigit, os.listdir("/proc"))}
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            now = cpu_seconds(pid)
            if now is None:
                continue
            # A process that ran before the command counts only what it spent during it.
            seen[pid] = (seen[pid][0] if pid in seen else kind(pid), before.get(pid, 0.0), now)
        time.sleep(0.05)
    wall = time.monotonic() - started
    totals: dict[str, float] = collections.defaultdict(float)
    for name, first, last in seen.values():
        if name:
            totals[name] += last - first
    print(f"wall {wall:.1f} s, exit {process.returncode}")
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{seconds:8.2f} s  {name}")
    return process.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
