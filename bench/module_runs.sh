#!/bin/sh
# Module runs as drtool's phases run them: one ansible-playbook run of TASKS (default 25)
# `ansible.builtin.stat` tasks on each of the sandbox's eight local hosts, with the Ansible
# configuration, collection and payload_cache callback of the checkout ROOT and a payload
# folder of that checkout's own (built on its first run, shared by the next, as in drtool).
# Pair two checkouts with farm-bench to compare what a module run costs in each:
#
#   DRTOOL_HOME=/tmp/dh DRTOOL_SANDBOX_PORT_BASE=30400 farm-bench -n 5 --warmup 1 \
#       --vs "bench/module_runs.sh /tmp/wt-base" -- bench/module_runs.sh "$PWD"
#
# It reads the sandbox's inventory (hosts and their Python) only: no host is changed. Its
# playbook, payload folder and last output stay in $TMPDIR/drtool-module-runs-* for the next
# run; remove them when done.
set -eu
root=$(cd "${1:?usage: module_runs.sh ROOT [TASKS]}" && pwd)
tasks=${2:-25}
work=${TMPDIR:-/tmp}/drtool-module-runs-$(printf %s "$root" | cksum | cut -d' ' -f1)
mkdir -p "$work/tmp"
{
    echo "- name: Module runs"
    echo "  hosts: all"
    echo "  gather_facts: false"
    echo "  tasks:"
    i=0
    while [ "$i" -lt "$tasks" ]; do
        echo "    - name: Stat $i"
        echo "      ansible.builtin.stat: {path: /tmp}"
        i=$((i + 1))
    done
} > "$work/playbook.yml"
ANSIBLE_CONFIG="$root/ansible.cfg" ANSIBLE_LOCAL_TEMP="$work/tmp" \
    DRTOOL_PAYLOAD_CACHE="$work/payloads" PYTHONWARNINGS=ignore \
    "$(dirname "$0")/../.venv/bin/ansible-playbook" -i "$root/inventories/sandbox" \
    "$work/playbook.yml" > "$work/last.log"
