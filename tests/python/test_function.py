"""`sprout build DIR` for a Python function directory, no VM (label "unit"): a handler of a kind the
repo does not ship (its own module, Debian's python3-yaml, uuid and secrets, errors on bad input)
is built into an image, the image's initramfs is unpacked and its handler run under chroot exactly
as the agent would start it; a missing module and a bad function.json fail the build, named.

    python3.11 test_function.py SPROUT FUNCTIONS_DIR

Prints "N passed, N failed" last and exits non-zero on any failure or when nothing was checked.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from checks import check, finish


def build(sprout, src, out):
    return subprocess.run([sprout, "build", src, "-o", out], capture_output=True, text=True)


def nul_list(path):
    with open(path, "rb") as f:
        return [x.decode() for x in f.read().split(b"\0") if x]


def run_in_image(root, event):
    """The handler as the agent starts it (/sprout/argv, /sprout/env), for one event (--once)."""
    argv = nul_list(os.path.join(root, "sprout/argv"))
    env = dict(e.split("=", 1) for e in nul_list(os.path.join(root, "sprout/env")))

    def enter():
        os.chroot(root)
        os.chdir("/")
    r = subprocess.run(argv + ["--once", json.dumps(event)], env=env, preexec_fn=enter,
                       capture_output=True, text=True)
    try:
        return json.loads(r.stdout), r
    except ValueError:
        return None, r


def main():
    sprout, functions = sys.argv[1:3]
    with tempfile.TemporaryDirectory(prefix="sprout-fn-test-") as tmp:
        out = os.path.join(tmp, "image")
        r = build(sprout, os.path.join(functions, "yaml-orders"), out)
        check(r.returncode == 0 and "yaml-orders" in r.stdout, f"the build: {r.stdout}{r.stderr}")
        manifest = json.load(open(os.path.join(out, "manifest.json")))
        check(manifest["name"] == "yaml-orders" and manifest["memory_mib"] == 128,
              f"function.json's name and memory: {manifest}")

        root = os.path.join(tmp, "root")
        os.mkdir(root)
        with open(os.path.join(out, "initrd.cpio"), "rb") as f:
            u = subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], stdin=f,
                               cwd=root, capture_output=True, text=True)
        check(u.returncode == 0, f"unpacking the initramfs: {u.stderr}")
        names = {os.path.relpath(os.path.join(d, n), root) for d, _, fs in os.walk(root)
                 for n in fs}
        check({"app/handler.py", "app/rules.py", "app/samples.json"} <= names,
              "the handler, its own module and the samples are in /app")
        check("usr/lib/python3/dist-packages/yaml/__init__.py" in names,
              "yaml from Debian's python3-yaml is shipped at its Debian path")
        check(not any(n.startswith("usr/lib/python3/dist-packages/") and "yaml" not in n.lower()
                      for n in names), "nothing else of dist-packages is shipped")

        order = "items:\n  - {qty: 2, cents: 150}\n  - {qty: 1, cents: 999}\ncoupon: TENOFF\n"
        ans, r = run_in_image(root, {"order": order})
        ok = ans and ans.get("ok") and ans["result"]
        check(ok and ok["total"] == 1170, f"the total (1299 less 10%): {r.stdout}{r.stderr}")
        check(ok and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                                  ok["order_id"]) and re.fullmatch(r"[0-9a-f]{16}", ok["token"]),
              f"a uuid4 and a token: {ok}")
        bad, r = run_in_image(root, {"order": 7})
        check(bad and bad["ok"] is False and bad["error"]["type"] == "ValueError"
              and "'order' string" in bad["error"]["message"], f"bad input: {r.stdout}{r.stderr}")

        r = build(sprout, os.path.join(functions, "missing-module"), os.path.join(tmp, "m"))
        check(r.returncode == 1 and "imports 'sprout_no_such_module_xyz'" in r.stderr
              and "apt-get install python3-" in r.stderr, f"a missing module: {r.stderr}")
        check(not os.path.exists(os.path.join(tmp, "m", "manifest.json")),
              "a failed build leaves no image")

        bad_fn = os.path.join(tmp, "badfn")
        shutil.copytree(os.path.join(functions, "yaml-orders"), bad_fn)
        with open(os.path.join(bad_fn, "function.json"), "w") as f:
            json.dump({"name": "x", "colour": "blue"}, f)
        r = build(sprout, bad_fn, os.path.join(tmp, "b"))
        check(r.returncode == 1 and "unknown key 'colour'" in r.stderr,
              f"an unknown function.json key: {r.stderr}")
        with open(os.path.join(bad_fn, "function.json"), "w") as f:
            json.dump({"memory_mib": "lots"}, f)
        r = build(sprout, bad_fn, os.path.join(tmp, "b"))
        check(r.returncode == 1 and "'memory_mib' must be a int" in r.stderr,
              f"a mistyped function.json value: {r.stderr}")
    return finish()


if __name__ == "__main__":
    sys.exit(main())
