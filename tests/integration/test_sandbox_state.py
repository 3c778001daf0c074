"""The sandbox's relocated PostgreSQL clusters (/var/lib/drtool/<name>-<hash>) outlive a
DRTOOL_HOME deleted without `sandbox down --purge`. The next first `sandbox up` at the same
path must not try to use them (their password went with the deleted state): it stops them
by PID and removes them. Real clusters, started here."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from drtool.sandbox import layout as lay
from drtool.sandbox import manage
from tests.conftest import PORT_BASE, alive, wait_gone

pytestmark = pytest.mark.integration


@pytest.mark.skipif(os.geteuid() != 0, reason="clusters run as the postgres user")
def test_clusters_left_by_a_deleted_sandbox_are_stopped_and_removed(tmp_path: Path):
    root = tmp_path / "private" / "sandbox"  # under a 0700 folder: the clusters relocate
    root.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    postgres_root = lay.postgres_root_for(root, postgres_can_enter=False)
    assert postgres_root.parent != root and not postgres_root.exists()
    layout = lay.Layout(root, int(PORT_BASE) + 70, postgres_root)
    stale = manage.Sandbox(layout).clusters["pg_primary"]
    try:
        stale.initialise("a-password-nobody-has-any-more")
        stale.start()
        pid = stale.pid
        assert pid and alive(pid)

        assert manage.clear_orphaned_clusters(layout) == postgres_root.parent

        wait_gone(pid)
        assert not alive(pid) and not postgres_root.parent.exists()
        assert manage.clear_orphaned_clusters(layout) is None  # nothing left to clear
    finally:
        if stale.pid:
            stale.stop()
        shutil.rmtree(postgres_root.parent, ignore_errors=True)


def test_clusters_inside_the_sandbox_folder_are_never_cleared(tmp_path: Path):
    root = tmp_path / "sandbox"
    (root / "postgres" / "pg_primary" / "data").mkdir(parents=True)
    layout = lay.Layout(root, int(PORT_BASE) + 70, root / "postgres")
    assert manage.clear_orphaned_clusters(layout) is None
    assert (root / "postgres" / "pg_primary" / "data").is_dir()


@pytest.mark.skipif(os.geteuid() != 0, reason="clusters run as the postgres user")
def test_a_cluster_whose_port_is_taken_says_so_and_where_its_log_is(tmp_path: Path):
    import socket

    from drtool.errors import OrchestrationError

    root = tmp_path / "private" / "sandbox"
    root.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    postgres_root = lay.postgres_root_for(root, postgres_can_enter=False)
    layout = lay.Layout(root, int(PORT_BASE) + 75, postgres_root)
    cluster = manage.Sandbox(layout).clusters["pg_primary"]
    taken = socket.socket()
    try:
        cluster.initialise("a-password")
        taken.bind(("127.0.0.1", cluster.port))
        taken.listen()
        with pytest.raises(OrchestrationError) as raised:
            cluster.start()
        message = raised.value.message
        assert message.startswith(f"pg_primary: PostgreSQL did not start on 127.0.0.1:"
                                  f"{cluster.port}: could not create any TCP/IP sockets"), message
        assert "Address already in use" in message and str(cluster.root) in message, message
        assert cluster.pid is None
    finally:
        taken.close()
        if cluster.pid:
            cluster.stop()
        shutil.rmtree(postgres_root.parent, ignore_errors=True)
