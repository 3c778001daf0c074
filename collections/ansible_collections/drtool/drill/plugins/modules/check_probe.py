#!/usr/bin/python
"""Ansible module: measure the value one of the team's checks (drtool_checks) asks about."""

from __future__ import annotations

DOCUMENTATION = r"""
module: check_probe
short_description: Measure what one of the team's checks asks about, on this host
description:
  - Runs one check the inventory declares (drtool_checks) and returns what it found; drtool
    judges that against the check's expectation. What the check could not measure (a query
    that errors, a server that does not answer, a command that times out) is returned in
    C(error), never a failed task, so that it is a failed check and not a failed drill.
  - "Reads only, unless I(writes) is true. C(sql) runs in a read-only transaction; C(redis)
    sends only reading commands; C(http) sends GET. What a C(command) does is its own: it is
    only run as given."
options:
  kind:
    description: What the check measures.
    type: str
    required: true
    choices: [sql, redis, http, command]
  timeout_s:
    description: Seconds the check may take.
    type: int
    default: 30
  writes:
    description: Whether the check may write (C(sql) then runs read-write).
    type: bool
    default: false
  host:
    description: The server's address (sql and redis).
    type: str
    default: 127.0.0.1
  port:
    description: The server's port (sql and redis).
    type: int
  user:
    description: The PostgreSQL user (sql).
    type: str
    default: postgres
  password:
    description: The server's password (sql and redis).
    type: str
  database:
    description: The database the query runs in (sql).
    type: str
  query:
    description: The query; its first row's first column is the value (sql).
    type: str
  db:
    description: The Redis logical database (redis).
    type: int
    default: 0
  key:
    description: The key to read (redis).
    type: str
  field:
    description: The hash field to read (redis, with key).
    type: str
  pattern:
    description: Count the keys matching this pattern (redis).
    type: str
  url:
    description: The URL to GET (http).
    type: str
  json_path:
    description: A dotted path into the JSON answer (http), e.g. C(items.0.id).
    type: str
  argv:
    description: The command and its arguments (command).
    type: list
    elements: str
author: drtool maintainers
"""

RETURN = r"""
error:
  description: Why nothing could be measured (redacted); null when measured.
  type: str
  returned: always
value:
  description: >-
    The measured value: sql, the first column of the first row; redis, the field's value
    (with field) or the key count (with pattern); http, the value at json_path; command, its
    standard output, stripped.
  type: raw
  returned: always
rows:
  description: How many rows the query returned (sql).
  type: int
  returned: sql
exists:
  description: Whether the key exists (redis with key).
  type: bool
  returned: redis
type:
  description: The key's type (redis with key).
  type: str
  returned: redis
ttl:
  description: The key's TTL in seconds, -1 without one (redis with key).
  type: int
  returned: redis
status:
  description: The HTTP status (http).
  type: int
  returned: http
exit_code:
  description: The exit code (command; not C(rc), which Ansible would take for the task failing).
  type: int
  returned: command
"""

import datetime
import decimal
import json
import subprocess
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

# How much text of an answer or an output is returned: the end, where errors are.
TAIL = 2000


