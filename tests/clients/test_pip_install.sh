#!/usr/bin/env bash
# The Python client installs with pip from the checkout, as docs/clients.md says, and works from
# where it was installed: pip into a fresh venv (no network: --no-index; setuptools and wheel are
# Debian's, through --system-site-packages), import it from outside the source tree, call a real
# sproutd on a real socket with it, then uninstall it. The source tree is copied first: a build
# must not leave build/ or *.egg-info in the checkout.
#   test_pip_install.sh PYTHON SPROUTD CLIENT_DIR
set -u
python=$1 sproutd=$2 src=$3
passed=0 failed=0
check() { # check WHAT COMMAND...
  local what=$1
  shift
  if "$@" >>"$tmp/out" 2>&1; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what" >&2; tail -20 "$tmp/out" >&2; fi
}
tmp=$(mktemp -d /tmp/sprout-pip.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
cp -r "$src" "$tmp/src"
rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
check "a venv" "$python" -m venv --system-site-packages "$tmp/venv"
check "pip install from the checkout" "$tmp/venv/bin/pip" install --no-index --no-build-isolation \
  --no-cache-dir "$tmp/src"
mkdir -p "$tmp/state"
"$sproutd" --state-dir "$tmp/state" --socket "$tmp/state/api.sock" --image-roots "$tmp" \
  >"$tmp/sproutd.log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 150); do [ -S "$tmp/state/api.sock" ] && break; sleep 0.1; done
cd /
check "the installed package answers a real sproutd" "$tmp/venv/bin/python" -I -c '
import sys, sprout_client
here = sprout_client.__file__
assert here.startswith(sys.argv[1] + "/venv/lib/"), f"imported from {here}"
h = sprout_client.Client(sys.argv[1] + "/state/api.sock", timeout=10).health()
assert h.status in ("ok", "no_kvm") and h.version, h
print("installed at", here, "health", h.status, h.version)
' "$tmp"
check "pip show names it" sh -c "'$tmp/venv/bin/pip' show sprout-client | grep -q '^Version: '"
check "pip uninstall" "$tmp/venv/bin/pip" uninstall -y sprout-client
check "gone after uninstall" sh -c "! '$tmp/venv/bin/python' -I -c 'import sprout_client' 2>/dev/null"
check "the checkout is left clean" sh -c "[ ! -e '$src/build' ] && ! ls -d '$src'/*.egg-info 2>/dev/null"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
