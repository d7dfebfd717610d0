#!/bin/sh
# The nightly risk report: one job with a retry strategy and a timeout. Its first attempt
# fails the way a flaky data feed does (exit 75) and is retried; the second succeeds.
# Needs a running server (batchyard quickstart, or BATCHYARD_ENDPOINT=...).
set -eu
cd "$(dirname "$0")"
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/batchyard-risk.XXXXXX")}
mkdir -p "$out"
date=${DATE:-2024-06-28}
# Jobs may run as another user: a server running as root runs each job under a uid of its
# own in the group of batchyard-jobs (docs/security.md). Let that group write the directory.
if [ "$(id -u)" = 0 ] && gid=$(getent passwd batchyard-jobs | cut -d: -f4) && [ -n "$gid" ]; then
    chgrp "$gid" "$out" && chmod 2770 "$out"
fi

batchyard apply -f stack.yaml
report=$(batchyard submit --queue risk --name "risk-$date" --job-definition risk-report \
    --param date="$date" --param out="$out" --wait)
echo "--- attempt 1 (failed, retried) ---"
batchyard logs "$report" --attempt 1
echo "--- attempt 2 ---"
batchyard logs "$report"
batchyard explain "$report"
