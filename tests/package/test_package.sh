#!/usr/bin/env bash
# The Debian package as a user gets it: its control data, its files where the unit file expects
# them, and the installed sprout building a function with the installed agent and Python runtime
# while the build tree is hidden (a private mount namespace). Usage: test_package.sh DEB SRC_DIR
set -u
deb=$1
src=$2
pass=0
fail=0
check() { # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi
}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

info=$(dpkg-deb -I "$deb")
check "the package depends on the libraries sprout links and on python3.11" \
  grep -qE 'Depends:.*python3.11.*libjansson4.*libsodium23.*liburing2' <<<"$info"
check "the package has a postinst" grep -q postinst <<<"$info"
check "dpkg-deb -x unpacks it" dpkg-deb -x "$deb" "$root"
lib=$(cd "$root" && ls -d usr/lib/*/sprout 2>/dev/null | head -n 1)
unit=$root/usr/lib/systemd/system/sproutd.service
check "the unit starts /usr/bin/sproutd" grep -q '^ExecStart=/usr/bin/sproutd ' "$unit"
check "the unit names the installed kernel" grep -q "^Environment=SPROUT_KERNEL=/$lib/vmlinux$" "$unit"
for f in usr/bin/sprout usr/bin/sproutd "$lib/sprout-worker" "$lib/sprout-agent" "$lib/vmlinux" "$lib/python/mkimage.py" \
  "$lib/python/sprout_shim.py"; do
  check "the package holds /$f" test -s "$root/$f"
done
check "sprout --version runs" grep -qE '^sprout [0-9]+\.[0-9]+\.[0-9]+$' <<<"$("$root/usr/bin/sprout" --version)"
check "sproutd --help runs" "$root/usr/bin/sproutd" --help

# The installed sprout on its own: the package's files at their installed paths, the build trees
# (whose files an uninstalled sprout would use first) hidden under empty directories.
made=""
if [[ ! -e /$lib ]]; then mkdir -p "/$lib" && made=/$lib; fi
out=$root/fn-image
unshare -m bash -c '
  set -e
  mount --bind "$1/$2" "/$2"
  for b in "$4"/build-pkg "$4"/build "$4"/guest/python; do
    [[ -d $b ]] && mount -t tmpfs tmpfs "$b"
  done
  "$1/usr/bin/sprout" build "$3" -o "$5"
' _ "$root" "$lib" "$src/tests/python/functions/yaml-orders" "$src" "$out" >"$root/build.log" 2>&1
rc=$?
[[ -n $made ]] && rmdir "$made" 2>/dev/null
check "the installed sprout builds a function with the installed agent and runtime (rc $rc)" test $rc = 0
check "the image it built names the function" grep -q '"name": "yaml-orders"' "$out/manifest.json"
[[ $rc == 0 ]] || cat "$root/build.log" >&2

echo "$pass passed, $fail failed"
[[ $fail == 0 && $pass -gt 0 ]]
