#!/usr/bin/env bash
# Prepare a real LXD daemon for atelier's LXD tests and benchmarks (Debian, as root). Idempotent and
# fast when everything is already in place; prints each thing it does; exits non-zero with a clear
# message when a step fails.
#
#   bash scripts/lxd-setup.sh          # packages, daemon, pool, bridge, default profile, busybox image
#   ATELIER_LXD_BTRFS=0 bash scripts/lxd-setup.sh   # skip the btrfs benchmark pool
#
# What it sets up (names can be overridden through the environment):
#   - packages lxd, lxd-client, busybox-static, btrfs-progs (apt-get, only when missing)
#   - the daemon: `lxd --group root` detached (setsid + nohup), log in $ATELIER_LXD_LOG, then `lxd waitready`
#   - a `dir` storage pool `default` and a default profile with a root disk and a NIC on the bridge
#   - bridge $ATELIER_LXD_BRIDGE (default atelierbr0) with an explicit IPv4 address, no firewall,
#     no IPv6 (this machine has no iptables; `lxc network create` without an address fails)
#   - image alias `busybox`: busybox-static with every applet linked, /sbin/init -> busybox, an
#     inittab that keeps the container running
#   - a btrfs pool $ATELIER_LXD_BTRFS_POOL (default atelier-btrfs, 2 GiB loop file) for `npm run bench`
set -euo pipefail

BRIDGE="${ATELIER_LXD_BRIDGE:-atelierbr0}"
BRIDGE_ADDR="${ATELIER_LXD_BRIDGE_ADDR:-10.213.77.1/24}"
IMAGE_ALIAS="${ATELIER_LXD_IMAGE:-busybox}"
LOG="${ATELIER_LXD_LOG:-/var/log/lxd-atelier.log}"
BTRFS="${ATELIER_LXD_BTRFS:-1}"
BTRFS_POOL="${ATELIER_LXD_BTRFS_POOL:-atelier-btrfs}"

say() { echo "lxd-setup: $*"; }
die() { echo "lxd-setup: ERROR: $*" >&2; exit 1; }
trap 'echo "lxd-setup: ERROR: \"$BASH_COMMAND\" failed at line $LINENO" >&2' ERR

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts the LXD daemon)"

# 1. Packages.
missing=()
# dnsmasq-base is only a recommendation of lxd's, but creating a managed bridge needs it.
for p in lxd lxd-client busybox-static btrfs-progs dnsmasq-base; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: this script targets Debian"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  apt-get install -y -q "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
else
  say "packages present"
fi

# 2. The daemon.
if lxd waitready --timeout=1 >/dev/null 2>&1 && lxc query /1.0 >/dev/null 2>&1; then
  say "lxd is answering"
else
  say "starting lxd (log: $LOG)"
  mkdir -p "$(dirname "$LOG")"
  # From /: the daemon's working directory is inherited by the rsync it runs for copies, which
  # fails ("getcwd(): No such file or directory") once a clone it was started from is deleted.
  # The background subshell's own streams go to the log too (and it execs setsid): otherwise it
  # stays alive as the daemon's parent holding this script's stdout, and a caller reading that
  # (`bash scripts/lxd-setup.sh | tail`) waits for as long as the daemon runs.
  (cd / && exec setsid nohup lxd --group root --logfile "$LOG") </dev/null >>"$LOG" 2>&1 &
  lxd waitready --timeout=60 || die "lxd did not become ready within 60 s; see $LOG"
  say "lxd is ready"
fi

# 3. Bridge (before the profile that points at it).
if lxc network show "$BRIDGE" >/dev/null 2>&1; then
  say "bridge $BRIDGE present"
else
  say "creating bridge $BRIDGE ($BRIDGE_ADDR, no NAT, no firewall, no IPv6)"
  lxc network create "$BRIDGE" ipv4.address="$BRIDGE_ADDR" ipv4.nat=false ipv6.address=none \
    ipv4.firewall=false ipv6.firewall=false >/dev/null || die "could not create bridge $BRIDGE"
fi

# 4. Storage pool and default profile (preseed; re-running it is harmless but skipped when in place).
profile=$(lxc profile show default 2>/dev/null || true)
if lxc storage show default >/dev/null 2>&1 && grep -q 'pool: default' <<<"$profile" \
  && grep -q "network: $BRIDGE" <<<"$profile"; then
  say "pool default and default profile present"
else
  say "preseeding dir pool 'default' and the default profile (root disk, eth0 on $BRIDGE)"
  pool_yaml=""
  if ! lxc storage show default >/dev/null 2>&1; then
    pool_yaml=$'storage_pools:\n- name: default\n  driver: dir\n'
  fi
  lxd init --preseed <<EOF || die "lxd init --preseed failed"
${pool_yaml}profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
    eth0:
      name: eth0
      network: $BRIDGE
      type: nic
EOF
fi

# 5. The busybox image.
if lxc image alias list --format csv 2>/dev/null | cut -d, -f1 | grep -qx "$IMAGE_ALIAS"; then
  say "image $IMAGE_ALIAS present"
else
  say "building and importing image $IMAGE_ALIAS from busybox-static"
  BB=$(command -v busybox) || die "busybox not found"
  work=$(mktemp -d)
  root="$work/rootfs"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,run,var/log,home}
  chmod 1777 "$root/tmp"
  cp "$BB" "$root/bin/busybox"
  for applet in $("$BB" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done
  ln -sf /bin/busybox "$root/sbin/init"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  cat >"$root/etc/inittab" <<'EOF'
::sysinit:/bin/mount -t tmpfs tmpfs /tmp
::respawn:/bin/sleep 2147483647
::shutdown:/bin/umount -a -r
EOF
  cat >"$work/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: busybox for atelier tests
  os: busybox
  release: "$("$BB" | head -n1 | awk '{print $2}')"
EOF
  tar -C "$work" -czf "$work/busybox.tar.gz" metadata.yaml rootfs
  lxc image import "$work/busybox.tar.gz" --alias "$IMAGE_ALIAS" >/dev/null || die "lxc image import failed"
  rm -rf "$work"
fi

# 6. A btrfs pool on a loop file, for the stash benchmark (optional; a failure only warns).
if [ "$BTRFS" = 1 ]; then
  if lxc storage show "$BTRFS_POOL" >/dev/null 2>&1; then
    say "btrfs pool $BTRFS_POOL present"
  else
    say "creating btrfs pool $BTRFS_POOL (2 GiB loop file)"
    lxc storage create "$BTRFS_POOL" btrfs size=2GiB >/dev/null \
      || echo "lxd-setup: warning: could not create btrfs pool $BTRFS_POOL; the btrfs benchmark will be skipped" >&2
  fi
fi

socket=/var/lib/lxd/unix.socket
[ -S "$socket" ] || socket=/var/snap/lxd/common/lxd/unix.socket
say "ready: socket $socket, image $IMAGE_ALIAS, bridge $BRIDGE"
