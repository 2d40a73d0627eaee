#!/usr/bin/env bash
# Builds packages to their dist/, each after the workspace packages it depends on.
#   bash scripts/build.sh                  every package
#   bash scripts/build.sh lxd proxmox      these (each package's `prepack` runs this with its name)
# A named package is built from scratch (dist/ removed first, so nothing stale is packed). A
# dependency that was not named is built only when its dist/ is missing or older than its sources:
# the type check of a package reads its dependencies' dist/*.d.ts.
source "$(dirname "$0")/lib.sh"
ensure_node_modules
cd "$ROOT"

# The order to build in: the named packages (all when none) after their @vmplane/* dependencies,
# from each package.json's `dependencies` (devDependencies are not needed to build), one per line
# as `<name> named|dependency`.
build_order() {
  node --input-type=module - "$@" <<'JS'
import { existsSync, readFileSync, readdirSync } from 'node:fs';
const all = readdirSync('packages').filter((d) => existsSync(`packages/${d}/tsconfig.build.json`));
const wanted = process.argv.slice(2).map((a) => a.replace(/^@vmplane\//, ''));
for (const w of wanted) {
  if (!all.includes(w)) {
    console.error(`[setup] no package named ${w} (packages: ${all.join(', ')})`);
    process.exit(2);
  }
}
const deps = (d) =>
  Object.keys(JSON.parse(readFileSync(`packages/${d}/package.json`, 'utf8')).dependencies ?? {})
    .filter((n) => n.startsWith('@vmplane/'))
    .map((n) => n.slice('@vmplane/'.length));
const order = [];
const visiting = new Set();
const visit = (d) => {
  if (order.includes(d)) return;
  if (visiting.has(d)) throw new Error(`dependency cycle through ${d}`);
  visiting.add(d);
  for (const dep of deps(d)) visit(dep);
  order.push(d);
};
const roots = wanted.length > 0 ? wanted : all.sort();
for (const d of roots) visit(d);
for (const d of order) console.log(`${d} ${wanted.length === 0 || wanted.includes(d) ? 'named' : 'dependency'}`);
JS
}

# A dependency's dist/ is current when it exists and no source or config is newer than it.
dist_current() {
  local dir="packages/$1"
  [ -f "$dir/dist/index.js" ] && [ -f "$dir/dist/index.d.ts" ] || return 1
  [ -z "$(find "$dir/src" "$dir/package.json" "$dir/tsconfig.build.json" "$ROOT/tsconfig.base.json" \
    -newer "$dir/dist/index.d.ts" -print -quit)" ]
}

order="$(build_order "$@")"
while read -r pkg why; do
  if [ "$why" = dependency ] && dist_current "$pkg"; then continue; fi
  if [ "$why" = dependency ]; then log "building @vmplane/$pkg (a dependency)"; else log "building @vmplane/$pkg"; fi
  rm -rf "packages/$pkg/dist"
  (cd "packages/$pkg" && "$ROOT/node_modules/.bin/tsc" -p tsconfig.build.json)
done <<<"$order"
