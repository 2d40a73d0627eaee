#!/usr/bin/env bash
# `npm start`: vmplane on its embedded defaults, an install through its API shown live, a command in the guest. Sets up what it needs first.
source "$(dirname "$0")/lib.sh"
ensure_node_modules
setup_lxd
cd "$ROOT"
export VMPLANE_IMAGE_ALIAS="$IMAGE_ALIAS"
exec node --conditions=vmplane-source --import tsx scripts/demo.ts "$@"
