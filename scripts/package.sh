#!/usr/bin/env bash
# Builds sprout's Debian package (build-pkg/sprout_VERSION_amd64.deb): a build installed under /usr,
# with the guest kernel from the cache (scripts/setup.sh builds it). Prints the package's path.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build build-pkg -j"$(nproc)" >/dev/null
(cd build-pkg && cpack -G DEB >/dev/null)
ls "$PWD"/build-pkg/sprout_*_amd64.deb
