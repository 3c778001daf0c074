#!/usr/bin/python
"""Ansible module: ask the user's pgBackRest about a stanza (version, info, check, verify), or
have it take a backup; always as the cluster's operating system user."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pgbackrest
short_description: Read or drive a pgBackRest stanza for drtool's physical method
description:
  - "Runs C(pgbackrest) (an argument list, no shell) as I(os_user) when the module runs as root,
    with the configuration file given (else pgBackRest's default). drtool never reads or
    writes that configuration: repository keys stay in it."
  - C(info) returns the stanza's newest backup (or the one labelled I(label)); C(backup)
    takes one of I(backup_type) first and returns it; C(check) fails with pgBackRest's own
    error; C(verify) fails naming each file pgBackRest's verify found wrong (it exits 0 even
    then) and each hole in the stanza's WAL archive (which verify does not report).
options:
  command:
    description: What to run.
    type: str
    required: true
    choices: [version, info, check, backup, verify]
  stanza:
    description: The stanza.
    type: str
  config:
    description: pgBackRest's configuration file; empty for its default.
    type: str
    default: ""
  bin:
    description: The pgbackrest program.
    type: str
    default: pgbackrest
  os_user:
    description: The user pgBackRest runs as (the cluster's).
    type: str
    default: postgres
  backup_type:
    description: The type of backup to take (backup).
    type: str
    default: full
    choices: [full, diff, incr]
  label:
    description: The backup to describe (info); empty for the newest.
    type: str
    default: ""
  before:
    description: "info: the newest backup that ended before this time (ISO-8601, with its zone)."
    type: str
    default: ""
  timeout_s:
    description: Seconds the command may run.
    type: int
    default: 3600
author: drtool maintainers
"""

RETURN = r"""
version:
  description: pgBackRest's version.
  type: str
  returned: always
backup:
  description: The backup (label, type, times, LSNs, WAL range, sizes)
  type: dict
  returned: info and backup
duration_s:
  description: How long the command ran.
  type: float
  returned: always
output:
  description: What verify printed (its summary and the files it found wrong).
  type: str
  returned: verify
verified:
  description: Every backup and WAL file checked out and the archive has no hole.
  type: bool
  returned: verify
verify:
  description: verify's status, the problems it named, the holes in the archive a restore cannot pass (wal_gaps) and those no backup needs (expired_wal)
  type: dict
  returned: verify
labels:
  description: The labels of the backups the repository holds.
  type: list
  returned: verify
warnings_found:
  description: "Holes in the archive no backup needs: point-in-time recovery cannot reach into them"
  type: list
  returned: verify
"""

import datetime as dt
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.drtool.drill.plugins.module_utils.pgbackrest import (
    PgBackRestError,
    as_os_user,
    describe_expired,
    describe_gap,
    newest_backup,
    split_gaps,
    verify_findings,
    version_of,
    wal_gaps,
)


def said(done):
    """pgBackRest's own reason: its ERROR lines, else the end of what it printed."""
    text = "\n".join(line for line in ((done.stderr or "") + "\n" + (done.stdout or "")).splitlines()
                     if "command begin" not in line).strip()  # its options: not for the journal
    errors = [line.strip() for line in text.splitlines() if "ERROR:" in line]
    if errors:
        return "; ".join(errors[-3:])[-2000:]
    return text[-2000:] or "no message"


def run(module, argv, timeout):
    params = module.params
    try:
        user = as_os_user(params["os_user"])
    except KeyError:
        module.fail_json(msg="the operating system user %s does not exist on this host"
                         % params["os_user"])
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=False, **user)
    except FileNotFoundError:
        module.fail_json(msg="%s was not found on this host: install pgBackRest (the same "
                         "version as on the repository)" % argv[0])
    except subprocess.TimeoutExpired:
        module.fail_json(msg="%s did not end within %d s" % (" ".join(argv[-2:]), timeout))
    return None


