import json
import os
import shutil
import time
from pathlib import Path

import pytest

from drtool.adapters.ansible import (
    OTHER_MODULE_CODE,
    PAYLOAD_CACHE_KEPT_S,
    payload_cache,
    payload_key,
    playbook_error,
    scrub_command_artifact,
    task_record,
)


def event(kind, **data):
    return {"event": kind, "event_data": data}


def test_task_events_become_records_with_host_timing_and_status():
    record = task_record(event("runner_on_ok", host="h1", task="Dump", task_action="x.y",
                               start="2026-11-22T05:00:00", end="2026-11-22T05:00:01.5",
                               duration=1.5004, res={"changed": True}))
    assert (record.host, record.name, record.status, record.duration_s) == ("h1", "Dump",
                                                                            "changed", 1.5)
    failed = task_record(event("runner_on_failed", host="h2", task="T", res={"msg": "boom"}))
    assert failed.status == "failed" and failed.message == "boom"
    assert task_record(event("runner_on_unreachable", host="h3", task="T",
                             res={"msg": "ssh"})).status == "unreachable"


def test_a_note_of_drtools_own_modules_is_the_message_of_a_task_that_passed():
    noted = task_record(event("runner_on_ok", task="Copy", res={
        "changed": True, "msg": "not kept", "drtool_note": "appdb: no copy, password=hunter2\nso"}))
    assert noted.message == "appdb: no copy, password=*** | so"
    assert task_record(event("runner_on_ok", task="T", res={"msg": "done"})).message is None


def test_other_events_are_not_tasks():
    assert task_record(event("playbook_on_task_start", task="T")) is None
    assert task_record({"event": "verbose"}) is None


def test_the_command_artifact_keeps_no_stray_environment_values(tmp_path):
    path = tmp_path / "command"
    path.write_text(json.dumps({"command": ["ansible-playbook"], "cwd": "/x", "env": {
        "PATH": "/bin", "DRTOOL_HOME": "/h", "AWS_SECRET_ACCESS_KEY": "hunter2",
        "PGPASSWORD": "pw", "ANSIBLE_GALAXY_TOKEN": "tok"}}))
    scrub_command_artifact(path)
    text = path.read_text()
    assert "hunter2" not in text and "pw\"" not in text and "tok" not in text
    env = json.loads(text)["env"]
    assert env["PATH"] == "/bin" and env["DRTOOL_HOME"] == "/h"
    assert env["AWS_SECRET_ACCESS_KEY"] == "<withheld by drtool>"


def test_what_ansible_playbook_stopped_on_is_read_from_its_stdout_redacted(tmp_path):
    stdout = tmp_path / "stdout"
    stdout.write_text("PLAY [Describe] ****\n\x1b[0;31m[ERROR]: Attempting to decrypt but no "
                      "vault secrets found.\x1b[0m\nERROR! bad line password=hunter2\n")
    assert playbook_error(stdout) == ("Attempting to decrypt but no vault secrets found. | "
                                      "bad line password=***")
    stdout.write_text("PLAY RECAP\n")
    assert playbook_error(stdout) == ""
    assert playbook_error(tmp_path / "none") == ""


def collection_copy(tmp_path):
    """A content root holding a copy of the drtool.drill collection's plugins."""
    from drtool import paths

    plugins = Path("collections/ansible_collections/drtool/drill/plugins")
    shutil.copytree(paths.content_root() / plugins, tmp_path / plugins)
    return tmp_path, tmp_path / plugins


def test_the_payload_folder_is_named_by_the_collections_code(tmp_path):
    root, plugins = collection_copy(tmp_path)
    first = payload_key(root)
    assert payload_key(root) == first and len(first) == 16
    assert (plugins / "modules" / "pg_facts.py").is_file()
    with (plugins / "module_utils" / "postgres.py").open("a") as module_util:
        module_util.write("\n# changed\n")
    assert payload_key(root) != first  # a changed module_utils file: payloads built anew


def test_the_payload_folder_of_another_make_up_goes_once_unused_for_a_week(tmp_path):
    root, _plugins = collection_copy(tmp_path / "content")
    scratch = tmp_path / "run"
    stale, recent = scratch / "payloads" / ("0" * 16), scratch / "payloads" / ("1" * 16)
    for folder in (stale, recent):
        folder.mkdir(parents=True)
        (folder / "ansible.builtin.file-ZIP_DEFLATED-none").write_bytes(b"payload")
    week_ago = time.time() - PAYLOAD_CACHE_KEPT_S - 60
    os.utime(stale, (week_ago, week_ago))

    folder = payload_cache(scratch, root)

    assert folder.parent == scratch / "payloads" and folder.name == payload_key(root)
    assert not stale.exists() and recent.is_dir()  # a drtool of the other make-up may run


def test_another_ansible_core_names_another_payload_folder(tmp_path, monkeypatch):
    from ansible import release

    root, _plugins = collection_copy(tmp_path)
    first = payload_key(root)
    monkeypatch.setattr(release, "__version__", release.__version__ + ".post1")
    assert payload_key(root) != first


def test_a_payload_folder_in_use_is_kept_however_old_its_payloads(tmp_path):
    root, _plugins = collection_copy(tmp_path / "content")
    scratch = tmp_path / "run"
    mine = payload_cache(scratch, root)
    assert mine is not None
    mine.mkdir(parents=True)
    week_ago = time.time() - PAYLOAD_CACHE_KEPT_S - 60
    os.utime(mine, (week_ago, week_ago))
    # A run of this make-up marks it used; a run of another make-up then leaves it alone.
    assert payload_cache(scratch, root) == mine
    assert time.time() - mine.stat().st_mtime < 60
    other_root, plugins = collection_copy(tmp_path / "other")
    (plugins / "modules" / "reap.py").write_text("# another version\n")
    assert payload_cache(scratch, other_root) != mine and mine.is_dir()


@pytest.mark.parametrize("setting", OTHER_MODULE_CODE)
def test_nothing_is_shared_when_ansible_is_pointed_at_other_module_code(setting, tmp_path,
                                                                         monkeypatch):
    root, _plugins = collection_copy(tmp_path / "content")
    monkeypatch.setenv(setting, str(tmp_path / "elsewhere"))
    assert payload_cache(tmp_path / "run", root) is None
