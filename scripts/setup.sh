#!/usr/bin/env bash
# One-time (and idempotent) set-up of a fresh Debian 12 machine: the packages sprout needs to build, test
# and benchmark, the build itself, and the guest kernel (built once, then cached). A second run only
# rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config clang-format
  clang libclang-rt-14-dev # the fuzz targets: libFuzzer and the sanitizer runtimes (scripts/fuzz.sh)
  liburing-dev libzstd-dev uuid-dev libjansson-dev libarchive-dev libmicrohttpd-dev libxxhash-dev libcurl4-openssl-dev
  libsodium-dev libseccomp-dev
  busybox-static cpio curl zstd python3 python3-dev python3-yaml python3-numpy # numpy: python.numpy
  python3-pip python3-venv python3-setuptools python3-wheel # the Python client's pip install test
  gnuplot-nox # the benchmark plots (scripts/bench-plots.sh)
  linux-source-6.1 bc bison flex libelf-dev libssl-dev
  qemu-system-x86 kmod xz-utils # the nested-KVM rig (scripts/nested-kvm.sh): its kernel's modules.dep
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) == 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

BUILD_DIR=${SPROUT_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"

guest/kernel/build.sh >/dev/null
echo "setup: done (build in $BUILD_DIR, guest kernel $(guest/kernel/build.sh --print-path))" >&2
