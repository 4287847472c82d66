"""numpy's global generator is each clone's own (label "kvm"): a function that imports Debian's
python3-numpy is built with `sprout build`, prewarmed into a snapshot and cloned fresh several times
(direct mode, real KVM). The runtime re-seeds numpy's global generator in every clone, so their
draws differ; a Generator the handler made before the snapshot is not re-seeded and draws the same
numbers in every clone (docs/python.md, "Randomness"), which also shows that the clones really do
start from one state.

    python3.11 test_numpy.py SPROUT FUNCTION_DIR WORK_DIR

Exits 77 (skipped) on a host without /dev/kvm unless SPROUT_REQUIRE_KVM is set; prints
"N passed, N failed" last and exits non-zero on any failure or when nothing was checked.
"""

import json
import os
import shutil
import subprocess
import sys

from checks import check, finish

CLONES = 6


def main():
    sprout, fn, work = sys.argv[1:4]
    if not os.path.exists("/dev/kvm") and os.environ.get("SPROUT_REQUIRE_KVM", "0") in ("", "0"):
        print("SKIP: this host has no /dev/kvm, so this KVM test cannot run (set "
              "SPROUT_REQUIRE_KVM=1 to make that a failure)", file=sys.stderr)
        return 77
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    image, snap = os.path.join(work, "image"), os.path.join(work, "numpy.snap")
    r = subprocess.run([sprout, "build", fn, "-o", image], capture_output=True, text=True)
    check(r.returncode == 0, f"sprout build: {r.stdout}{r.stderr}")
    if r.returncode:
        return finish()
    # A 40 MiB initramfs: minutes of emulated guest kernel on a PVM host.
    r = subprocess.run([sprout, "prewarm", image, "-o", snap, "--timeout", "1100"],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"sprout prewarm: {r.stdout}{r.stderr}")
    if r.returncode:
        return finish()
    r = subprocess.run([sprout, "clone", "--direct", snap, "-n", str(CLONES), "--invoke",
                        '{"n": 4}', "--json"], capture_output=True, text=True)
    rows = []
    for line in r.stdout.splitlines():
        j = json.loads(line)
        if "clone" in j:
            rows.append(j)
    check(r.returncode == 0 and len(rows) == CLONES,
          f"sprout clone: rc {r.returncode}, {len(rows)} clones answered: {r.stdout}{r.stderr}")
    results = [(row.get("response") or {}).get("result") or {} for row in rows]
    whole = all(len(res.get("global", ())) == 4 and len(res.get("shared_generator", ())) == 4
                for res in results)
    check(whole, f"the answers: {[row.get('response') for row in rows]}")
    if not whole or not results:
        return finish()
    glob = [tuple(res["global"]) for res in results]
    shared = [tuple(res["shared_generator"]) for res in results]
    check(len(set(glob)) == len(glob), f"numpy.random.randint repeated across clones: {glob}")
    check(len(set(shared)) == 1, f"the pre-snapshot Generator differed across clones: {shared}")
    print(f"numpy.random.randint in clones 0 and 1: {glob[0]} {glob[1]}; the pre-snapshot "
          f"Generator in both: {shared[0]}")
    return finish()


if __name__ == "__main__":
    sys.exit(main())
