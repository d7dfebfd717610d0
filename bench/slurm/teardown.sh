#!/bin/sh
# Stop the private Slurm started by bench/slurm/setup.sh DIR (its jobs, slurmd, slurmctld,
# munged) and remove DIR. Only the processes named in DIR's pid files are signalled.
set -u
dir=${1:?usage: teardown.sh DIR}
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd)
export SLURM_CONF="$dir/slurm.conf"
if [ -f "$SLURM_CONF" ]; then
    timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
fi

stop_pid() {  # stop_pid FILE: SIGTERM, wait up to 10 s, then SIGKILL
    [ -f "$1" ] || return 0
    pid=$(cat "$1" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
}

for f in "$dir"/run/slurmd-*.pid; do stop_pid "$f"; done
# slurmstepd processes of this cluster (their spool dir is under DIR) end with slurmd's jobs;
# any left behind are found by their command line naming DIR.
for pid in $(pgrep -f "slurmstepd.*$dir" 2>/dev/null || true); do kill -KILL "$pid" 2>/dev/null || true; done
stop_pid "$dir/run/slurmctld.pid"
stop_pid "$dir/munge/munged.pid"
rm -rf "$dir"
