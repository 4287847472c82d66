"""Host tests of the Python runtime, no VM (label "unit"): the shim's request path (sprout_shim.Runtime)
and the image recipe's output, which is run under chroot exactly as the guest runs it.

    python3.11 test_shim.py SHIM_DIR HANDLER MKIMAGE EXT IMAGE_SRC_DIR

Prints "N passed, N failed" last and exits non-zero on any failure.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

from checks import check, finish


def call(rt, event):
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    return json.loads(rt.invoke(raw))


def test_runtime(shim_dir, handler):
    sys.path.insert(0, shim_dir)
    import sprout_shim

    logged = []
    rt = sprout_shim.Runtime(handler, log=logged.append)
    ok = call(rt, {"sku": "SKU-0042", "qty": 3, "country": "DE", "customer": "A <A@B.example>"})
    check(ok == {"ok": True, "result": {
        "sku": "SKU-0042", "name": "Swift rapid drill", "qty": 3, "unit_price": "150.90",
        "net": "452.70", "vat_rate": "0.19", "vat": "86.01", "total": "538.71", "currency": "EUR",
        "customer": {"name": "A", "email": "a@b.example"}}}, f"the quote: {ok}")

    bad = call(rt, b"{nope")
    check(bad["ok"] is False and bad["error"]["type"] == "BadRequest", f"bad JSON: {bad}")
    bad = call(rt, b'"\xff\xfe"')
    check(bad["error"]["type"] == "BadRequest", f"bad UTF-8: {bad}")

    err = call(rt, {"op": "raise", "message": "m1"})
    tb = err["error"]["traceback"]
    check(err["error"]["type"] == "ValueError" and err["error"]["message"] == "m1",
          f"a raise: {err}")
    check(f'File "{handler}", line' in tb and "raise ValueError" in tb and "sprout_shim" not in tb,
          f"the traceback shows the handler's frame only: {tb}")
    err = call(rt, {"sku": "SKU-9999"})
    check(err["error"]["type"] == "KeyError" and "_quote" in err["error"]["traceback"],
          f"a KeyError: {err}")

    out = call(rt, {"op": "print", "bytes": 150})
    check(out["ok"] and len(out["stdout"]) == 150 and out["stderr"] == "printed 150 bytes to stdout\n",
          f"captured output: {out}")
    check(logged == ["x" * 99 + "\n" + "y" * 50 + "printed 150 bytes to stdout\n"],
          f"the call's output is logged, both streams in order: {logged!r:.300}")
    logged.clear()
    again = call(rt, {"sku": "SKU-0001"})
    check("stdout" not in again and "stderr" not in again, "output does not leak to the next call")

    big = call(rt, {"op": "print", "bytes": 300000})
    check(big["ok"] and len(big["stdout"]) == sprout_shim.OUTPUT_MAX and big["stdout_logged"] == 300000,
          "long output is cut in the response")
    check(len(logged) == 1 and logged[0].count("x" * 99 + "\n") == 3000,
          "and is whole in the log")
    logged.clear()
    huge = call(rt, {"op": "print", "bytes": 10, "result_bytes": sprout_shim.RESPONSE_MAX})
    check(huge["ok"] is False and huge["error"]["type"] == "ResponseTooLarge"
          and huge.get("stdout_logged") == 10 and logged, f"too large: {str(huge)[:300]}")
    check(len(rt.invoke(json.dumps({"op": "print", "bytes": 10,
                                    "result_bytes": sprout_shim.RESPONSE_MAX - 200}).encode()))
          <= sprout_shim.RESPONSE_MAX, "a response never exceeds the area")

    real = rt.fn
    try:
        rt.fn = lambda e: {"x": object()}
        r = call(rt, {})
        check(r["ok"] is False and r["error"]["message"].startswith("the handler's result is not JSON"),
              f"an unencodable result: {r}")
        rt.fn = lambda e: float("nan")
        r = call(rt, {})
        check(r["ok"] is False and r["error"]["type"] == "ValueError", f"NaN is not JSON: {r}")

        def leaves(e):
            print("bye")
            sys.exit(3)
        rt.fn = leaves
        r = call(rt, {})
        check(r["ok"] is False and r["error"]["type"] == "SystemExit" and r["stdout"] == "bye\n",
              f"sys.exit in a handler is an error, not an exit: {r}")
    finally:
        rt.fn = real
    check(call(rt, {"sku": "SKU-0042", "qty": 1})["ok"], "the runtime serves after all that")

    rt.reseed(b"\x01" * 64)
    a = random.random()
    random.seed(b"\x01" * 64)
    check(a == random.random(), "reseed seeds the random module from the entropy")
    rt.reseed(b"\x02" * 64)
    check(random.random() != a, "other entropy, other numbers")
    check(sprout_shim.clone_info() is None, "clone_info() is None outside a guest")

    rt.prime(rt.module.SAMPLE_EVENTS, rounds=2)
    check(rt.stdout.getvalue() == "" and rt.stderr.getvalue() == "" and rt.fn is real,
          "priming leaves the runtime as it found it")


def run_chroot(root, argv, env):
    def enter():
        os.chroot(root)
        os.chdir("/")
    return subprocess.run(argv, env=env, preexec_fn=enter, capture_output=True, text=True)


def test_rootfs(src_dir, label):
    """The staged rootfs alone runs the handler: imports, priming (--trace), one call (--once)."""
    image = json.load(open(os.path.join(src_dir, "image.json")))
    argv, env = image["handler"]["argv"], image["handler"]["env"]
    check(argv[0].startswith("/usr/bin/python3") and "-B" in argv and
          env.get("PYTHONDONTWRITEBYTECODE") == "1", f"{label}: the handler's command line")
    with tempfile.TemporaryDirectory(prefix="sprout-pyroot-") as tmp:
        root = os.path.join(tmp, "root")
        shutil.copytree(os.path.join(src_dir, "rootfs"), root, symlinks=True)
        try:
            r = run_chroot(root, argv + ["--trace", "/trace.json"], env)
        except PermissionError as e:
            check(False, f"{label}: chroot needs root (CAP_SYS_CHROOT): {e}")
            return
        check(r.returncode == 0, f"{label}: the staged rootfs imports and primes the handler "
                                 f"under chroot: {r.stdout}{r.stderr}")
        if r.returncode == 0:
            mods = json.load(open(os.path.join(root, "trace.json")))["modules"]
            check("handler" in mods and "_ssl" not in mods and "ssl" not in mods,
                  f"{label}: the handler loaded, ssl left out")
        r = run_chroot(root, argv + ["--once", '{"sku":"SKU-0042","qty":3}'], env)
        check(r.returncode == 0 and '"total":"538.71"' in r.stdout,
              f"{label}: one call under chroot: {r.stdout}{r.stderr}")
        written = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                   if f.endswith(".pyc") and os.path.getmtime(os.path.join(d, f)) > image_time(src_dir)]
        check(not written, f"{label}: the interpreter wrote no bytecode: {written[:3]}")
        pycs = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".pyc")]
        flags = {open(p, "rb").read(8)[4:8] for p in pycs}
        check(len(pycs) > 50 and flags == {b"\x01\x00\x00\x00"},
              f"{label}: {len(pycs)} pycs, all unchecked-hash: {flags}")


def image_time(src_dir):
    return os.path.getmtime(os.path.join(src_dir, "image.json"))


def main():
    shim_dir, handler, mkimage, ext, src_dir = sys.argv[1:6]
    test_runtime(shim_dir, handler)
    test_rootfs(src_dir, "the built image")
    with tempfile.TemporaryDirectory(prefix="sprout-pyimg-") as tmp:
        out = os.path.join(tmp, "src")
        r = subprocess.run([sys.executable, mkimage, "--name", "t", "--handler", handler, "--shim",
                            os.path.join(shim_dir, "sprout_shim.py"), "--ext", ext, "--out", out,
                            "--exclude", "ssl", "--no-stdlib-source"], capture_output=True, text=True)
        check(r.returncode == 0, f"mkimage --no-stdlib-source: {r.stdout}{r.stderr}")
        if r.returncode == 0:
            stdlib = os.path.join(out, "rootfs/usr/lib/python3.11")
            check(not os.path.exists(os.path.join(stdlib, "json/__init__.py")) and
                  os.path.exists(os.path.join(stdlib, "json/__init__.pyc")),
                  "sourceless: json as json/__init__.pyc only")
            test_rootfs(out, "a sourceless standard library")
    return finish()


if __name__ == "__main__":
    sys.exit(main())
