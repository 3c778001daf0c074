"""The sandbox's application: a tiny HTTP service on PostgreSQL and Redis.

It stands in for a team's real service. About once a second it writes a heartbeat (a row in
app_heartbeat and the key app:heartbeat), which is how a drill measures real data loss; it
answers /health with 200 only when both of its stores answer, with the counts it read there
(`orders`: the orders in appdb, which a restored app must report as the restored database
holds them).

    python -m drtool.sandbox.app start --stores primary|restore [--config app.json]
    python -m drtool.sandbox.app stop [--config app.json]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from drtool import paths
from drtool.adapters import postgres, redis_client
from drtool.sandbox.seed import DATABASE
from drtool.util.process import live_pid, read_pid, stop_pid

HEARTBEAT_KEY = "app:heartbeat"


@dataclass(frozen=True)
class AppConfig:
    """Where a sandbox service listens, which stores it can use, where its secrets and state
    live.

    Written by `drtool sandbox up` and `drtool lab up` as app.json (and by `sandbox up` as
    worker.json for drtool.sandbox.worker); the service is started with `--config` pointing
    at it.
    """

    listen: tuple[str, int]
    stores: dict[str, dict[str, tuple[str, int]]]  # {"primary": {"pg": (host, port), ...}}
    secrets: Path
    state: Path  # pidfile and log live here
    name: str = "app"  # the service's: its pidfile and log are NAME.pid, NAME.log

    def save(self, path: Path) -> None:
        data = {"name": self.name, "listen": list(self.listen), "secrets": str(self.secrets),
                "state": str(self.state),
                "stores": {k: {s: list(a) for s, a in v.items()} for k, v in self.stores.items()}}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> AppConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls((data["listen"][0], int(data["listen"][1])),
                   {k: {s: (a[0], int(a[1])) for s, a in v.items()}
                    for k, v in data["stores"].items()},
                   Path(data["secrets"]), Path(data["state"]), str(data.get("name", "app")))

    def secret(self, name: str) -> str:
        return (self.secrets / name).read_text(encoding="utf-8").strip()

    @property
    def pidfile(self) -> Path:
        return self.state / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.state / f"{self.name}.log"


class App:
    def __init__(self, config: AppConfig, stores: str) -> None:
        self.stores = stores
        self.pg_address = config.stores[stores]["pg"]
        redis_host, redis_port = config.stores[stores]["redis"]
        self.pg_password = config.secret("postgres_password")
        self.redis = redis_client.connect(redis_host, redis_port, config.secret("redis_password"))
        self.stop = threading.Event()
        self.last_beat: str | None = None

    def db(self):  # noqa: ANN201 - a psycopg connection
        host, port = self.pg_address
        return postgres.connect(host, port, "postgres", self.pg_password, DATABASE)

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
                body["orders"] = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
            body["redis_keys"] = self.redis.dbsize()
        except (postgres.Error, redis_client.Error) as exc:
            body["error"] = str(exc).splitlines()[0]
            return 503, body
        body["status"] = "ok"
        return 200, body


def serve(config: AppConfig, stores: str) -> None:
    app = App(config, stores)
    run_service(config.listen, app.health, app.heartbeat_forever, app.stop)


def run_service(listen: tuple[str, int], health: Callable[[], tuple[int, dict[str, object]]],
                work: Callable[[], None], stop: threading.Event) -> None:
    """Answer GET /health with `health()` on `listen` while `work()` runs in a thread, until
    SIGTERM; then set `stop` and wait (a little) for the work to end."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            code, body = health() if self.path == "/health" else (404, {"error": "not found"})
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(listen, Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        worker.join(timeout=5)


def start(config_path: Path, stores: str) -> int:
    """(Re)start the app on `stores`, detached; 0 once it listens, 1 if it did not."""
    return launch("drtool.sandbox.app", config_path, stores)


def launch(module: str, config_path: Path, stores: str) -> int:
    """(Re)start the service `python -m MODULE serve` runs on `stores`, detached, with its
    pidfile and log where its configuration says; 0 once it listens, 1 if it did not."""
    config = AppConfig.load(config_path)
    stop(config_path)
    config.state.mkdir(parents=True, exist_ok=True)
    with open(config.log, "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--stores", stores,
             "--config", str(config_path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
    config.pidfile.write_text(f"{child.pid}\n", encoding="utf-8")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"{config.name} exited with {child.returncode}; see {config.log}",
                  file=sys.stderr)
            return 1
        try:
            with socket.create_connection(config.listen, timeout=0.5):
                return 0
        except OSError:
            time.sleep(0.1)
    print(f"{config.name} did not open its port within 20 s", file=sys.stderr)
    return 1


def stop(config_path: Path) -> int:
    config = AppConfig.load(config_path)
    stop_pid(read_pid(config.pidfile), signal.SIGTERM, timeout=15)
    config.pidfile.unlink(missing_ok=True)
    return 0


def running_pid(config_path: Path) -> int | None:
    """The app's PID when it runs, else None."""
    try:
        pidfile = AppConfig.load(config_path).pidfile
    except (OSError, ValueError, KeyError):
        return None
    return live_pid(pidfile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drtool.sandbox.app")
    parser.add_argument("command", choices=["start", "stop", "serve"])
    parser.add_argument("--stores", choices=["primary", "restore"], default="primary")
    parser.add_argument("--config", type=Path,
                        default=paths.drtool_home() / "sandbox" / "app.json",
                        help="app.json written by `drtool sandbox up` or `drtool lab up`")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        print(f"no app configuration at {args.config}: run `drtool sandbox up`", file=sys.stderr)
        return 2
    if args.command == "serve":
        serve(AppConfig.load(args.config), args.stores)
        return 0
    return start(args.config, args.stores) if args.command == "start" else stop(args.config)


if __name__ == "__main__":
    sys.exit(main())
