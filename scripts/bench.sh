#!/usr/bin/env bash
# `npm run bench:<name>`: benchmarks, apart from the tests.
source "$(dirname "$0")/lib.sh"
ensure_node_modules
name="${1:?usage: bench.sh lxd|proxmox|server}"
case "$name" in lxd | server) setup_lxd ;; esac
cd "$ROOT"
export VMPLANE_ROOT="$ROOT" VMPLANE_IMAGE_ALIAS="$IMAGE_ALIAS" VMPLANE_IMAGE_DIR="$CACHE/images"
exec node --conditions=vmplane-source --import tsx "packages/$name/bench/run.ts" "${@:2}"
