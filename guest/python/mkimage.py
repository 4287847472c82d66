"""The Python image recipe: stages a rootfs with Debian's python3 and exactly what a handler needs,
and writes the image.json that `sprout build` turns into an image (docs/python.md).

    /usr/bin/python3.11 mkimage.py --name NAME --handler DIR/handler.py --shim sprout_shim.py \
        --ext _sprout.cpython-311-x86_64-linux-gnu.so --out SRC_DIR [options]
    /usr/bin/python3.11 mkimage.py --function-dir DIR --shim ... --ext ... --out SRC_DIR

A function directory (what `sprout build DIR` takes) holds handler.py and optionally function.json,
whose keys stand for the options: {"name", "entry", "memory_mib", "samples" (a list of events),
"env" (an object of strings), "exclude" (a list of modules)}; unknown keys are refused.

What goes in, and how it is found:
  - the interpreter running this script (it must be Debian's, under /usr/bin: the .pyc files are
    compiled by it, so they match it) and the Python modules the handler loads, from the standard
    library, the handler's own directory, or Debian's python3-* packages (DIST): found by running
    the shim on this host in --trace mode, exactly as the guest will run it (same flags, same
    environment), which imports the handler, primes it and writes sys.modules;
  - the shared libraries the interpreter and those extension modules load: found with ldd;
  - every .py with a .pyc next to it in __pycache__, compiled here as "unchecked-hash" pycs, so the
    guest never compiles, never writes bytecode and never compares timestamps.
It writes SRC_DIR/rootfs/, SRC_DIR/image.json and SRC_DIR/contents.txt (every shipped file, with
its size and why it is there). Run `sprout build SRC_DIR -o IMAGE_DIR` next.
"""

import argparse
import importlib.util
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile

GUEST_APP = "/app"  # the handler's directory in the guest
GUEST_SHIM = "/opt/sprout/python"  # the shim and the _sprout extension
GUEST_PATH = "/usr/bin:/bin"
# Where Debian's python3-* packages put their modules; the guest gets the same path.
DIST = "/usr/lib/python3/dist-packages"
# Flags of the guest's interpreter: no site (no site-packages, fewer imports), no user site, no
# bytecode writing (the initramfs is read-only in spirit, and the pycs are already there).
PY_FLAGS = ["-s", "-S", "-B"]
BOOT = "import sprout_shim; sprout_shim.main()"

# During the trace, modules the recipe was told to leave out fail to import, as they will in the
# guest; what the handler's imports then load without them is what the trace records.
BLOCKER = """
import sys
class _Blocked:
    def __init__(self, names): self.names = names
    def find_spec(self, name, path=None, target=None):
        if name in self.names or name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r} (left out of the image)", name=name)
        return None
sys.meta_path.insert(0, _Blocked(set(sys.argv.pop(1).split(",")) - {""}))
"""


def die(msg):
    sys.exit(f"mkimage: {msg}")


class Stage:
    """The rootfs being assembled: guest path -> (host source, reason)."""

    def __init__(self, root):
        self.root = root
        self.files = {}
        self.links = {}

    def host(self, guest):
        return os.path.join(self.root, guest.lstrip("/"))

    def add_file(self, guest, src, why):
        if guest in self.files:
            return
        dst = self.host(guest)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)  # mtime kept: it is what a timestamp pyc would be checked against
        self.files[guest] = (os.path.getsize(dst), why)

    def add_pyc(self, guest_py, src_py, why, sourceless=False):
        """Compile src_py into guest_py's __pycache__ entry (or, sourceless, into guest_py + "c",
        the only place Python imports a .pyc from when the .py is absent), recording guest_py as
        its file name (what tracebacks show)."""
        guest_pyc = guest_py + "c" if sourceless else importlib.util.cache_from_source(guest_py)
        dst = self.host(guest_pyc)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        py_compile.compile(src_py, cfile=dst, dfile=guest_py, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        self.files[guest_pyc] = (os.path.getsize(dst), why)

    def add_symlink(self, guest, target):
        dst = self.host(guest)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst):
            return
        os.symlink(target, dst)
        self.links[guest] = target


