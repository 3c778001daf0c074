"""A failed task always says why, in the tool's own words, and never with a secret in it:
the shapes of Ansible's results, parsed alone (tests/integration/test_reasons.py fails real
tasks through real Ansible). And scrub_artifacts, which cleans what killed runs left."""

from __future__ import annotations

import json

import pytest

from drtool.adapters.ansible import failure_reason, scrub_artifacts, task_record

SECRET = "pr0be-s3cret-VALUE"


# -- the shapes of results, alone -----------------------------------------------------------

def test_a_command_result_gets_its_stderr_tail_or_else_its_stdout():
    result = {"msg": "non-zero return code", "rc": 1, "stdout": "",
              "stderr": "Traceback ...\n  line 3\nOSError: [Errno 98] Address already in use\n"}
    assert failure_reason(result) == ("non-zero return code: Traceback ... | line 3 | "
                                      "OSError: [Errno 98] Address already in use")
    assert failure_reason({"msg": "non-zero return code", "rc": 2, "stderr": "",
                           "stdout": "only here"}) == "non-zero return code: only here"
    long = "x" * 5000 + " the end"
    reason = failure_reason({"msg": "non-zero return code", "rc": 1, "stderr": long})
    assert reason.endswith("x the end") and len(reason) < 1100 and "..." in reason


def test_a_module_failure_gets_the_modules_own_output():
    result = {"msg": "MODULE FAILURE\nSee stdout/stderr for the exact error", "rc": 1,
              "module_stdout": "", "module_stderr": "Traceback\nImportError: no psycopg\n"}
    assert failure_reason(result) == "MODULE FAILURE: Traceback | ImportError: no psycopg"


def test_a_specific_message_is_kept_as_it_is():
    assert failure_reason({"msg": "Redis 127.0.0.1:6379 still loading"}) == (
        "Redis 127.0.0.1:6379 still loading")
    # A module that already quotes its tool's error is not given the error twice.
    assert failure_reason({"msg": "pg_restore failed (exit 1): boom", "rc": 1,
                           "stderr": "boom"}) == "pg_restore failed (exit 1): boom"


def test_a_loop_names_its_first_failed_item():
    result = {"msg": "One or more items failed", "results": [
        {"item": "a", "failed": False, "rc": 0},
        {"item": "b", "failed": True, "msg": "non-zero return code", "rc": 2,
         "stderr": "tar: b: Cannot open"},
        {"item": {"name": "c", "password": SECRET}, "failed": True, "msg": "other"}]}
    assert failure_reason(result) == (
        "item b (2 of 3 failed): non-zero return code: tar: b: Cannot open")
    result["results"] = result["results"][2:]
    assert failure_reason(result) == "item #1: other"  # a structured item is not quoted


def test_a_hidden_result_says_so_instead_of_nothing():
    censored = {"censored": "the output has been hidden due to the fact that 'no_log: true' "
                            "was specified for this result", "changed": False}
    assert failure_reason(censored) == "the task's output is hidden (no_log: true)"


@pytest.mark.parametrize("text", [
    f"PGPASSWORD={SECRET} pg_restore", f"--password={SECRET}", f"password: '{SECRET}'",
    f"AWS_SECRET_ACCESS_KEY={SECRET}",
    f"cannot reach https://drtool:{SECRET}@hooks.example/x", f"api_key={SECRET}",
])
def test_values_that_look_like_secrets_are_replaced(text):
    reason = failure_reason({"msg": text})
    assert SECRET not in reason and "***" in reason


def test_a_failed_event_carries_the_full_reason():
    record = task_record({"event": "runner_on_failed", "event_data": {
        "host": "app", "task": "Start", "res": {"msg": "non-zero return code", "rc": 2,
                                               "stderr": "error: argument --stores"}}})
    assert record is not None and record.message == (
        "non-zero return code: error: argument --stores")

# -- what killed runs leave behind ----------------------------------------------------------

def test_scrub_artifacts_rewrites_what_killed_runs_left(tmp_path):
    full = tmp_path / "evidence" / "e" / "d1" / "artifacts" / "restore" / "command"
    cut = tmp_path / "run" / "describe-x" / "describe" / "command"
    other = tmp_path / "evidence" / "notes" / "command"
    for path in (full, cut, other):
        path.parent.mkdir(parents=True)
    full.write_text(json.dumps({"command": ["ansible-playbook"], "cwd": "/", "env": {
        "PATH": "/bin", "DRTOOL_HOOK_URL": f"https://hooks.example/{SECRET}"}}))
    cut.write_text(json.dumps({"command": ["ansible-playbook"], "cwd": "/", "env": {
        "AWS_SECRET_ACCESS_KEY": SECRET, "PATH": "/bin"}})[:-20])  # a kill mid-write
    other.write_text(f"not runner's: {SECRET}")

    assert scrub_artifacts(tmp_path) == 2
    assert SECRET not in full.read_text() and SECRET not in cut.read_text()
    assert json.loads(full.read_text())["env"] == {"DRTOOL_HOOK_URL": "<withheld by drtool>",
                                                   "PATH": "/bin"}
    assert json.loads(cut.read_text())["env"] == {}
    assert other.read_text() == f"not runner's: {SECRET}"
    assert oct(full.stat().st_mode & 0o777) == "0o600"
    assert scrub_artifacts(tmp_path) == 0  # nothing left to withhold
    assert scrub_artifacts(tmp_path / "absent") == 0



def test_a_secret_cut_by_the_tail_is_masked_before_the_cut():
    # The output's tail starts in the middle of "password=SECRET": masked first, the cut
    # leaves "***", never the value or half of it.
    setting = f"password={SECRET}"
    for cut in range(len("password=") + 1, len(setting)):
        stderr = "x" * 4000 + setting + "y" * (1000 - (len(setting) - cut))
        reason = failure_reason({"msg": "non-zero return code", "rc": 1, "stderr": stderr})
        assert SECRET[-4:] not in reason, cut


def test_a_client_programs_secret_is_masked_before_its_stderr_is_cut():
    import importlib.util
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "collections" / "ansible_collections" /
              "drtool" / "drill" / "plugins" / "module_utils" / "postgres.py")
    spec = importlib.util.spec_from_file_location("drtool_module_utils_postgres", source)
    assert spec is not None and spec.loader is not None
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    for kept in range(4, len(SECRET)):  # the tail keeps the secret's last `kept` characters
        stderr = "z" * 3000 + SECRET + "w" * (utils.STDERR_TAIL - kept)
        message = utils.tool_failure("pg_restore", 1, stderr, secrets=[SECRET])
        assert SECRET[-kept:] not in message, kept
