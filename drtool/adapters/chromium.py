"""Headless Chromium, the one program that turns a report's HTML into PDF.

The PDF is printed from the very HTML file the report wrote, so both say the same thing.
Chromium runs with a fresh profile and with its background networking off: it opens a local
file and contacts nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from drtool.errors import OrchestrationError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
QUIET_FLAGS = ("--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-extensions", "--mute-audio")


def find() -> str | None:
    """$DRTOOL_CHROMIUM, else the first Chromium or Chrome on PATH."""
    configured = os.environ.get("DRTOOL_CHROMIUM")
    if configured:
        return configured if shutil.which(configured) else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


def command(binary: str, profile: Path, *args: str) -> list[str]:
    flags = [binary, *QUIET_FLAGS, f"--user-data-dir={profile}"]
    if os.geteuid() == 0:  # Chromium refuses to start its sandbox as root
        flags.append("--no-sandbox")
    return [*flags, *args]


def print_to_pdf(html: Path, pdf: Path, timeout: float = 120) -> None:
    """Print `html` to `pdf` (A4, no browser header or footer); replaces `pdf` whole."""
    binary = find()
    if binary is None:
        raise OrchestrationError("PDF needs Chromium: install it (`apt-get install chromium`) "
                                 "or set DRTOOL_CHROMIUM to its path")
    partial = pdf.with_name(f".{pdf.name}.{os.getpid()}.tmp")
    with tempfile.TemporaryDirectory(prefix="drtool-chromium-") as profile:
        args = command(binary, Path(profile), "--no-pdf-header-footer",
                       f"--print-to-pdf={partial}", html.resolve().as_uri())
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            partial.unlink(missing_ok=True)
            raise OrchestrationError(f"Chromium did not print {html.name} to PDF within "
                                     f"{timeout:g} s") from None
    try:
        header = partial.read_bytes()[:5]
    except OSError:
        header = b""
    if done.returncode != 0 or header != b"%PDF-":
        partial.unlink(missing_ok=True)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise OrchestrationError(f"Chromium could not print {html.name} to PDF "
                                 f"(exit {done.returncode}): {last}")
    os.replace(partial, pdf)