def plain(value):
    """A value as JSON carries it: numbers, text, booleans, null; anything else as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def redacted(text, secrets):
    text = str(text).strip()
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[-TAIL:]


def probe_sql(params):
    import psycopg  # noqa: PLC0415 - a failed import is the check's error

    timeout_ms = max(1, params["timeout_s"]) * 1000
    with psycopg.connect(host=params["host"], port=params["port"], user=params["user"],
                         password=params["password"], dbname=params["database"],
                         connect_timeout=min(10, max(1, params["timeout_s"])),
                         application_name="drtool-check", autocommit=False,
                         options=f"-c statement_timeout={timeout_ms}") as conn:
        conn.read_only = not params["writes"]
        cursor = conn.execute(params["query"])
        rows = cursor.fetchall() if cursor.description else []
        if params["writes"]:
            conn.commit()
        else:
            conn.rollback()
    first = rows[0][0] if rows and len(rows[0]) else None
    return {"value": plain(first), "rows": len(rows)}


def probe_redis(params):
    import redis  # noqa: PLC0415 - a failed import is the check's error

    client = redis.Redis(host=params["host"], port=params["port"], password=params["password"],
                         db=params["db"], socket_timeout=params["timeout_s"],
                         socket_connect_timeout=min(10, max(1, params["timeout_s"])),
                         decode_responses=True)
    if params["pattern"]:
        count = sum(1 for _ in client.scan_iter(match=params["pattern"], count=1000))
        return {"value": count}
    key = params["key"]
    kind = client.type(key)
    found = {"exists": kind != "none", "type": None if kind == "none" else kind,
             "ttl": None if kind == "none" else client.ttl(key), "value": None}
    if params["field"] and kind == "hash":
        found["value"] = client.hget(key, params["field"])
    elif params["field"] is None and kind == "string":
        found["value"] = client.get(key)
    return found


def probe_http(params):
    if not params["url"].startswith(("http://", "https://")):
        return {"status": None, "value": None, "error": "the URL is not http(s)"}
    request = urllib.request.Request(params["url"], method="GET",  # noqa: S310 - http(s) only
                                     headers={"User-Agent": "drtool-check"})
    try:
        with urllib.request.urlopen(request, timeout=params["timeout_s"]) as answer:  # noqa: S310
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as exc:  # an answer all the same: its status is measured
        status, body = exc.code, exc.read()
    found = {"status": status, "value": None}
    if params["json_path"]:
        try:
            value = json.loads(body)
        except ValueError:
            return dict(found, error=f"the answer (HTTP {status}) is not JSON")
        for part in params["json_path"].split("."):
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return dict(found, error=f"the answer (HTTP {status}) has no {params['json_path']}")
        found["value"] = plain(value) if not isinstance(value, (dict, list)) else json.dumps(value)
    return found


def probe_command(params):
    done = subprocess.run(params["argv"], capture_output=True, timeout=params["timeout_s"],
                          check=False)
    found = {"exit_code": done.returncode,
             "value": done.stdout.decode("utf-8", "replace").strip()[-TAIL:]}
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        found["error"] = f"exit {done.returncode}" + (f": {stderr[-TAIL:]}" if stderr else "")
    return found


PROBES = {"sql": probe_sql, "redis": probe_redis, "http": probe_http, "command": probe_command}
NEEDS = {"sql": ("port", "database", "query"), "redis": ("port",), "http": ("url",),
         "command": ("argv",)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type="str", required=True, choices=sorted(PROBES)),
            timeout_s=dict(type="int", default=30),
            writes=dict(type="bool", default=False),
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int"),
            user=dict(type="str", default="postgres"),
            password=dict(type="str", no_log=True),
            database=dict(type="str"),
            query=dict(type="str"),
            db=dict(type="int", default=0),
            key=dict(type="str", no_log=False),
            field=dict(type="str"),
            pattern=dict(type="str"),
            url=dict(type="str"),
            json_path=dict(type="str"),
            argv=dict(type="list", elements="str"),
        ),
        required_if=[("kind", kind, needs) for kind, needs in NEEDS.items()],
        mutually_exclusive=[("key", "pattern")],
        supports_check_mode=False,
    )
    params = module.params
    if params["kind"] == "redis" and not (params["key"] or params["pattern"]):
        module.fail_json(msg="a redis check needs key or pattern")
    result = {"changed": False, "error": None, "value": None}
    try:
        result.update(PROBES[params["kind"]](params))
    except subprocess.TimeoutExpired:
        result["error"] = f"no answer within {params['timeout_s']} s"
    except Exception as exc:  # noqa: BLE001 - whatever stopped the measure is the check's error
        text = redacted(exc, [params["password"]]) or type(exc).__name__
        result["error"] = text.splitlines()[0] if params["kind"] != "sql" else " ".join(
            text.split())
    result["changed"] = bool(params["writes"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
