#!/usr/bin/env bash
# `npm start`: the demo. Sets up what it needs first.
source "$(dirname "$0")/lib.sh"
ensure_node_modules
setup_lxd
cd "$ROOT"
export VMPLANE_IMAGE_ALIAS="$IMAGE_ALIAS"
exec node --conditions=vmplane-source --import tsx scripts/demo.ts "$@"