def canonical_dir(path):
    """path with its directory resolved (merged /usr: /lib/x -> /usr/lib/x) but its last
    component kept, so a library's symlink chain can be rebuilt link by link."""
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def add_host_file(stage, path, why):
    """Ship a host file at its own (directory-resolved) path, with every symlink on the way."""
    path = canonical_dir(path)
    seen = set()
    while os.path.islink(path) and path not in seen:
        seen.add(path)
        target = os.readlink(path)
        stage.add_symlink(path, target)
        path = canonical_dir(os.path.join(os.path.dirname(path), target))
    stage.add_file(path, path, why)


LDD_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")


def ldd(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True)
    if out.returncode != 0:
        if "not a dynamic executable" in out.stdout + out.stderr:
            return []
        die(f"ldd {path}: {out.stderr.strip() or out.stdout.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        if "not found" in line:
            die(f"ldd {path}: {line.strip()}")
        if "statically linked" in line or "linux-vdso" in line:
            continue
        m = LDD_LINE.match(line)
        if not m:
            die(f"ldd {path}: cannot read the line {line.strip()!r}")
        libs.append(m.group(1))
    return libs


def guest_env(extra, dist=False):
    env = {"PATH": GUEST_PATH, "HOME": "/", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": GUEST_SHIM + (":" + DIST if dist else "")}
    env.update(extra)
    return env


MISSING = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")


def explain_trace_failure(run, handler_dir):
    """A missing module is the common failure: name it and say where it could come from."""
    out = run.stdout + run.stderr
    m = MISSING.findall(out)
    if m and "(left out of the image)" not in out.splitlines()[-1]:
        top = m[-1].split(".")[0]
        die(f"the handler imports {m[-1]!r}, which is neither in {handler_dir} nor installed on "
            f"this host as a Debian package (try: apt-get install python3-{top.lower()}; "
            f"modules from pip or a venv are not shipped)\n{out}")
    die(f"tracing the handler on the host failed (exit {run.returncode}):\n{out}")


def trace(args, python, shim_dir, handler):
    """Run the shim in --trace mode the way the guest runs it; returns {module: file}."""
    with tempfile.TemporaryDirectory(prefix="sprout-pytrace-") as tmp:
        out = os.path.join(tmp, "modules.json")
        env = guest_env(args.env)
        # As the guest will see them: the shim, then Debian's python3-* packages (-S leaves
        # site-packages and pip's directories out).
        env["PYTHONPATH"] = shim_dir + ":" + DIST
        argv = [python, *PY_FLAGS, "-c", BLOCKER + BOOT, ",".join(args.exclude), handler,
                "--function", args.function, "--trace", out]
        if args.samples:
            argv += ["--samples", args.samples]
        run = subprocess.run(argv, env=env, cwd="/", capture_output=True, text=True)
        if run.returncode != 0:
            explain_trace_failure(run, os.path.dirname(handler))
        with open(out, encoding="utf-8") as f:
            data = json.load(f)
    if data["executable"] != python and os.path.realpath(data["executable"]) != python:
        die(f"the trace ran {data['executable']}, not {python}")
    return data["modules"]


FUNCTION_KEYS = {"name": str, "entry": str, "memory_mib": int, "samples": list, "env": dict,
                 "exclude": list}
NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")


def load_function_dir(args):
    """--function-dir DIR: handler.py and an optional function.json stand for the options."""
    d = os.path.realpath(args.function_dir)
    args.handler = os.path.join(d, "handler.py")
    if not os.path.isfile(args.handler):
        die(f"{d} has no handler.py (a function directory holds handler.py and, optionally, "
            "function.json)")
    spec = {}
    path = os.path.join(d, "function.json")
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                spec = json.load(f)
        except (OSError, ValueError) as e:
            die(f"{path}: {e}")
        if not isinstance(spec, dict):
            die(f"{path}: the top level must be a JSON object")
    for k, v in spec.items():
        if k not in FUNCTION_KEYS:
            die(f"{path}: unknown key {k!r} (known: {', '.join(sorted(FUNCTION_KEYS))})")
        if not isinstance(v, FUNCTION_KEYS[k]) or isinstance(v, bool):
            die(f"{path}: {k!r} must be a {FUNCTION_KEYS[k].__name__}")
    args.name = spec.get("name", args.name or os.path.basename(d))
    if not NAME.match(args.name) or args.name.startswith("."):
        die(f"{args.name!r} is not an image name (letters, digits, . _ -; at most 64)")
    args.function = spec.get("entry", args.function)
    if not args.function.isidentifier():
        die(f"{path}: 'entry' must be a Python function name")
    if "memory_mib" in spec:
        args.memory_mib = spec["memory_mib"]
    if not 32 <= args.memory_mib <= 3072:
        die(f"{path}: 'memory_mib' must be 32..3072")
    env = spec.get("env", {})
    if not all(isinstance(k, str) and isinstance(v, str) and "=" not in k for k, v in env.items()):
        die(f"{path}: 'env' must map names to strings")
    args.env.update(env)
    excl = spec.get("exclude", [])
    if not all(isinstance(m, str) and m for m in excl):
        die(f"{path}: 'exclude' must be a list of module names")
    args.exclude += excl
    if "samples" in spec:
        if not spec["samples"]:
            die(f"{path}: 'samples' must be a non-empty list of events")
        # Written beside the staged image; main() ships it as /app/samples.json.
        args.samples_inline = spec["samples"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name")
    ap.add_argument("--handler", help="the handler module (a .py file)")
    ap.add_argument("--function-dir", help="a function directory: handler.py [+ function.json]")
    ap.add_argument("--function", default="handler")
    ap.add_argument("--samples", help="a JSON list of priming events (default: SAMPLE_EVENTS)")
    ap.add_argument("--shim", required=True, help="sprout_shim.py")
    ap.add_argument("--ext", required=True, help="the built _sprout extension module")
    ap.add_argument("--out", required=True, help="the image source directory to (re)create")
    ap.add_argument("--memory-mib", type=int, default=256)
    ap.add_argument("--cmdline", default="")
    ap.add_argument("--exclude", default="", type=lambda s: [m for m in s.split(",") if m],
                    help="modules to leave out (comma-separated); imports of them fail")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra handler environment")
    ap.add_argument("--file", action="append", default=[], metavar="GUEST=HOST",
                    help="an extra file for the image (data the handler reads)")
    ap.add_argument("--no-stdlib-source", action="store_true",
                    help="ship the standard library as .pyc only, in the sourceless layout "
                         "(2.2 MiB less for the example: ~3.5 s less boot on a PVM host; "
                         "tracebacks through the standard library then show no source lines)")
    args = ap.parse_args()
    args.env = dict(e.split("=", 1) for e in args.env)
    args.samples_inline = None
    if args.function_dir:
        load_function_dir(args)
    elif not args.handler or not args.name:
        die("give --handler and --name, or --function-dir")

    python = os.path.realpath(sys.executable)
    if not python.startswith("/usr/bin/"):
        die(f"run this with Debian's interpreter (/usr/bin/python3.X), not {python}: the image "
            "ships the interpreter running the recipe")
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    dynload = os.path.realpath(sysconfig.get_paths()["platstdlib"]) + "/lib-dynload"
    handler = os.path.realpath(args.handler)
    handler_dir = os.path.dirname(handler)
    shim = os.path.realpath(args.shim)
    shim_dir = os.path.dirname(shim)
    if os.path.basename(shim) != "sprout_shim.py":
        die(f"--shim must name sprout_shim.py, not {args.shim}")
    ext = os.path.realpath(args.ext)
    if not os.path.basename(ext).startswith("_sprout.") or not ext.endswith(
            sysconfig.get_config_var("EXT_SUFFIX")):
        die(f"--ext {args.ext} is not a _sprout{sysconfig.get_config_var('EXT_SUFFIX')}")

    tmp_samples = None
    if args.samples_inline is not None:
        tmp_samples = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="sprout-samples-",
                                                  delete=False, encoding="utf-8")
        json.dump(args.samples_inline, tmp_samples)
        tmp_samples.close()
        args.samples = tmp_samples.name
    try:
        build(args, python, stdlib, handler, handler_dir, shim, shim_dir, ext)
    finally:
        if tmp_samples:
            os.unlink(tmp_samples.name)


def build(args, python, stdlib, handler, handler_dir, shim, shim_dir, ext):
    modules = trace(args, python, shim_dir, handler)

    if os.path.lexists(args.out):
        # Only ever replace what this recipe made: it leaves contents.txt behind.
        if not os.path.isdir(args.out) or (os.listdir(args.out) and not os.path.exists(
                os.path.join(args.out, "contents.txt"))):
            die(f"{args.out} exists and is not an image source this recipe made; not replacing it")
        shutil.rmtree(args.out)
    stage = Stage(os.path.join(args.out, "rootfs"))
    # Debian's merged /usr, so the paths ldd prints and the kernel's unpacker agree.
    for d in ("bin", "lib", "lib64", "sbin"):
        stage.add_symlink("/" + d, "usr/" + d)

    elves = [python]
    add_host_file(stage, python, "the interpreter")
    stage.add_symlink("/usr/bin/python3", os.path.basename(python))
    # getpath's landmark for the standard library (os.py, or os.pyc): os itself is frozen into the
    # interpreter, so the trace does not list it.
    modules.setdefault("os", {"file": stdlib + "/os.py", "origin": stdlib + "/os.py"})
    if modules["os"]["origin"] == "frozen":
        modules["os"] = {"file": stdlib + "/os.py", "origin": "landmark"}

    dist = os.path.realpath(DIST)
    uses_dist = False
    for name, m in sorted(modules.items()):
        f, origin = m["file"], m["origin"]
        if origin in (None, "built-in", "frozen") or f is None:
            continue  # in the interpreter binary (or a typing alias without a file)
        f = os.path.realpath(f)
        if f == shim or name == "__main__":
            continue
        if f.startswith(stdlib + "/"):
            guest = f
        elif f.startswith(handler_dir + "/"):
            guest = GUEST_APP + f[len(handler_dir):]
        elif f.startswith(dist + "/"):
            guest = DIST + f[len(dist):]
            uses_dist = True
        else:
            die(f"module {name} comes from {f}: neither the standard library ({stdlib}), the "
                f"handler's directory ({handler_dir}) nor Debian's packages ({DIST}); -S leaves "
                "site-packages out")
        if f.endswith(".py"):
            sourceless = args.no_stdlib_source and f.startswith(stdlib + "/")
            if not sourceless:
                stage.add_file(guest, f, f"module {name}")
            stage.add_pyc(guest, f, f"module {name}", sourceless)
        elif f.endswith(".so"):
            stage.add_file(guest, f, f"module {name}")
            elves.append(f)
        else:
            die(f"module {name}: do not know how to ship {f}")

    stage.add_file(GUEST_SHIM + "/sprout_shim.py", shim, "the runtime shim")
    stage.add_pyc(GUEST_SHIM + "/sprout_shim.py", shim, "the runtime shim")
    stage.add_file(GUEST_SHIM + "/" + os.path.basename(ext), ext, "the device extension")
    elves.append(ext)
    if args.samples:
        stage.add_file(GUEST_APP + "/samples.json", args.samples, "priming events")

    for elf in elves:
        for lib in ldd(elf):
            add_host_file(stage, lib, f"loaded by {os.path.basename(elf)}")

    guest_handler = GUEST_APP + "/" + os.path.basename(handler)
    argv = [python, *PY_FLAGS, "-c", BOOT, guest_handler, "--function", args.function]
    if args.samples:
        argv += ["--samples", GUEST_APP + "/samples.json"]
    files = {}
    for spec in args.file:
        g, h = spec.split("=", 1)
        files[g] = os.path.realpath(h)
    image = {
        "name": args.name,
        "kernel": "default",
        "memory_mib": args.memory_mib,
        "cmdline": args.cmdline,
        "handler": {"argv": argv, "env": guest_env(args.env, uses_dist)},
        "rootfs": "rootfs",
        "files": files,
    }
    with open(os.path.join(args.out, "image.json"), "w", encoding="utf-8") as f:
        json.dump(image, f, indent=2)
        f.write("\n")

    total = sum(size for size, _ in stage.files.values())
    with open(os.path.join(args.out, "contents.txt"), "w", encoding="utf-8") as f:
        for g in sorted(stage.files):
            f.write(f"{stage.files[g][0]:>9} {g}  ({stage.files[g][1]})\n")
        for g in sorted(stage.links):
            f.write(f"{'->':>9} {g} -> {stage.links[g]}\n")
        f.write(f"{total:>9} total in {len(stage.files)} files\n")
    nmods = sum(1 for g in stage.files if g.endswith(".pyc"))
    print(f"mkimage: {args.name}: {len(stage.files)} files, {total / 2**20:.1f} MiB "
          f"({nmods} modules precompiled) in {args.out}")


if __name__ == "__main__":
    main()
