#!/usr/bin/env bash
# Builds every package to its dist/ in dependency order.
source "$(dirname "$0")/lib.sh"
ensure_node_modules
cd "$ROOT"
for pkg in common lxd proxmox proxmox-sim; do
  [ -f "packages/$pkg/tsconfig.build.json" ] || continue
  log "building @vmplane/$pkg"
  (cd "packages/$pkg" && npx tsc -p tsconfig.build.json)
done
