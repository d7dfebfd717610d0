#!/bin/sh
# An ETL pipeline: extract (array) -> transform (array, N_TO_N) -> load (aggregate).
# Needs a running server (batchyard quickstart, or BATCHYARD_ENDPOINT=...).
set -eu
cd "$(dirname "$0")"
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/batchyard-etl.XXXXXX")}
mkdir -p "$out"
shards=6
# Jobs may run as another user: a server running as root runs each job under a uid of its
# own in the group of batchyard-jobs (docs/security.md). Let that group write the directory.
if [ "$(id -u)" = 0 ] && gid=$(getent passwd batchyard-jobs | cut -d: -f4) && [ -n "$gid" ]; then
    chgrp "$gid" "$out" && chmod 2770 "$out"
fi

batchyard apply -f stack.yaml
extract=$(batchyard submit --queue etl --name extract --job-definition etl-extract \
    --array-size $shards --param out="$out")
transform=$(batchyard submit --queue etl --name transform --job-definition etl-transform \
    --array-size $shards --depends-on "$extract:N_TO_N" --param out="$out")
echo "extract: $extract  transform: $transform (child i waits for extract's child i)"
load=$(batchyard submit --queue etl --name load --job-definition etl-load \
    --depends-on "$transform" --param out="$out" --param shards=$shards --wait)
batchyard logs "$load"
echo "a shard's output: batchyard logs $transform:0   files: $out"
