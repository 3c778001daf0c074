"""Drills and backups on a schedule: a tagged entry in the user's crontab (python-crontab),
or a systemd service and timer pair, per job (JOBS: `drill`, `backup`, and `verify-backups`,
which runs `drtool backups verify`). The entry runs drtool
non-interactively with absolute paths and the environment it needs, its output going to a
rotated log under DRTOOL_HOME/logs. In production the two run apart: backups as often as
the RPO asks, drills of those backups (`drill --backup latest`) as often as audits ask."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from crontab import CronSlices, CronTab

from drtool import paths
from drtool.errors import ConfigError, OrchestrationError
from drtool.util.files import atomic_write

JOBS = ("drill", "backup", "verify-backups")
# The drtool command of each job (its arguments follow), where it is not the job's name.
COMMAND_WORDS = {"verify-backups": ["backups", "verify"]}
# What each job is called in a unit's description and in what `schedule install` prints.
DESCRIBED = {"drill": "disaster-recovery drill", "backup": "backup",
             "verify-backups": "check of every backup"}
# How long a scheduled job waits for the environment's lock when the other job holds it.
LOCK_WAIT_S = 3600
# Every entry drtool writes carries the comment "drtool:<env>" (a drill),
# "drtool-backup:<env>" (a backup) or "drtool-verify:<env>" (a check of the backups).
TAGS = {"drill": "drtool:", "backup": "drtool-backup:", "verify-backups": "drtool-verify:"}
# What a drill needs from the installing shell: drtool's own settings, where to find tools,
# a UTF-8 locale (Ansible refuses others), and the usual secret sources.
PASSED_ON = re.compile(r"^(DRTOOL_[A-Z0-9_]+|PATH|LANG|LC_ALL|HOME|ANSIBLE_VAULT_PASSWORD_FILE|"
                       r"ANSIBLE_VAULT_IDENTITY_LIST|"
                       r"AWS_PROFILE|AWS_CONFIG_FILE|AWS_SHARED_CREDENTIALS_FILE)$")
NEVER_PASSED_ON = ("DRTOOL_DEBUG",)
# Of those, what goes on the crontab line and into the unit's Environment=: none is a secret.
# The rest (any other DRTOOL_* variable, such as a webhook URL an inventory looks up, and the
# AWS and vault settings) goes into a mode-0600 file that the line and the unit read.
ON_THE_LINE = ("DRTOOL_HOME", "DRTOOL_SANDBOX_PORT_BASE", "PATH", "HOME", "LANG", "LC_ALL")


@dataclass(frozen=True)
class Entry:
    env: str
    schedule: str
    command: str
    enabled: bool
    job: str = "drill"  # or "backup", "verify-backups"


def drtool_executable() -> str:
    """The absolute path of the running drtool command."""
    found = shutil.which("drtool") or str(Path(sys.executable).parent / "drtool")
    return str(Path(found).resolve()) if Path(found).exists() else found


def _passed_on() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if PASSED_ON.match(k) and
            k not in NEVER_PASSED_ON}


def job_environment() -> dict[str, str]:
    """The variables a schedule sets in the open (ON_THE_LINE), from the installing shell."""
    env = {k: v for k, v in _passed_on().items() if k in ON_THE_LINE}
    env["DRTOOL_HOME"] = str(paths.drtool_home())
    env.setdefault("LANG", "C.UTF-8")
    bin_dir = str(Path(drtool_executable()).parent)
    path = env.get("PATH", "/usr/bin:/bin")
    if bin_dir not in path.split(os.pathsep):
        env["PATH"] = f"{bin_dir}{os.pathsep}{path}"
    return env


def private_environment() -> dict[str, str]:
    """The variables a schedule passes on through its environment file, never in the open."""
    return {k: v for k, v in _passed_on().items() if k not in ON_THE_LINE}


def env_file(env: str) -> Path:
    """The schedule's variables, one file per environment that its drill and backup read."""
    return paths.drtool_home() / "schedules" / f"drill-{env}.env"


