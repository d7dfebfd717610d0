#!/bin/sh
# Installs what the benchmark suite drives besides batchyard itself: wrk (the API load
# generator), GNU parallel (a baseline), and Slurm with munge (the comparison). PostgreSQL's
# binaries and batchyard come from scripts/setup-test-env. Safe to run again: it installs
# only what is missing. See docs/performance.md.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v parallel >/dev/null 2>&1 || missing="$missing parallel"
command -v slurmctld >/dev/null 2>&1 || missing="$missing slurm-wlm"
command -v munged >/dev/null 2>&1 || missing="$missing munge"

if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi
