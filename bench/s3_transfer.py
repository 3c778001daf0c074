"""Off-site transfer: drtool's S3 store against raw boto3 on the same files, in the same run.

Starts moto's S3 server on loopback (stopped by its PID at the end), writes random files (so
that nothing compresses), and times, for each part size and concurrency:

- raw: boto3's upload_file / download_file of the same files, no checksum, no encryption;
- drtool: S3Store.publish (SHA-256 checksums, SSE header) and S3Store.fetch (sha256 of every
  file checked against the manifest), and the same with client-side encryption.

    .venv/bin/python bench/s3_transfer.py --mb 256 --runs 3

Prints medians and the ratios drtool/raw. moto keeps objects in memory: the figures measure
drtool's and boto3's own work on this machine, not a network.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig

from drtool.core.manifest import FileEntry, Manifest, PostgresPart, RedisPart
from drtool.store import crypto
from drtool.store.s3 import S3Store
from drtool.store.settings import MIB, S3Connection, S3StoreSettings

KEY, SECRET = "AKIABENCH", "bench-secret"


def start_moto(port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H",
                                   "127.0.0.1", "-p", str(port)], stdout=out,
                                  stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"moto did not start: {log.read_text()}")


def make_backup(folder: Path, total_mb: int, files: int) -> Manifest:
    folder.mkdir(parents=True)
    entries = []
    for index in range(files):
        path = folder / "postgres" / f"{index}.dat"
        path.parent.mkdir(exist_ok=True)
        data = os.urandom(total_mb * MIB // files)
        path.write_bytes(data)
        entries.append(FileEntry(f"postgres/{index}.dat", len(data),
                                 hashlib.sha256(data).hexdigest()))
    stamp = "2026-11-22T00:00:00+00:00"
    return Manifest(folder.name, "bench", stamp, stamp,
                    (PostgresPart("h", 1, "db", stamp, {}, {}, {}, None, "15", "15", 0,
                                  component="main"),),
                    (RedisPart("h", 2, stamp, {}, {}, None, "7", 0, component="cache"),),
                    tuple(entries),
                    sum(e.size for e in entries))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="total size of the backup")
    parser.add_argument("--files", type=int, default=4, help="how many files it has")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=25491)
    parser.add_argument("--parts", default="8,16,64,128", help="part sizes in MiB")
    parser.add_argument("--concurrency", default="4", help="thread counts")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="drtool-bench-s3-"))
    server = start_moto(args.port, work / "moto.log")
    try:
        endpoint = f"http://127.0.0.1:{args.port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=KEY, aws_secret_access_key=SECRET)
        s3.create_bucket(Bucket="bench")
        source = work / "source" / "bk-20261122T000000Z-bench0"
        manifest = make_backup(source, args.mb, args.files)
        key_file = work / "key"
        key_file.write_text(crypto.new_key())
        rows = []
        for part in (int(p) for p in args.parts.split(",")):
            for threads in (int(c) for c in args.concurrency.split(",")):
                config = TransferConfig(multipart_threshold=part * MIB,
                                        multipart_chunksize=part * MIB,
                                        max_concurrency=threads)
                times: dict[str, list[float]] = {k: [] for k in (
                    "raw up", "raw down", "drtool up", "drtool down", "sealed up",
                    "sealed down")}
                for run in range(args.runs):
                    started = time.monotonic()
                    for entry in manifest.files:
                        s3.upload_file(str(source / entry.path), "bench",
                                       f"raw/{run}/{entry.path}", Config=config)
                    times["raw up"].append(time.monotonic() - started)
                    down = work / "raw-down"
                    started = time.monotonic()
                    for entry in manifest.files:
                        (down / entry.path).parent.mkdir(parents=True, exist_ok=True)
                        s3.download_file("bench", f"raw/{run}/{entry.path}",
                                         str(down / entry.path), Config=config)
                    times["raw down"].append(time.monotonic() - started)
                    shutil.rmtree(down)
                    for label, key in (("drtool", None), ("sealed", str(key_file))):
                        spool = work / "spool"
                        shutil.copytree(source, spool / source.name)
                        settings = S3StoreSettings(
                            S3Connection("bench", f"{label}/{part}/{threads}/{run}/",
                                         "us-east-1", endpoint, None, KEY, SECRET),
                            sse="AES256", part_size_mb=part, concurrency=threads,
                            encryption_key_file=key)
                        store = S3Store(settings, spool)
                        published, up = store.publish(manifest)
                        problems, got = store.fetch(published)
                        if problems or up is None or got is None:
                            raise SystemExit(f"the round trip failed: {problems}")
                        times[f"{label} up"].append(up.seconds)
                        times[f"{label} down"].append(got.seconds)
                        shutil.rmtree(spool)
                medians = {k: statistics.median(v) for k, v in times.items()}
                rows.append((part, threads, medians))
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    print(f"{args.mb} MB in {args.files} files, medians of {args.runs} runs (s)")
    print("part MiB  threads  raw up  raw down  drtool up  drtool down  sealed up  sealed down"
          "  up ratio  down ratio")
    for part, threads, m in rows:
        print(f"{part:>8}  {threads:>7}  {m['raw up']:6.2f}  {m['raw down']:8.2f}  "
              f"{m['drtool up']:9.2f}  {m['drtool down']:11.2f}  {m['sealed up']:9.2f}  "
              f"{m['sealed down']:11.2f}  {m['drtool up'] / m['raw up']:8.2f}  "
              f"{m['drtool down'] / m['raw down']:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
