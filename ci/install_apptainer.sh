#!/usr/bin/env bash
# Install an Apptainer on a Debian 12 (bookworm) CI machine that reaches only Debian's mirror:
# bookworm has no apptainer package, sid has one (built against a newer glibc), so its binaries
# are unpacked under $APPTAINER_PREFIX with sid's libc beside them (patchelf), made relocatable,
# and put on PATH as /usr/local/bin/apptainer. Idempotent; as root. A normal cluster has its
# distribution's apptainer and needs none of this.
# Findings behind each step: ../shared/cluster/containers.md (tested 2026-11-27).
set -euo pipefail
PREFIX=${APPTAINER_PREFIX:-/opt/apptainer}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
WORK=${APPTAINER_WORK:-/tmp/apptainer-install}

if [ -x "$PREFIX/usr/bin/apptainer" ] && "$PREFIX/usr/bin/apptainer" --version >/dev/null 2>&1; then
  echo "apptainer already installed: $("$PREFIX/usr/bin/apptainer" --version)"
else
  export DEBIAN_FRONTEND=noninteractive
  command -v patchelf >/dev/null && command -v mksquashfs >/dev/null || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends patchelf squashfs-tools >/dev/null
  }
  # a private apt state for sid: the system's sources and package database stay untouched
  A=$WORK/apt-sid
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/debs"
  : >"$A/status"
  echo "deb $MIRROR sid main" >"$A/sources.list"
  O=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/nonexistent
     -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache" -o Dir::State::status="$A/status"
     -o APT::Sandbox::User=root)
  apt-get "${O[@]}" update -qq
  rm -f "$A"/debs/*.deb
  (cd "$A/debs" && apt-get "${O[@]}" download -qq apptainer libc6)
  rm -rf "$PREFIX.new"
  dpkg -x "$A"/debs/apptainer_*.deb "$PREFIX.new"
  dpkg -x "$A"/debs/libc6_*.deb "$PREFIX.new/sidlibc"
  # sid's build needs GLIBC_2.38; bookworm has 2.36: run it with sid's loader and libc
  L=$PREFIX/sidlibc/usr/lib/x86_64-linux-gnu
  for f in "$PREFIX.new/usr/bin/apptainer" "$PREFIX.new"/usr/lib/x86_64-linux-gnu/apptainer/bin/starter; do
    patchelf --set-interpreter "$L/ld-linux-x86-64.so.2" --set-rpath "$L:/usr/lib/x86_64-linux-gnu" "$f"
  done
  # a non-setuid apptainer finds etc/ and var/ relative to its binary and to its starter
  ln -s ../etc "$PREFIX.new/usr/etc"
  ln -s ../var "$PREFIX.new/usr/var"
  ln -s ../../etc "$PREFIX.new/usr/lib/etc"
  ln -s ../../var "$PREFIX.new/usr/lib/var"
  mkdir -p "$PREFIX.new/var/lib/apptainer/mnt/session"
  # root would ask for every capability, CAP_SYS_RESOURCE included, which this VM withholds
  sed -i 's/^root default capabilities = full/root default capabilities = file/' \
    "$PREFIX.new/etc/apptainer/apptainer.conf"
  rm -rf "$PREFIX"
  mv "$PREFIX.new" "$PREFIX"
  rm -rf "$WORK"
fi
# --fakeroot builds (apptainer build of a .def) need a subordinate id range for root
grep -q '^root:' /etc/subuid || echo 'root:100000:65536' >>/etc/subuid
grep -q '^root:' /etc/subgid || echo 'root:100000:65536' >>/etc/subgid
printf '#!/bin/sh\nexec %s/usr/bin/apptainer "$@"\n' "$PREFIX" >/usr/local/bin/apptainer.new
chmod +x /usr/local/bin/apptainer.new
mv /usr/local/bin/apptainer.new /usr/local/bin/apptainer
apptainer --version
