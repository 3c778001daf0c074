"""The sandbox's application: a tiny HTTP service on PostgreSQL and Redis.

It stands in for a team's real service. About once a second it writes a heartbeat (a row in
app_heartbeat and the key app:heartbeat), which is how a drill measures real data loss; it
answers /health with 200 only when both of its stores answer.

    python -m drtool.sandbox.app start --stores primary|restore   # (re)start, daemonised
    python -m drtool.sandbox.app stop
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from drtool import paths
from drtool.adapters import postgres, redis_client
from drtool.sandbox import layout as lay
from drtool.sandbox.seed import DATABASE
from drtool.sandbox.services import read_pid, stop_pid

HEARTBEAT_KEY = "app:heartbeat"
STORES = {"primary": ("pg_primary", "redis_primary"), "restore": ("pg_target", "redis_target")}


class App:
    def __init__(self, layout: lay.Layout, stores: str) -> None:
        pg, rd = STORES[stores]
        self.stores = stores
        self.pg_port, self.redis_port = layout.port(pg), layout.port(rd)
        self.pg_password = layout.secret("postgres_password")
        self.redis = redis_client.connect("127.0.0.1", self.redis_port,
                                          layout.secret("redis_password"))
        self.stop = threading.Event()
        self.last_beat: str | None = None

    def db(self):  # noqa: ANN201 - a psycopg connection
        return postgres.connect("127.0.0.1", self.pg_port, "postgres", self.pg_password, DATABASE)

    def heartbeat_forever(self) -> None:
        while not self.stop.is_set():
            try:
                with self.db() as conn:
                    while not self.stop.is_set():
                        beat = conn.execute(
                            "INSERT INTO app_heartbeat DEFAULT VALUES RETURNING beat_at"
                        ).fetchone()[0]
                        self.redis.set(HEARTBEAT_KEY, f"{beat.timestamp():.6f}")
                        self.last_beat = beat.isoformat()
                        self.stop.wait(1.0)
            except (postgres.Error, redis_client.Error) as exc:
                print(f"heartbeat failed: {exc}", file=sys.stderr, flush=True)
                self.stop.wait(1.0)

    def health(self) -> tuple[int, dict[str, object]]:
        body: dict[str, object] = {"stores": self.stores, "last_heartbeat": self.last_beat}
        try:
            with self.db() as conn:
                body["customers"] = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
            body["redis_keys"] = self.redis.dbsize()
        except (postgres.Error, redis_client.Error) as exc:
            body["error"] = str(exc).splitlines()[0]
            return 503, body
        body["status"] = "ok"
        return 200, body


def serve(layout: lay.Layout, stores: str) -> None:
    app = App(layout, stores)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            code, body = app.health() if self.path == "/health" else (404, {"error": "not found"})
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", layout.port("app")), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    beat = threading.Thread(target=app.heartbeat_forever, daemon=True)
    beat.start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        app.stop.set()
        beat.join(timeout=5)


def pidfile(layout: lay.Layout) -> Path:
    return layout.root / "app" / "app.pid"


def start(layout: lay.Layout, stores: str) -> int:
    stop(layout)
    folder = pidfile(layout).parent
    folder.mkdir(parents=True, exist_ok=True)
    with open(layout.logs / "app.log", "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "drtool.sandbox.app", "serve", "--stores", stores],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env=dict(os.environ, DRTOOL_HOME=str(layout.root.parent)),
        )
    pidfile(layout).write_text(f"{child.pid}\n", encoding="utf-8")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"app exited with {child.returncode}; see {layout.logs / 'app.log'}",
                  file=sys.stderr)
            return 1
        try:
            with socket.create_connection(("127.0.0.1", layout.port("app")), timeout=0.5):
                return 0
        except OSError:
            time.sleep(0.1)
    print("app did not open its port within 20 s", file=sys.stderr)
    return 1


def stop(layout: lay.Layout) -> int:
    stop_pid(read_pid(pidfile(layout)), signal.SIGTERM, timeout=15)
    pidfile(layout).unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drtool.sandbox.app")
    parser.add_argument("command", choices=["start", "stop", "serve"])
    parser.add_argument("--stores", choices=sorted(STORES), default="primary")
    args = parser.parse_args(argv)
    layout = lay.load(paths.drtool_home() / "sandbox")
    if layout is None:
        print("the sandbox is not set up: run `drtool sandbox up`", file=sys.stderr)
        return 2
    if args.command == "serve":
        serve(layout, args.stores)
        return 0
    return start(layout, args.stores) if args.command == "start" else stop(layout)


if __name__ == "__main__":
    sys.exit(main())
