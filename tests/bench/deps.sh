#!/bin/bash
# Install what `make bench` needs from Debian when missing (fio, qemu-storage-daemon, qemu-img,
# fusermount3, gnuplot for the PNG). Idempotent; does nothing when everything is present.
set -euo pipefail
missing=""
for c in fio qemu-storage-daemon qemu-img fusermount3 gnuplot mkfs.ext4 losetup; do
  command -v "$c" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
done
if [ -n "$missing" ]; then
  echo "bench: installing dependencies (missing:$missing)"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y fio qemu-system-common qemu-utils fuse3 gnuplot-nox e2fsprogs mount
fi
[ -e /dev/fuse ] || { echo "bench: /dev/fuse is missing (load the fuse module)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: must run as root (drop_caches, loop mounts)"; exit 1; }
