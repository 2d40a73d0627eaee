#!/usr/bin/env bash
# `npm test`: set up, lint, type-check, then every test under node's own test runner.
source "$(dirname "$0")/lib.sh"
ensure_node_modules
setup_lxd
cd "$ROOT"
log "lint and format check (biome)"
npx biome check .
log "type check (tsc, strict)"
npx tsc -p tsconfig.json --noEmit
log "build (every package to dist/, as published)"
bash "$ROOT/scripts/build.sh"
mapfile -t files < <(find packages -path '*/node_modules' -prune -o -path '*/test/*' -name '*.test.ts' -print | sort)
log "running ${#files[@]} test files"
export VMPLANE_ROOT="$ROOT" VMPLANE_IMAGE_ALIAS="$IMAGE_ALIAS" VMPLANE_IMAGE_DIR="$CACHE/images"
exec node --conditions=vmplane-source --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
