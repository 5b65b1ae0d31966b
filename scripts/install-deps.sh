#!/usr/bin/env bash
# Installs every Debian package Kelpie's build, tests and demo need. Idempotent:
# packages already present are not touched, and apt is only asked when something is missing.
set -euo pipefail

PKGS=(
  # build
  cmake ninja-build g++ make pkg-config
  libasio-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libisal-dev
  libgtest-dev libgmock-dev nettle-dev
  # fuzz targets (make fuzz): clang with libFuzzer and the sanitizer runtimes
  clang-14 libfuzzer-14-dev libclang-rt-14-dev
  # real clients the integration tests drive
  tgt libiscsi-bin libiscsi-dev qemu-utils qemu-block-extra
  python3 procps
  # membership across hosts: ZooKeeper's C client (build) and server (tests); network
  # namespaces, veth pairs and a bridge for the multi-host test
  libzookeeper-mt-dev zookeeperd iproute2
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps package scripts from starting daemons (tgt) on the host.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
