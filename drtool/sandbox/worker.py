"""The sandbox's worker: a second service, a job consumer on the queue Redis alone.

Jobs wait in the stream queue:jobs, read by the consumer group `workers` (the seed puts 2,000
there). The worker takes them as consumer `worker-1`, first those delivered to it and never
acknowledged (a restored queue may hold some), and for each batch, in one transaction,
counts them (worker:processed, and per kind in worker:stats), records the newest
(worker:last_job) and acknowledges them. What it does adds and removes no key, so a
restored queue keeps its key count while the worker runs. About once a second it writes its
heartbeat (worker:heartbeat, epoch seconds), by which a drill measures the queue's data
loss; it writes one before it opens its port.

/health answers 200 when the queue answers, with `processed` (the queue's count of jobs
done), `queue_length` (the stream's entries) and `backlog` (entries not yet done: pending
acknowledgement or never delivered); a worker has caught up with its queue when its backlog
is 0.

    python -m drtool.sandbox.worker start --stores primary|restore [--config worker.json]
    python -m drtool.sandbox.worker stop [--config worker.json]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from drtool import paths
from drtool.adapters import redis_client
from drtool.sandbox import app as service
from drtool.sandbox.seed import (
    QUEUE_GROUP,
    QUEUE_HEARTBEAT,
    QUEUE_LAST_JOB,
    QUEUE_PROCESSED,
    QUEUE_STATS,
    QUEUE_STREAM,
)

CONSUMER = "worker-1"
BATCH = 100


class Worker:
    def __init__(self, config: service.AppConfig, stores: str) -> None:
        self.stores = stores
        host, port = config.stores[stores]["redis"]
        self.redis = redis_client.connect(host, port, config.secret("redis_password"))
        self.stop = threading.Event()
        self.last_beat: str | None = None

    def beat(self) -> None:
        now = time.time()
        self.redis.set(QUEUE_HEARTBEAT, f"{now:.6f}")
        self.last_beat = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))

    def take(self, since: str) -> list[tuple[str, dict[str, str]]]:
        """Up to BATCH jobs: those delivered to this consumer and not acknowledged ("0"), or
        new ones (">", waiting up to a second)."""
        block = 1000 if since == ">" else None
        answer: Any = self.redis.xreadgroup(QUEUE_GROUP, CONSUMER, {QUEUE_STREAM: since},
                                            count=BATCH, block=block)
        return [(job_id, fields or {}) for _stream, entries in answer or []
                for job_id, fields in entries]

    def done(self, jobs: list[tuple[str, dict[str, str]]]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.incrby(QUEUE_PROCESSED, len(jobs))
        for _job_id, fields in jobs:
            pipe.hincrby(QUEUE_STATS, fields.get("kind", "unknown"), 1)
        pipe.set(QUEUE_LAST_JOB, jobs[-1][0])
        pipe.xack(QUEUE_STREAM, QUEUE_GROUP, *[job_id for job_id, _ in jobs])
        pipe.execute()

    def work_forever(self) -> None:
        since = "0"  # first the jobs this consumer was given and never acknowledged
        next_beat = 0.0
        while not self.stop.is_set():
            try:
                if time.monotonic() >= next_beat:
                    self.beat()
                    next_beat = time.monotonic() + 1.0
                jobs = self.take(since)
                if jobs:
                    self.done(jobs)
                elif since == "0":
                    since = ">"
            except redis_client.Error as exc:
                print(f"worker: {exc}", file=sys.stderr, flush=True)
                self.stop.wait(1.0)

    def backlog(self) -> int:
        """Entries of the stream the group has not done: delivered and not acknowledged, or
        never delivered."""
        groups: Any = self.redis.xinfo_groups(QUEUE_STREAM)
        group = next((g for g in groups if g.get("name") == QUEUE_GROUP), None)
        if group is None:
            raise redis_client.Error(f"{QUEUE_STREAM} has no consumer group {QUEUE_GROUP}")
        lag = group.get("lag")
        if lag is None:  # not known to the server (entries were deleted): count them
            undelivered: Any = self.redis.xrange(QUEUE_STREAM, f"({group['last-delivered-id']}",
                                                 "+")
            lag = len(undelivered)
        return int(group.get("pending") or 0) + int(lag)

    def health(self) -> tuple[int, dict[str, object]]:
        body: dict[str, object] = {"stores": self.stores, "last_heartbeat": self.last_beat}
        try:
            body["processed"] = int(self.redis.get(QUEUE_PROCESSED) or 0)  # type: ignore[arg-type]
            body["queue_length"] = self.redis.xlen(QUEUE_STREAM)
            body["backlog"] = self.backlog()
        except redis_client.Error as exc:
            body["error"] = str(exc).splitlines()[0]
            return 503, body
        body["status"] = "ok"
        return 200, body


def serve(config: service.AppConfig, stores: str) -> None:
    worker = Worker(config, stores)
    try:
        worker.beat()  # the heartbeat key exists before anyone is told the worker runs
    except redis_client.Error as exc:
        print(f"worker: {exc}", file=sys.stderr, flush=True)
    service.run_service(config.listen, worker.health, worker.work_forever, worker.stop)


def start(config_path: Path, stores: str) -> int:
    """(Re)start the worker on `stores`, detached; 0 once it listens, 1 if it did not."""
    return service.launch("drtool.sandbox.worker", config_path, stores)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drtool.sandbox.worker")
    parser.add_argument("command", choices=["start", "stop", "serve"])
    parser.add_argument("--stores", choices=["primary", "restore"], default="primary")
    parser.add_argument("--config", type=Path,
                        default=paths.drtool_home() / "sandbox" / "worker.json",
                        help="worker.json written by `drtool sandbox up`")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        print(f"no worker configuration at {args.config}: run `drtool sandbox up`",
              file=sys.stderr)
        return 2
    if args.command == "serve":
        serve(service.AppConfig.load(args.config), args.stores)
        return 0
    return start(args.config, args.stores) if args.command == "start" else service.stop(args.config)


if __name__ == "__main__":
    sys.exit(main())
