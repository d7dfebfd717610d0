#!/bin/sh
# A parameter sweep: 8 points as one array job, then a summary job that depends on it.
# Needs a running server (batchyard quickstart, or BATCHYARD_ENDPOINT=...).
set -eu
cd "$(dirname "$0")"
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/batchyard-sweep.XXXXXX")}
mkdir -p "$out"
# Jobs may run as another user: a server running as root runs each job under a uid of its
# own in the group of batchyard-jobs (docs/security.md). Let that group write the directory.
if [ "$(id -u)" = 0 ] && gid=$(getent passwd batchyard-jobs | cut -d: -f4) && [ -n "$gid" ]; then
    chgrp "$gid" "$out" && chmod 2770 "$out"
fi

batchyard apply -f stack.yaml
sweep=$(batchyard submit --queue sweep --name sweep --job-definition sweep-point \
    --array-size 8 --param out="$out")
echo "sweep: array job $sweep"
summary=$(batchyard submit --queue sweep --name sweep-summary --job-definition sweep-summary \
    --depends-on "$sweep" --param out="$out" --param points=8 --wait)
batchyard logs "$summary"
echo "each point's output: batchyard logs $sweep:INDEX   results: $out"
