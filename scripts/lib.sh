# Shared by the repository's scripts: idempotent set-up of what the tests and the demo need.
# Everything here is safe to run again; nothing is installed when already present.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
export LXD_DIR="${LXD_DIR:-/var/lib/lxd}"
LXD_SOCKET="$LXD_DIR/unix.socket"
LXD_LOG_DIR="${LXD_LOG_DIR:-/var/log/vmplane-lxd}"
IMAGE_ALIAS="${VMPLANE_IMAGE_ALIAS:-vmplane-busybox}"

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The Debian packages, each program they bring and who needs it: one table, in
# scripts/system-requirements.sh. The set-up installs them without Recommends (so that nothing
# unnamed is pulled in) and then checks that every program is there.
source "$ROOT/scripts/system-requirements.sh"
mapfile -t SYSTEM_PACKAGES < <(system_packages)

ensure_system_packages() {
  local missing=()
  for p in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  check_system || { log "the packages are installed, yet programs are missing (above): is PATH complete?"; return 1; }
}

ensure_node_modules() {
  if [ ! -d "$ROOT/node_modules" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    log "installing npm dependencies (npm ci, exactly the lock file)"
    # No fallback to `npm install`: it would rewrite the lock file and hide that it is incomplete.
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error) || {
      log "npm ci failed: package-lock.json does not install as committed; fix the lock file (npm install, then commit it)"
      return 1
    }
  fi
  ensure_npm_cache_for_consumers
}

# The pack-install test installs the packed tarballs into an empty project with `npm install
# --offline`: tests reach no registry. Such an install resolves ranges, so it needs the packuments
# of the packages' external dependencies (and theirs) in npm's cache, which `npm ci` never fetches.
# This set-up step does the same install once, online, into a scratch folder, and so fills the
# cache; a stamp keyed on the dependency ranges skips it on later runs.
ensure_npm_cache_for_consumers() {
  local specs stamp
  specs="$(cd "$ROOT" && node -e '
    const fs = require("fs");
    const out = new Set();
    for (const p of fs.readdirSync("packages")) {
      const f = `packages/${p}/package.json`;
      if (!fs.existsSync(f)) continue;
      const m = JSON.parse(fs.readFileSync(f, "utf8"));
      if (m.private) continue;
      for (const [d, r] of Object.entries(m.dependencies ?? {})) if (!d.startsWith("@vmplane/")) out.add(`${d}@${r}`);
    }
    out.add(`@types/node@${require("./node_modules/@types/node/package.json").version}`);
    console.log([...out].sort().join(" "));
  ')"
  stamp="$CACHE/npm-consumer-cache.stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$specs" ]; then return 0; fi
  log "filling npm's cache for an offline install of the packed packages: $specs"
  local scratch
  scratch="$(mktemp -d)"
  printf '{"name":"vmplane-cache-fill","private":true}\n' >"$scratch/package.json"
  # shellcheck disable=SC2086
  (cd "$scratch" && npm install --no-audit --no-fund --loglevel=error --ignore-scripts $specs >/dev/null) || {
    rm -rf "$scratch"
    log "could not fill npm's cache from the registry"
    return 1
  }
  rm -rf "$scratch"
  mkdir -p "$CACHE"
  printf '%s' "$specs" >"$stamp"
}

lxd_ready() { [ -S "$LXD_SOCKET" ] && timeout 5 lxc query /1.0 >/dev/null 2>&1; }

ensure_lxd_running() {
  if lxd_ready; then return 0; fi
  mkdir -p "$LXD_LOG_DIR"
  log "starting the LXD daemon (log: $LXD_LOG_DIR/lxd.log)"
  # setsid: the daemon outlives this script and the test run, like a service would. It runs from /,
  # not from this checkout: the tools it spawns (rsync for snapshots and copies) fail once a
  # temporary clone it was started from is deleted.
  (cd / && exec setsid nohup lxd --group root --logfile "$LXD_LOG_DIR/lxd.log") >"$LXD_LOG_DIR/stdout.log" 2>&1 </dev/null &
  echo $! >"$LXD_LOG_DIR/lxd.pid"
  for _ in $(seq 1 60); do
    if [ -S "$LXD_SOCKET" ] && lxd waitready --timeout 2 >/dev/null 2>&1; then break; fi
    sleep 1
  done
  lxd_ready || { log "LXD did not come up; see $LXD_LOG_DIR/lxd.log"; tail -20 "$LXD_LOG_DIR/lxd.log" >&2 || true; return 1; }
}

