#!/bin/sh
# Rendering fan-out/fan-in: 8 tiles as one array job, then a stitch job that depends on it.
# Needs a running server (batchyard quickstart, or BATCHYARD_ENDPOINT=...).
set -eu
cd "$(dirname "$0")"
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/batchyard-render.XXXXXX")}
mkdir -p "$out"
# Jobs may run as another user: a server running as root runs each job under a uid of its
# own in the group of batchyard-jobs (docs/security.md). Let that group write the directory.
if [ "$(id -u)" = 0 ] && gid=$(getent passwd batchyard-jobs | cut -d: -f4) && [ -n "$gid" ]; then
    chgrp "$gid" "$out" && chmod 2770 "$out"
fi

batchyard apply -f stack.yaml
tiles=$(batchyard submit --queue render --name tiles --job-definition render-tile \
    --array-size 8 --param out="$out")
echo "tiles: array job $tiles"
stitch=$(batchyard submit --queue render --name stitch --job-definition render-stitch \
    --depends-on "$tiles" --param out="$out" --wait)
batchyard logs "$stitch"