def before_epoch(module, text):
    """An ISO-8601 time with its zone as epoch seconds; None for none."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        module.fail_json(msg="before: %r is not an ISO-8601 time" % text)
    if moment.tzinfo is None:
        module.fail_json(msg="before: %r has no time zone" % text)
    return moment.timestamp()


def verify(module, base, name, result, timeout):
    """pgBackRest's verify of every backup and WAL file, and drtool's look for holes in the
    archive (verify does not report a segment that is simply not there); fails naming
    each problem."""
    done = run(module, base + ["--output=text", "--verbose", "--log-level-console=info", "verify"], timeout)
    if done.returncode != 0:
        module.fail_json(msg="pgbackrest verify of stanza %s failed (exit %d): %s"
                         % (name, done.returncode, said(done)), **result)
    text = "\n".join(line for line in ((done.stdout or "") + "\n" + (done.stderr or "")).splitlines()
                     if "command begin" not in line)  # its options: paths, not for the journal
    status, problems, checked = verify_findings(text)
    listed = run(module, base + ["--output=json", "--recurse", "repo-ls", "archive/%s" % name],
                 timeout)
    if listed.returncode != 0:
        module.fail_json(msg="pgbackrest repo-ls of stanza %s's archive failed (exit %d): %s"
                         % (name, listed.returncode, said(listed)), **result)
    info = run(module, base + ["--output=json", "info"], timeout)
    if info.returncode != 0:
        module.fail_json(msg="pgbackrest info of stanza %s failed (exit %d): %s"
                         % (name, info.returncode, said(info)), **result)
    try:
        gaps, expired, labels = split_gaps(wal_gaps(listed.stdout), info.stdout, name)
    except PgBackRestError as exc:
        module.fail_json(msg=str(exc), **result)
    result["labels"] = labels
    result["warnings_found"] = [describe_expired(gap) for gap in expired[:5]]
    result["verify"] = {"status": status, "problems": problems, "wal_gaps": gaps,
                        "expired_wal": expired, "checked": checked}
    result["output"] = text[-4000:]
    reasons = problems[:5] + [describe_gap(gap) for gap in gaps[:5]]
    if status is None:
        reasons.append("pgbackrest verify printed no summary")
    elif status != "ok" and not reasons:
        reasons.append("its status is %s" % status)
    if reasons:
        module.fail_json(msg="pgbackrest verify of stanza %s: %s" % (name, "; ".join(reasons)),
                         **result)
    result["verified"] = True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="str", required=True,
                         choices=["version", "info", "check", "backup", "verify"]),
            stanza=dict(type="str", default=None),
            config=dict(type="str", default=""),
            bin=dict(type="str", default="pgbackrest"),
            os_user=dict(type="str", default="postgres"),
            backup_type=dict(type="str", default="full", choices=["full", "diff", "incr"]),
            label=dict(type="str", default=""),
            before=dict(type="str", default=""),
            timeout_s=dict(type="int", default=3600),
        ),
        required_if=[("command", c, ["stanza"]) for c in ("info", "check", "backup", "verify")],
        supports_check_mode=False,
    )
    params = module.params
    started = time.monotonic()
    base = [params["bin"]] + (["--config=%s" % params["config"]] if params["config"] else [])
    version = run(module, [params["bin"], "version"], 60)
    try:
        result = {"version": version_of(version.stdout)}
    except PgBackRestError as exc:
        module.fail_json(msg=str(exc))
    command = params["command"]
    stanza = ["--stanza=%s" % params["stanza"]] if params["stanza"] else []
    if command == "backup":
        done = run(module, base + stanza + ["--type=%s" % params["backup_type"], "backup"],
                   params["timeout_s"])
        if done.returncode != 0:
            module.fail_json(msg="pgbackrest backup of stanza %s failed (exit %d): %s"
                             % (params["stanza"], done.returncode, said(done)), **result)
    if command in ("info", "backup"):
        done = run(module, base + stanza + ["--output=json", "info"], params["timeout_s"])
        if done.returncode != 0:
            module.fail_json(msg="pgbackrest info of stanza %s failed (exit %d): %s"
                             % (params["stanza"], done.returncode, said(done)), **result)
        try:
            result["backup"] = newest_backup(done.stdout, params["stanza"], params["label"],
                                             before_epoch(module, params["before"]))
        except PgBackRestError as exc:
            module.fail_json(msg=str(exc), **result)
    elif command == "check":
        done = run(module, base + stanza + [command], params["timeout_s"])
        if done.returncode != 0:
            module.fail_json(msg="pgbackrest check of stanza %s failed (exit %d): %s"
                             % (params["stanza"], done.returncode, said(done)), **result)
    elif command == "verify":
        verify(module, base + stanza, params["stanza"], result, params["timeout_s"])
    result["duration_s"] = round(time.monotonic() - started, 3)
    module.exit_json(changed=command == "backup", **result)


if __name__ == "__main__":
    main()
