#!/usr/bin/env bash
# What this repository runs outside Node, and which Debian package brings each program: the set-up
# (scripts/lib.sh) installs exactly these packages, and `check_system` verifies afterwards that
# every program is really there. Sourced by lib.sh; run it directly to check a machine
# (`bash scripts/system-requirements.sh`, or `--list` to print the table).
#
# The check uses only shell builtins and /usr/bin/python3, so it can run under any PATH (the
# self-test in packages/common/test/system-check.test.ts runs it under a PATH lacking a program).

# program | Debian package | who needs it
# A program named `py:<module>` is a Python module, imported with Debian's /usr/bin/python3.
SYSTEM_REQUIREMENTS=(
  # The backend of the LXD tests, the demo and bench:lxd; the set-up runs `lxd init`/`waitready`
  # and the `lxc` CLI, which bench:lxd also measures.
  'lxd|lxd|the LXD daemon: lxd tests, npm start, bench:lxd'
  'lxc|lxd-client|set-up (lxc query, image import), bench:lxd (the lxc CLI row)'
  'lxcfs|lxcfs|LXD: the /proc views and hooks of every container start'

  # What LXD 5.0.2 itself spawns for what the tests exercise. Installing lxd with
  # --no-install-recommends skips dnsmasq-base (a Recommends), so each is named here.
  'dnsmasq|dnsmasq-base|LXD: managed bridges (lxd networks test), checked even without DHCP'
  'ip|iproute2|LXD: bridges and container veth devices'
  'iptables|iptables|LXD: firewall rules of managed bridges (xtables driver)'
  'ip6tables|iptables|LXD: firewall rules of managed bridges (xtables driver)'
  'rsync|rsync|LXD: instance copies, snapshots and volume copies on the dir pool'
  'tar|tar|LXD: unpacking images and backups; set-up: the test image tarballs'
  'gzip|gzip|LXD: image publish and backup (de)compression; set-up: .tar.gz images'
  'xz|xz-utils|LXD: .tar.xz images (SimpleStreams servers publish them)'
  'unsquashfs|squashfs-tools|LXD: split images with a squashfs rootfs (lxd images test)'
  'newuidmap|uidmap|LXD: the id map of unprivileged containers'
  'newgidmap|uidmap|LXD: the id map of unprivileged containers'

  # The set-up builds the test images locally from a static busybox (copied into the rootfs, so
  # it must be the static build) and a squashfs of the same rootfs.
  '/bin/busybox|busybox-static|set-up: the busybox test image'
  'mksquashfs|squashfs-tools|set-up: the split test image'

  # Tests and benchmarks.
  'openssl|openssl|lxd tests: client and server test certificates (test/support/certs.ts)'
  'git|git|pack-install test: packs the packages from a clean clone'
  '/usr/bin/python3|python3|proxmox-sim wire test, bench:lxd (Debian python with its modules)'
  'py:proxmoxer|python3-proxmoxer|proxmox-sim wire test (a second client against the simulator)'
  'py:pylxd|python3-pylxd|bench:lxd (the pylxd row)'
)

# Debian's interpreter: the `python3` on PATH may be another one without Debian's modules.
SYSTEM_PYTHON="${VMPLANE_SYSTEM_PYTHON:-/usr/bin/python3}"

# The packages named in the table, each once, in table order.
system_packages() {
  local row pkg seen=' '
  for row in "${SYSTEM_REQUIREMENTS[@]}"; do
    IFS='|' read -r _ pkg _ <<<"$row"
    case "$seen" in *" $pkg "*) continue ;; esac
    seen+="$pkg "
    printf '%s\n' "$pkg"
  done
}

# True when the requirement is met under the current PATH.
requirement_met() {
  local what="$1"
  case "$what" in
    py:*) [ -x "$SYSTEM_PYTHON" ] && "$SYSTEM_PYTHON" -c "import ${what#py:}" >/dev/null 2>&1 ;;
    /*) [ -x "$what" ] ;;
    *) command -v "$what" >/dev/null 2>&1 ;;
  esac
}

# Fails, naming every missing program with its package and who needs it.
check_system() {
  local row what pkg who missing=() packages=()
  for row in "${SYSTEM_REQUIREMENTS[@]}"; do
    IFS='|' read -r what pkg who <<<"$row"
    requirement_met "$what" && continue
    missing+=("$(printf '  %-18s from Debian package %-18s needed by %s' "$what" "$pkg" "$who")")
    case " ${packages[*]} " in *" $pkg "*) ;; *) packages+=("$pkg") ;; esac
  done
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  {
    printf '[setup] missing on this machine (PATH=%s):\n' "$PATH"
    printf '%s\n' "${missing[@]}"
    printf '[setup] install them with: apt-get install --no-install-recommends %s\n' "${packages[*]}"
  } >&2
  return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    --list) printf '%s\n' "${SYSTEM_REQUIREMENTS[@]}" ;;
    --packages) system_packages ;;
    '') check_system ;;
    *)
      printf 'usage: %s [--list | --packages]\n' "$0" >&2
      exit 2
      ;;
  esac
fi
