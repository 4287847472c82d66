"""The Python image recipe: stages a rootfs with Debian's python3 and exactly what a handler needs,
and writes the image.json that `sprout build` turns into an image (docs/python.md).

    /usr/bin/python3.11 mkimage.py --name NAME --handler DIR/handler.py --shim sprout_shim.py \
        --ext _sprout.cpython-311-x86_64-linux-gnu.so --out SRC_DIR [options]

What goes in, and how it is found:
  - the interpreter running this script (it must be Debian's, under /usr/bin: the .pyc files are
    compiled by it, so they match it) and the Python modules the handler loads: found by running
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


def guest_env(extra):
    env = {"PATH": GUEST_PATH, "HOME": "/", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": GUEST_SHIM}
    env.update(extra)
    return env


def trace(args, python, shim_dir, handler):
    """Run the shim in --trace mode the way the guest runs it; returns {module: file}."""
    with tempfile.TemporaryDirectory(prefix="sprout-pytrace-") as tmp:
        out = os.path.join(tmp, "modules.json")
        env = guest_env(args.env)
        env["PYTHONPATH"] = shim_dir
        argv = [python, *PY_FLAGS, "-c", BLOCKER + BOOT, ",".join(args.exclude), handler,
                "--function", args.function, "--trace", out]
        if args.samples:
            argv += ["--samples", args.samples]
        run = subprocess.run(argv, env=env, cwd="/", capture_output=True, text=True)
        if run.returncode != 0:
            die(f"tracing the handler on the host failed (exit {run.returncode}):\n"
                f"{run.stdout}{run.stderr}")
        with open(out, encoding="utf-8") as f:
            data = json.load(f)
    if data["executable"] != python and os.path.realpath(data["executable"]) != python:
        die(f"the trace ran {data['executable']}, not {python}")
    return data["modules"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--handler", required=True, help="the handler module (a .py file)")
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
        else:
            die(f"module {name} comes from {f}: neither the standard library ({stdlib}) nor the "
                f"handler's directory ({handler_dir}); -S leaves site-packages out")
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
        "handler": {"argv": argv, "env": guest_env(args.env)},
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