def write_env_file(env: str) -> Path:
    """Write the schedule's environment file (mode 0600, in a mode-0700 folder): one
    `NAME='value'` line each, a syntax both sh's `.` and systemd's EnvironmentFile= read."""
    path = env_file(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)  # atomic_write's temporary file is briefly 0644 in it
    lines = [f"{k}={shlex.quote(v)}" for k, v in sorted(private_environment().items())]
    atomic_write(path, "\n".join([f"# drtool schedules of {env}: variables passed on "
                                  "from the installing shell", *lines, ""]), mode=0o600)
    return path


def remove_env_file(env: str) -> None:
    env_file(env).unlink(missing_ok=True)


def log_file(env: str, job: str = "drill") -> Path:
    return paths.drtool_home() / "logs" / f"{job}-{env}.log"


def job_argv(env: str, extra: list[str] | None = None, job: str = "drill") -> list[str]:
    """What a schedule runs, for cron and systemd alike: drtool JOB --env ENV --log FILE."""
    return [drtool_executable(), *COMMAND_WORDS.get(job, [job]), "--env", env,
            "--log", str(log_file(env, job)),
            *(extra or [])]


def command_for(env: str, extra: list[str] | None = None, job: str = "drill") -> str:
    """The shell command a schedule runs (cron runs it with /bin/sh): export everything in
    the environment file, then env VAR=... drtool JOB --env ENV --log FILE."""
    assignments = [f"{k}={shlex.quote(v)}" for k, v in sorted(job_environment().items())]
    argv = job_argv(env, extra, job)
    source = f"set -a; . {shlex.quote(str(env_file(env)))}; set +a;"
    return " ".join([source, "/usr/bin/env", *assignments, *map(shlex.quote, argv)])


def check_cron(expression: str) -> str:
    expression = " ".join(expression.split())
    if len(expression.split()) != 5 or not CronSlices.is_valid(expression):
        raise ConfigError(f"not a valid cron expression: {expression!r} (five fields: "
                          "minute hour day-of-month month day-of-week, such as '0 5 * * 1')")
    return expression


def _crontab() -> CronTab:
    if shutil.which("crontab") is None:
        raise OrchestrationError("no crontab command: install cron (`apt-get install cron`), "
                                 "or use --systemd")
    try:
        return CronTab(user=True)
    except (OSError, ValueError) as exc:
        raise OrchestrationError(f"cannot read the crontab: {exc}") from None


def install(env: str, expression: str, extra: list[str] | None = None,
            job: str = "drill") -> Entry:
    """Add (or replace) the environment's crontab entry for `job`."""
    expression = check_cron(expression)
    tab = _crontab()
    tab.remove_all(comment=f"{TAGS[job]}{env}")
    write_env_file(env)
    # cron turns an unescaped % into a newline.
    line = tab.new(command=command_for(env, extra, job).replace("%", "\\%"),
                   comment=f"{TAGS[job]}{env}")
    line.setall(expression)
    log_file(env, job).parent.mkdir(parents=True, exist_ok=True)
    tab.write()
    return Entry(env, expression, line.command, line.is_enabled(), job)


def entries() -> list[Entry]:
    tab = _crontab()
    return [Entry(line.comment[len(tag):], str(line.slices), line.command, line.is_enabled(), job)
            for line in tab for job, tag in TAGS.items() if line.comment.startswith(tag)]


def has_backup_schedule(env: str, unit_dir: Path | None = None) -> bool:
    """Whether `env`'s backups are scheduled: a backup unit in `unit_dir` (systemd), else a
    backup entry in the crontab (none when there is no crontab command)."""
    if unit_dir is not None:
        return (unit_dir / f"drtool-backup-{env}.service").is_file()
    try:
        return any(e.env == env and e.job == "backup" for e in entries())
    except OrchestrationError:
        return False


def remove(env: str) -> int:
    """Remove the environment's entries, drills and backups; return how many there were."""
    tab = _crontab()
    count = sum(tab.remove_all(comment=f"{tag}{env}") for tag in TAGS.values())
    if count and not unit_files(env):
        # A systemd unit of the same environment reads the file too: it stays for the unit.
        remove_env_file(env)
    if count and not tab.render().strip():
        # Nothing else was in it: delete the crontab, as it was before drtool wrote one.
        subprocess.run(["crontab", "-r"], capture_output=True, check=False, timeout=30)
    elif count:
        tab.write()
    return count


