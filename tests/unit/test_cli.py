from drtool.cli.common import exit_code
from drtool.cli.main import main
from drtool.core.model import Failure, Journal


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
    assert err.count("\n") == 1 and "Missing option '--env'" in err
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
    assert "staging" in capsys.readouterr().out


def test_help_and_version_exit_0(capsys):
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out
    assert main(["--version"]) == 0