ensure_lxd_initialised() {
  if ! lxc storage show default >/dev/null 2>&1; then
    log "initialising LXD with a dir storage pool named default"
    lxd init --preseed <<'YAML'
config: {}
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
YAML
  fi
}

# A busybox root filesystem whose init powers off cleanly on LXD's SIGPWR (and SIGTERM).
build_rootfs() {
  local dir="$1"
  rm -rf "$dir"
  mkdir -p "$dir"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin,var/log,run}
  cp /bin/busybox "$dir/bin/busybox"
  local applet
  for applet in $("$dir/bin/busybox" --list); do
    [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  printf 'vmplane-busybox\n' >"$dir/etc/hostname"
  cat >"$dir/sbin/init" <<'INIT'
#!/bin/sh
# Minimal init: stay up until LXD asks for a shutdown (SIGPWR) or a stop (SIGTERM).
trap 'exit 0' PWR TERM INT
mount -t tmpfs tmpfs /tmp 2>/dev/null
while :; do sleep 3600 & wait $!; done
INIT
  chmod 0755 "$dir/sbin/init"
  chmod 1777 "$dir/tmp"
}

write_metadata() {
  local file="$1" stamp="$2"
  cat >"$file" <<YAML
architecture: x86_64
creation_date: $stamp
properties:
  os: busybox
  release: "1.35"
  variant: vmplane
  description: busybox test image built by vmplane
templates: {}
YAML
}

# Unified tarball and split (metadata tarball + squashfs rootfs) of the same root filesystem.
ensure_images_built() {
  local out="$CACHE/images"
  if [ -f "$out/unified.tar.gz" ] && [ -f "$out/split-meta.tar.gz" ] && [ -f "$out/split-rootfs.squashfs" ]; then return 0; fi
  log "building busybox images in $out"
  mkdir -p "$out"
  local work
  work="$(mktemp -d)"
  build_rootfs "$work/rootfs"
  write_metadata "$work/metadata.yaml" "$(date +%s)"
  tar -C "$work" -czf "$out/unified.tar.gz.tmp" metadata.yaml rootfs
  tar -C "$work" -czf "$out/split-meta.tar.gz.tmp" metadata.yaml
  mksquashfs "$work/rootfs" "$out/split-rootfs.squashfs.tmp" -noappend -quiet -comp gzip >/dev/null
  mv "$out/unified.tar.gz.tmp" "$out/unified.tar.gz"
  mv "$out/split-meta.tar.gz.tmp" "$out/split-meta.tar.gz"
  mv "$out/split-rootfs.squashfs.tmp" "$out/split-rootfs.squashfs"
  cp -a "$work/rootfs" "$out/" 2>/dev/null || true
  rm -rf "$work"
}

# The image under its test alias, and as `busybox/1.35`: go-pve-qemu's install names an image by
# os and version, which the LXD provider looks up as the alias `<os>/<version>` (the demo's).
OS_ALIAS="busybox/1.35"
ensure_image_imported() {
  if ! lxc image info "$IMAGE_ALIAS" >/dev/null 2>&1; then
    log "importing the busybox image as $IMAGE_ALIAS"
    lxc image import "$CACHE/images/unified.tar.gz" --alias "$IMAGE_ALIAS" >/dev/null
  fi
  if ! lxc image info "$OS_ALIAS" >/dev/null 2>&1; then
    local fingerprint
    fingerprint="$(lxc image info "$IMAGE_ALIAS" | awk '/^Fingerprint:/ {print $2}')"
    lxc image alias create "$OS_ALIAS" "$fingerprint" >/dev/null
  fi
}

setup_lxd() {
  ensure_system_packages
  ensure_lxd_running
  ensure_lxd_initialised
  ensure_images_built
  ensure_image_imported
}
