"""The sandbox's processes: two PostgreSQL clusters, two Redis servers, an S3 server. Each is
started here and stopped by the PID it recorded, never by name."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from drtool.adapters.execute import as_user, run
from drtool.errors import OrchestrationError
from drtool.util.process import live_pid, stop_pid

PG_USER = "postgres"


def in_netns(argv: list[str], netns: str | None) -> list[str]:
    """Prefix `argv` so that it runs inside network namespace `netns` (when given)."""
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def postgres_can_enter(folder: Path) -> bool:
    """Whether the postgres user can reach `folder` (always, when drtool is not root)."""
    if os.geteuid() != 0:
        return True
    return run(as_user(["test", "-x", str(folder)], PG_USER), check=False).returncode == 0


def ensure_secrets(folder: Path, names: tuple[str, ...] = ("postgres_password",
                                                            "redis_password")) -> None:
    """Generate each missing secret as a random token in its own file, mode 0600."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in names:
        path = folder / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
            os.chmod(path, 0o600)


@dataclass(frozen=True)
class PostgresCluster:
    name: str
    root: Path  # the cluster's folder: data/, run/, log
    port: int
    bin_dir: Path
    address: str = "127.0.0.1"
    netns: str | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def pid(self) -> int | None:
        return live_pid(self.data / "postmaster.pid")

    def initialise(self, password: str, allow: str | None = None) -> None:
        """initdb with a scram-protected superuser `postgres`, listening on its address;
        `allow` (a CIDR) may connect too, with the password."""
        if (self.data / "PG_VERSION").exists():
            return
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        pwfile = self.root / ".pw"
        pwfile.write_text(password + "\n", encoding="utf-8")
        _chown_tree(self.root)
        try:
            run(as_user([str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", PG_USER,
                         f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                         "--no-instructions"], PG_USER), timeout=300)
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                "\n# drtool sandbox\n"
                f"port = {self.port}\nlisten_addresses = '{self.address}'\n"
                f"unix_socket_directories = '{self.root / 'run'}'\n"
                "max_connections = 60\nshared_buffers = 64MB\nmax_wal_size = 1GB\n"
            )
        if allow:
            with open(self.data / "pg_hba.conf", "a", encoding="utf-8") as hba:
                hba.write(f"host all all {allow} scram-sha-256\n")

    def start(self) -> None:
        if self.pid:
            return
        log = self.root / "postgres.log"
        try:
            run(in_netns(as_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l",
                                  str(log), "-w", "-t", "60", "start"], PG_USER), self.netns),
                timeout=120)
        except OrchestrationError as exc:  # pg_ctl says only "Examine the log output."
            raise OrchestrationError(
                f"{self.name}: PostgreSQL did not start on {self.address}:{self.port}: "
                f"{_server_error(log) or exc.message}; see {log}") from None
        if not self.pid:
            raise OrchestrationError(
                f"{self.name}: PostgreSQL did not start; see {self.root}/postgres.log")

    def stop(self) -> bool:
        # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, data is flushed.
        return stop_pid(self.pid, signal.SIGINT, timeout=60)


@dataclass(frozen=True)
class RedisServer:
    name: str
    root: Path  # dir, conf, pidfile, log
    port: int
    address: str = "127.0.0.1"
    netns: str | None = None

    @property
    def conf(self) -> Path:
        return self.root / "redis.conf"

    @property
    def rdb(self) -> Path:
        return self.root / "dump.rdb"

    @property
    def pid(self) -> int | None:
        return live_pid(self.root / "redis.pid")

    def configure(self, password: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            "# drtool sandbox\n"
            f"port {self.port}\nbind {self.address}\ndaemonize yes\n"
            f"pidfile {self.root / 'redis.pid'}\nlogfile {self.root / 'redis.log'}\n"
            f"dir {self.root}\ndbfilename dump.rdb\nsave \"\"\nappendonly no\n"
            f"requirepass {password}\n",
            encoding="utf-8",
        )
        os.chmod(self.conf, 0o600)

    def start(self) -> None:
        if self.pid:
            return
        run(in_netns([shutil.which("redis-server") or "redis-server", str(self.conf)], self.netns),
            timeout=30)
        deadline = time.monotonic() + 30
        while not self.pid:
            if time.monotonic() > deadline:
                raise OrchestrationError(
                    f"{self.name}: Redis did not start; see {self.root}/redis.log")
            time.sleep(0.05)

    def stop(self) -> bool:
        return stop_pid(self.pid, signal.SIGTERM)


def _server_error(log: Path) -> str | None:
    """The last error a server wrote to its log ("could not bind ...: Address already in
    use"), without its timestamp; None when there is none to read."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
    except OSError:
        return None
    for line in reversed(lines):
        for level in ("FATAL:", "PANIC:", "ERROR:"):
            if level in line:
                message = line.split(level, 1)[1].strip()
                # The FATAL of a failed bind is generic; the LOG line before it says why.
                cause = next((earlier.split("LOG:", 1)[1].strip()
                              for earlier in reversed(lines[:lines.index(line)])
                              if "LOG:" in earlier and "could not" in earlier), None)
                return f"{message} ({cause})" if cause else message
    return None


def _chown_tree(path: Path) -> None:
    """Give the cluster folder to the postgres user when drtool runs as root."""
    if os.geteuid() != 0:
        return
    import pwd  # noqa: PLC0415

    entry = pwd.getpwnam(PG_USER)
    for folder, dirs, files in os.walk(path):
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)
    os.chmod(path, 0o700)


@dataclass(frozen=True)
class S3Server:
    """moto's S3 server on loopback: the sandbox's off-site store, reached over real HTTP
    with SigV4. It keeps objects in memory, so a restart empties it (`sandbox up` creates the
    buckets again)."""

    name: str
    root: Path  # pidfile, log
    port: int
    address: str = "127.0.0.1"

    @property
    def pid(self) -> int | None:
        return live_pid(self.root / "s3.pid")

    def start(self) -> None:
        if self.pid:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        binary = Path(sys.executable).parent / "moto_server"
        with open(self.root / "s3.log", "ab") as log:
            child = subprocess.Popen(
                [str(binary), "-H", self.address, "-p", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        (self.root / "s3.pid").write_text(f"{child.pid}\n", encoding="utf-8")
        deadline = time.monotonic() + 30
        while True:
            if child.poll() is not None or time.monotonic() > deadline:
                stop_pid(child.pid)
                raise OrchestrationError(
                    f"{self.name}: the S3 server did not start; see {self.root}/s3.log")
            try:
                with socket.create_connection((self.address, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)

    def stop(self) -> bool:
        return stop_pid(self.pid, signal.SIGTERM)
