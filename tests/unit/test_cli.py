import json

import click
import pytest

from drtool.cli.common import exit_code, not_text, shown
from drtool.cli.main import main
from drtool.cli.operations import check_note, failure_lines
from drtool.cli.report import _remediation
from drtool.core.model import Check, Failure, Journal
from drtool.errors import ConfigError


def journal(status, kind=None):
    j = Journal("d", "e", "drill", "t", status=status)
    if kind:
        j.failure = Failure("restore", "why", kind)
    return j


def test_exit_codes_follow_the_documented_table():
    assert exit_code(journal("passed")) == 0
    assert exit_code(journal("failed", "check")) == 1
    assert exit_code(journal("failed", "orchestration")) == 3
    assert exit_code(journal("aborted", "interrupted")) == 130


def test_usage_errors_are_one_line_and_exit_2(capsys):
    assert main(["drill"]) == 2
    err = capsys.readouterr().err
    assert err == ("drtool: error: give the environment: --env ENV, or its inventory with "
                   "-i PATH (see `drtool drill --help`)\n")
    assert main(["fly"]) == 2
    assert "No such command 'fly'" in capsys.readouterr().err


def test_an_unknown_environment_is_a_configuration_error(capsys):
    assert main(["drill", "--env", "atlantis"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("drtool: error: unknown environment 'atlantis'")
    assert "Traceback" not in err


def test_a_validate_on_a_fresh_home_works(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "new"))
    assert main(["validate", "--env", "staging"]) == 0
    out = capsys.readouterr().out
    assert "staging" in out
    # Staging declares recovery sides for two of its components.
    assert out.splitlines()[-1] == (
        "recovery: `drtool recover` restores main, cache onto their recovery sides; none "
        "declared for reporting, queue, api, worker")


def test_help_and_version_exit_0(capsys):
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out
    assert main(["--version"]) == 0


def test_the_version_names_drtool_then_each_tool_it_runs_with(capsys):
    from importlib import metadata

    import drtool

    assert main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"drtool {drtool.__version__}"
    shown = dict(line.split() for line in lines[1:])
    for package in ("ansible-core", "ansible-runner", "psycopg", "redis", "boto3"):
        assert shown[package] == metadata.version(package), package


def drtool_run(tmp_path, args, **env):
    """The drtool command in a process of its own (what a shell runs), on a fresh home."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    command = Path(sys.executable).with_name("drtool")
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=120,
                          env=dict(clean, DRTOOL_HOME=str(tmp_path / "home"), **env))


def test_the_shell_completes_commands_and_environment_names(tmp_path):
    commands = drtool_run(tmp_path, [], _DRTOOL_COMPLETE="bash_complete",
                          COMP_WORDS="drtool dri", COMP_CWORD="1")
    assert commands.stdout.split() == ["plain,drill"], commands.stderr
    envs = drtool_run(tmp_path, [], _DRTOOL_COMPLETE="bash_complete",
                      COMP_WORDS="drtool drill --env sta", COMP_CWORD="3")
    assert envs.stdout.split() == ["plain,staging"], envs.stderr
    script = drtool_run(tmp_path, [], _DRTOOL_COMPLETE="bash_source")
    assert script.returncode == 0 and "complete " in script.stdout


def test_no_color_takes_the_colour_out_and_leaves_the_words(tmp_path):
    import re

    colour = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7])(?:;[0-9]+)*m")
    coloured = drtool_run(tmp_path, ["drill", "--env", "staging", "--plan"], FORCE_COLOR="1")
    plain = drtool_run(tmp_path, ["drill", "--env", "staging", "--plan"], FORCE_COLOR="1",
                       NO_COLOR="1")
    assert coloured.returncode == plain.returncode == 0, coloured.stderr + plain.stderr
    assert colour.search(coloured.stdout), "the plan marks what it destroys in red"
    assert not colour.search(plain.stdout)
    assert "DESTROYS" in plain.stdout


# -- bad input: one line, exit 2, never a traceback ------------------------------------------

def one_line_error(capsys, *named):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("drtool: error: "), err
    assert "Traceback" not in err and all(n in err for n in named), err
    return err


@pytest.mark.parametrize(("value", "why"), [
    ("ticket \udcff", "is not valid UTF-8"),
    ("colour \x1b[31m", "holds control characters ('\\x1b')"),
    ("a\tb", "holds control characters ('\\t')"),
    ("one\rtwo", "holds control characters ('\\r')"),
    ("one\u2028two", "holds control characters ('\\u2028')"),
])
def test_a_note_must_be_one_line_of_utf8_text(value, why):
    with pytest.raises(click.BadParameter) as caught:
        check_note(value)
    assert caught.value.message == f"must be one line of at most 500 characters: it {why}"
    # Text in any script is kept as given.
    assert check_note("CHG-1234: équipe de nuit, 夜間") == "CHG-1234: équipe de nuit, 夜間"


def test_undecodable_bytes_and_control_characters_are_shown_escaped_on_one_line():
    assert shown("/tmp/out\udcff\n") == "/tmp/out\\xff\\n"
    assert not_text("fine, and é") is None
    assert not_text("a\nb", allow="\n") is None


def test_a_note_that_is_not_utf8_is_refused_before_the_environment_is_read(capsys):
    assert main(["drill", "--env", "atlantis", "--note", "ticket \udcff"]) == 2
    one_line_error(capsys, "--note", "not valid UTF-8")


@pytest.mark.parametrize("args", [
    ["drill", "--env", "atlantis", "--junit", "out\udcff.xml"],
    ["drill", "--env", "atlantis", "--log", "log\x1b.txt"],
    ["drill", "--env", "atlantis", "--metrics-dir", "m\udcff"],
    ["report", "--env", "atlantis", "--out", "r\udcff"],
    ["report", "--env", "atlantis", "--remediation", "n\udcff.yml"],
    ["backups", "new-key", "k\udcff"],
])
def test_a_file_argument_that_is_not_a_utf8_name_is_refused(capsys, args):
    assert main(args) == 2
    one_line_error(capsys, "the file name")


def test_a_drill_id_that_is_not_utf8_is_not_recorded(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    assert main(["report", "--drill", "2026\udcff"]) == 2
    one_line_error(capsys, "no drill '2026\\xff' is recorded")


@pytest.mark.parametrize(("content", "why"), [
    (b"d1: restarted \xff\n", "not UTF-8 text (byte 15 is 0xff)"),
    (b"d1: [restarted\n", "not YAML: expected ',' or ']', but got '<stream end>' at line 2"),
    (b"d1: restarted \x1b[2J\n", "not YAML: unacceptable character #x001b"),
    (b'd1: "restarted\\x00"\n', "the note of 'd1' holds control characters ('\\x00')"),
    (b'd1: "restarted\\udcff"\n', "the note of 'd1' is not valid UTF-8"),
    (b'"d\\x1b1": restarted\n', "the note of 'd\\x1b1' holds control characters ('\\x1b')"),
])
def test_remediation_notes_that_are_not_a_mapping_of_text_are_refused_on_one_line(
        tmp_path, content, why):
    notes = tmp_path / "notes.yml"
    notes.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        _remediation(notes)
    assert why in caught.value.message and "\n" not in caught.value.message
    # Line breaks and tabs in a note are text.
    notes.write_text("d1: |\n  restarted\n  the\treplica, é\n", encoding="utf-8")
    assert _remediation(notes) == {"d1": "restarted\nthe\treplica, é\n"}


@pytest.mark.parametrize("command", [
    ["history"], ["evidence", "verify"], ["status"], ["report"], ["rollback"], ["backup"],
    ["restore", "--backup", "b1"], ["verify", "--backup", "b1"], ["drill"], ["validate"],
    ["backups", "list"], ["backups", "prune", "--keep-last", "1"], ["notify", "test"],
    ["schedule", "install", "--cron", "0 5 * * 1"],
])
def test_every_command_given_an_unknown_environment_exits_2(capsys, tmp_path, monkeypatch,
                                                            command):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    assert main([*command, "--env", "atlantis"]) == 2
    one_line_error(capsys, "unknown environment 'atlantis'")


def test_history_knows_an_environment_by_its_inventory_or_its_records(
        capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    assert main(["history", "--env", "retired"]) == 2
    one_line_error(capsys, "unknown environment 'retired'")
    # Its inventory is gone, but a drill of it was recorded: it is still listed.
    folder = tmp_path / "evidence" / "retired" / "20260101T000000Z-0a1b2c"
    folder.mkdir(parents=True)
    record = Journal("20260101T000000Z-0a1b2c", "retired", "drill", "2026-01-01T00:00:00Z",
                     status="passed", ended_at="2026-01-01T00:05:00Z")
    (folder / "journal.json").write_text(json.dumps(record.to_dict()))
    assert main(["history", "--env", "retired"]) == 0
    assert "20260101T000000Z-0a1b2c  drill   passed" in capsys.readouterr().out
    assert main(["evidence", "verify", "--env", "retired"]) == 0


@pytest.mark.parametrize(("args", "why"), [
    (["--target-time", "yesterday"], "must be an ISO-8601 time such as 2026-12-06T03:38:00Z"),
    (["--target-time", "2026-12-06T03:38:00"], "needs its time zone"),
    (["--target-time", "2999-01-01T00:00:00Z"], "is not in the past"),
    (["--target-time", "2026-12-06T03:38:00Z", "--backup", "latest"],
     "a point in time is for a fresh drill"),
])
def test_a_point_in_time_is_refused_on_one_line_before_the_environment_is_read(
        capsys, args, why):
    assert main(["drill", "--env", "atlantis", *args]) == 2
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1, err


def test_a_point_in_time_needs_a_physical_cluster(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path))
    assert main(["drill", "--env", "staging", "--target-time", "2026-01-01T00:00:00Z"]) == 2
    err = capsys.readouterr().err
    assert ("--target-time sets where a cluster of a physical method recovers to, and "
            "staging has none (method: pgbackrest)") in err
    assert err.count("\n") == 1, err
    assert main(["restore", "--env", "staging", "--backup", "b", "--to", "end"]) == 2
    assert "--to sets where a cluster of a physical method recovers to" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "why"), [
    (["--target-lsn", "3000060"], "must be a WAL position such as 0/3000060"),
    (["--to", "latest"], "'latest' is not one of 'end', 'immediate'"),
    (["--to", "end", "--target-lsn", "0/3000060"], "give one of --target-time, --target-lsn"),
])
def test_a_restore_target_is_refused_on_one_line_before_the_environment_is_read(
        capsys, args, why):
    assert main(["restore", "--env", "atlantis", "--backup", "b", *args]) == 2
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1, err


def test_every_command_is_found_by_its_name_and_none_is_left_out():
    import importlib
    import pkgutil

    import click

    from drtool import cli
    from drtool.cli.main import COMMANDS
    from drtool.cli.main import cli as group

    defined = set()
    for info in pkgutil.iter_modules(cli.__path__):
        module = importlib.import_module(f"drtool.cli.{info.name}")
        found = [v for v in vars(module).values() if isinstance(v, click.Command)]
        inside = {c for g in found if isinstance(g, click.Group) for c in g.commands.values()}
        defined |= {c.name for c in found if c not in inside and c is not group}
    assert defined == set(COMMANDS)
    for name in COMMANDS:
        assert group.get_command(click.Context(group), name).name == name
    assert group.get_command(click.Context(group), "nosuch") is None


# -- several problems: a summary line, then one a line ------------------------------------------


def test_an_inventory_with_several_problems_lists_them_one_a_line_under_a_summary(
        capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "home"))
    assert main(["drill", "--env", "production"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("drtool: error: inventory ") and err[0].endswith(
        " is not usable (6 problems):"), err
    assert len(err) == 7 and all(line.startswith("  ") for line in err[1:]), err
    assert sum("refused as a destructive target" in line for line in err[1:]) == 6


def test_one_problem_stays_on_one_line():
    assert ConfigError("bad", ["only this"]).lines() == ["bad: only this"]
    assert ConfigError("bad").lines() == ["bad"]


def test_the_guards_refusals_at_preflight_are_one_a_line_and_the_journal_keeps_one():
    j = journal("failed")
    j.failure = Failure("preflight", "production guard: a; b", "guard", ["t1", "t2"])
    j.checks = [Check("guard.identity", f"t{n}/main", "not a source", f"source s{n}", "failed")
                for n in (1, 2)] + [Check("guard.identity", "t3/main", "x", "x", "passed")]
    assert failure_lines("drill", j) == [
        "drtool: drill failed at preflight: the production guard refused 2 targets:",
        "  guard.identity t1/main: expected not a source, actual source s1",
        "  guard.identity t2/main: expected not a source, actual source s2"]
    j.checks = j.checks[1:]
    assert failure_lines("drill", j) == [
        "drtool: drill failed at preflight: production guard: a; b"]


def test_a_vault_id_splits_at_its_first_at_and_joins_those_already_given(tmp_path, monkeypatch):
    folder = tmp_path / "keys@home"
    folder.mkdir()
    script = folder / "pass.sh"
    script.write_text("#!/bin/sh\necho pw\n")
    script.chmod(0o700)
    monkeypatch.setenv("DRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANSIBLE_VAULT_IDENTITY_LIST", "dev@/etc/dev-pass")
    assert main(["validate", "--env", "staging", "--vault-id", f"prod@{script}"]) == 0
    import os

    assert os.environ["ANSIBLE_VAULT_IDENTITY_LIST"] == f"dev@/etc/dev-pass,prod@{script}"
    assert main(["validate", "--env", "staging", "--vault-id", "prod@prompt"]) == 2