# -- systemd -------------------------------------------------------------------------------

DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# How long systemd waits, after SIGTERM, for a stopped drill to roll back and exit.
STOP_TIMEOUT_S = 900


def on_calendar(expression: str) -> str:
    """The systemd OnCalendar= form of a five-field cron expression."""
    minute, hour, dom, month, dow = check_cron(expression).split()
    if dom != "*" and dow != "*":
        # cron runs when EITHER field matches; systemd requires both.
        raise ConfigError("a schedule restricting both day of month and day of week has no "
                          "systemd equivalent; restrict only one of them")

    def field(text: str, first: int, names: tuple[str, ...] | None = None) -> str:
        parts = []
        for part in text.split(","):
            base, _, step = part.partition("/")
            if names is not None:
                if step or base == "*":
                    raise ConfigError(f"day-of-week {text!r} has no systemd equivalent; list "
                                      "the days (such as 1-5 or 1,3,5)")
                low, _, high = base.partition("-")
                base = names[int(low)] + (f"..{names[int(high)]}" if high else "")
            elif base != "*":
                base = base.replace("-", "..")
            if step:  # '*/N' starts at the field's first value: minute 0, month 1
                base = f"{first if base == '*' else base}/{step}"
            parts.append(base)
        return ",".join(parts)

    weekday = "" if dow == "*" else field(dow, 0, DAYS) + " "
    return (f"{weekday}*-{field(month, 1)}-{field(dom, 1)} "
            f"{field(hour, 0)}:{field(minute, 0)}:00")


def systemd_units(env: str, expression: str, folder: Path,
                  extra: list[str] | None = None, job: str = "drill") -> list[Path]:
    """Write drtool-JOB-ENV.service and .timer into `folder`; return their paths."""
    calendar = on_calendar(expression)
    # systemd expands %-specifiers in both settings: a literal % is written %%.
    environment = "\n".join(f"Environment={shlex.quote(f'{k}={v}')}".replace("%", "%%")
                            for k, v in sorted(job_environment().items()))
    argv = job_argv(env, extra, job)
    private = str(write_env_file(env)).replace("%", "%%")
    service = folder / f"drtool-{job}-{env}.service"
    timer = folder / f"drtool-{job}-{env}.timer"
    what = DESCRIBED[job]
    atomic_write(service, f"""[Unit]
Description=drtool {what} of {env}
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
{environment}
# Every other variable (webhook URLs, AWS and vault settings) is in this mode-0600 file.
EnvironmentFile={private}
ExecStart={" ".join(shlex.quote(a) for a in argv).replace("%", "%%")}
# 75: another drill or backup of {env} was running; try again at the next tick.
SuccessExitStatus=75
# On stop (or shutdown) SIGTERM goes to drtool alone, not to its ansible-playbook and
# pg_restore: drtool stops the running phase, rolls the targets back from the safety
# snapshot, records that, and exits. TimeoutStopSec gives the rollback time before
# SIGKILL reaches every process of the unit.
KillMode=mixed
TimeoutStopSec={STOP_TIMEOUT_S}
""")
    atomic_write(timer, f"""[Unit]
Description=Run the drtool {job} of {env} on its schedule ({expression})

[Timer]
OnCalendar={calendar}
Persistent=true
RandomizedDelaySec=60

[Install]
WantedBy=timers.target
""")
    log_file(env, job).parent.mkdir(parents=True, exist_ok=True)
    return [service, timer]


def unit_files(env: str, folders: tuple[Path, ...] | None = None) -> list[Path]:
    """The drtool service units of `env` (its drill's and its backup's) in the usual unit
    folders (where `schedule install --systemd` writes by default, for root and the user)."""
    if folders is None:
        folders = (Path("/etc/systemd/system"), Path.home() / ".config" / "systemd" / "user")
    return [folder / f"drtool-{job}-{env}.service" for folder in folders for job in JOBS
            if (folder / f"drtool-{job}-{env}.service").is_file()]


def default_unit_dir() -> Path:
    """/etc/systemd/system for root, else the user's ~/.config/systemd/user."""
    if os.geteuid() == 0:
        return Path("/etc/systemd/system")
    return Path.home() / ".config" / "systemd" / "user"
