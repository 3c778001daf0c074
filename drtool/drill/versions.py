"""Versions of the tools a drill ran with, for the journal."""

from __future__ import annotations

import platform
from importlib import metadata

import drtool


def base_versions() -> dict[str, str]:
    """drtool, Python, ansible-core and ansible-runner versions (no subprocess needed)."""
    versions = {"drtool": drtool.__version__, "python": platform.python_version()}
    for package in ("ansible-core", "ansible-runner"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


# The libraries drtool drives hosts and stores with, beyond Ansible: what `drtool --version`
# shows besides base_versions().
LIBRARIES = ("psycopg", "redis", "boto3", "paramiko", "jinja2")


def installed_versions() -> dict[str, str]:
    """base_versions() and the libraries drtool drives hosts and stores with."""
    versions = base_versions()
    for package in LIBRARIES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
