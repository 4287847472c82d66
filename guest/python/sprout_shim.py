"""sprout's Python runtime shim: the handler process of a Python image (docs/python.md).

It imports the user's handler module (its module-level initialization runs before READY), primes
itself by serving sample events through the whole request path, makes every page a request can
touch present, rings READY, and then serves: request JSON in, handler(event) called, JSON out.
The device is reached through the _sprout extension and the guest library, from user mode, so a
request needs no guest system call.

    python3.11 -s -S -B -c 'import sprout_shim; sprout_shim.main()' HANDLER.py [options]
      --function NAME   the callable in the handler module (default "handler")
      --samples FILE    a JSON list of events to prime with (default: the module's SAMPLE_EVENTS)
      --once EVENT      host only: load the handler, call it once, print the response, exit
      --trace FILE      host only: load and prime as in the guest, then write the modules loaded
                        (the image recipe ships exactly those; guest/python/mkimage.py)

Responses are JSON objects:
    {"ok": true, "result": R}
    {"ok": false, "error": {"type": T, "message": M, "traceback": TB}}
plus "stdout" / "stderr" (what the handler wrote to sys.stdout / sys.stderr during the call) when
not empty. A stream longer than OUTPUT_MAX characters is cut to its first OUTPUT_MAX characters in
the response, and "stdout_logged" / "stderr_logged" gives its full length. Everything the handler
wrote, both streams in the order it wrote them, also goes to the clone's log (LOG rings) after the
call, so nothing is lost and the log reads as the handler printed it (GET /v1/clones/{id}/log,
?log=true on an invocation).
"""

import gc
import importlib
import io
import json
import linecache
import os
import random
import sys
import time
import traceback

OUTPUT_MAX = 64 * 1024  # characters of each stream kept in a response
RESPONSE_MAX = 0x7F000  # the mailbox response area (SPROUT_MB_RESP_SIZE); _sprout says so too
PRIME_ROUNDS = 5  # passes over the samples: enough for every cache and free list to settle
HEAP_WARM = 2 << 20  # touched, free C heap kept for a clone's allocations (each MiB: ~1 s of boot)
STACK_WARM = 256 << 10  # stack faulted in below the serving loop


_device = None  # the _sprout module once the device is open (in a guest)


def clone_info():
    """For handlers: this clone's id and what applying its identity cost, from the guest library:
    {"clone": uuid, "identities": n, "syscalls": n, "ns": n, "clock_step_ns": n, "warmups": n}.
    None outside a
    sprout guest (on the host, or before the device is open)."""
    return _device.identity() if _device is not None else None


def _pin_linecache():
    """Tracebacks read source lines through linecache, which stat()s each file on every error
    (checkcache) unless the entry's mtime is None. Sources in an image never change: pin them."""
    for name, entry in list(linecache.cache.items()):
        if len(entry) == 4 and entry[1] is not None:
            linecache.cache[name] = (entry[0], None, entry[2], entry[3])


class _Tee(io.TextIOBase):
    """A handler's sys.stdout or sys.stderr during a call: its own stream for the response, and
    the call's output in the order it was written, for the log."""

    def __init__(self, own, both):
        super().__init__()
        self.own, self.both = own, both

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.own.write(text)
        self.both.write(text)
        return len(text)


class Runtime:
    """The request path, without the device: invoke(request bytes) -> response bytes."""

    def __init__(self, handler_path, function="handler", log=None):
        self.log = log or (lambda text: sys.stderr.write(text))
        path = os.path.abspath(handler_path)
        directory, filename = os.path.split(path)
        if not filename.endswith(".py"):
            raise ValueError(f"the handler must be a .py file: {handler_path}")
        sys.path.insert(0, directory)
        # A normal import, so the precompiled __pycache__ entry is used: the handler's
        # module-level initialization runs here, before READY.
        self.module = importlib.import_module(filename[:-3])
        self.fn = getattr(self.module, function)
        if not callable(self.fn):
            raise TypeError(f"{handler_path}: {function} is not callable")
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.output = io.StringIO()  # both streams, in order: the call's log
        self.tee_out = _Tee(self.stdout, self.output)
        self.tee_err = _Tee(self.stderr, self.output)
        self.encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
        self.output_max = OUTPUT_MAX
        self.warm_request = None  # the request a warm-up serves (set by prime)

    # ---- serving ----

    def invoke(self, request):
        try:
            event = json.loads(request)
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
            return self._encode({"ok": False, "error": {
                "type": "BadRequest", "message": f"the request is not JSON: {e}"}})
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self.tee_out, self.tee_err
        try:
            resp = {"ok": True, "result": self.fn(event)}
        except BaseException as e:  # SystemExit too: a handler never ends the runtime
            resp = {"ok": False, "error": self._error(e)}
        finally:
            sys.stdout, sys.stderr = saved
        self._take_output(resp)
        return self._encode(resp)

    def _error(self, e):
        tb = e.__traceback__
        if tb is not None and tb.tb_frame.f_code is Runtime.invoke.__code__:
            tb = tb.tb_next  # our own frame says nothing about the handler
        try:
            message = str(e)
        except BaseException:
            message = f"<unprintable {type(e).__name__}>"
        try:
            text = "".join(traceback.format_exception(type(e), e, tb))
        except BaseException as fe:
            text = f"<traceback unavailable: {type(fe).__name__}>"
        _pin_linecache()
        kind = type(e)
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        return {"type": name, "message": message, "traceback": text}

    def _take_output(self, resp):
        both = self.output.getvalue()
        if not both:
            return
        self.output.seek(0)
        self.output.truncate()
        self.log(both)
        for name, buf in (("stdout", self.stdout), ("stderr", self.stderr)):
            text = buf.getvalue()
            if not text:
                continue
            buf.seek(0)
            buf.truncate()
            if len(text) > self.output_max:
                resp[name + "_logged"] = len(text)
                text = text[:self.output_max]
            resp[name] = text

    def _encode(self, resp):
        try:
            data = self.encoder.encode(resp).encode()
        except (TypeError, ValueError, RecursionError) as e:
            err = self._error(e)
            err["message"] = f"the handler's result is not JSON: {err['message']}"
            resp = {k: v for k, v in resp.items() if k != "result"}
            resp["ok"], resp["error"] = False, err
            data = self.encoder.encode(resp).encode()
        if len(data) <= RESPONSE_MAX:
            return data
        # Too big for the mailbox: the output is in the log already; say how much.
        small = {"ok": False, "error": {
            "type": "ResponseTooLarge",
            "message": f"the response is {len(data)} bytes; the response area holds {RESPONSE_MAX}",
            "traceback": ""}}
        for name in ("stdout", "stderr"):
            if name in resp:
                small[name + "_logged"] = resp.get(name + "_logged", len(resp[name]))
        return self.encoder.encode(small).encode()

    # ---- identity ----

    def reseed(self, entropy):
        """Called by the guest library when a clone first runs, with the host's fresh bytes: the
        random module was seeded at import, before the snapshot, identically in every clone."""
        random.seed(entropy)
        tempfile = sys.modules.get("tempfile")
        if tempfile is not None:
            tempfile._name_sequence = None  # its own Random, made again on next use
        # OpenSSL's generator was seeded before the snapshot too. Adding entropy reseeds its
        # primary DRBG, and OpenSSL 3's per-thread DRBGs reseed from it on their next use when
        # they see its reseed count move (a clone looks like no fork to OpenSSL: same pid).
        ssl = sys.modules.get("ssl")
        if ssl is not None:
            ssl.RAND_add(entropy, float(len(entropy)))
        # numpy's legacy global generator (np.random.rand and friends), where an image ships it.
        # Generators a handler made itself before the snapshot (np.random.default_rng()) stay
        # shared, as random.Random() objects do (docs/python.md).
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed([int.from_bytes(entropy[i:i + 4], "little")
                               for i in range(0, len(entropy) - 3, 4)])

    # ---- warm-up (ABI 1.3) ----

    def warmup(self):
        """Called by the guest library for a warm-up request, in a fresh clone before its first real
        request: serve the first sample event through the whole request path with the response and
        any output discarded, so the interpreter's pages are this clone's before a request arrives.
        Sample events are side-effect free by contract (docs/python.md)."""
        if self.warm_request is None:
            return
        real_log = self.log
        try:
            self.log = lambda text: None
            self.invoke(self.warm_request)
        finally:
            self.log = real_log

    # ---- before READY ----

    def prime(self, samples, rounds=PRIME_ROUNDS):
        """Serve every path a request can take, several times, so the code, the caches (type
        attribute caches, specializing interpreter, linecache, json scanners) and the heap are
        warm when the snapshot is taken."""

        def fails():
            print("priming: stdout")
            print("priming: stderr", file=sys.stderr)
            raise RuntimeError("priming the error path")

        def unencodable():
            return {"value": object()}

        def chatty():
            print("z" * (self.output_max + 1))
            return None

        requests = [json.dumps(e).encode() for e in samples]
        self.warm_request = requests[0]
        quiet = []
        for _ in range(rounds):
            for r in requests:
                self.invoke(r)
            self.invoke(b"{not json")
            self.invoke(b'"\xff"')
            real_fn, real_log = self.fn, self.log
            try:
                self.log = quiet.append
                for fn in (fails, unencodable, chatty):
                    self.fn = fn
                    self.invoke(b"{}")
            finally:
                self.fn, self.log = real_fn, real_log
            quiet.clear()
            self.reseed(os.urandom(64))
        _pin_linecache()


def _parse(argv):
    opts = {"function": "handler", "samples": None, "once": None, "trace": None}
    rest = []
    it = iter(argv)
    for a in it:
        key = a[2:] if a.startswith("--") else None
        if key in opts:
            try:
                opts[key] = next(it)
            except StopIteration:
                raise SystemExit(f"sprout_shim: {a} needs a value") from None
        else:
            rest.append(a)
    if len(rest) != 1:
        raise SystemExit("usage: sprout_shim HANDLER.py [--function NAME] [--samples FILE] "
                         "[--once EVENT | --trace FILE]")
    return rest[0], opts


def _samples(opts, module):
    if opts["samples"]:
        with open(opts["samples"], encoding="utf-8") as f:
            samples = json.load(f)
    else:
        samples = getattr(module, "SAMPLE_EVENTS", [{}])
    if not isinstance(samples, list) or not samples:
        raise SystemExit("sprout_shim: the sample events must be a non-empty JSON list")
    return samples


def _write_trace(path):
    modules = {}
    for name, mod in sorted(sys.modules.items()):
        spec = getattr(mod, "__spec__", None)
        modules[name] = {"file": getattr(mod, "__file__", None),
                         "origin": getattr(spec, "origin", None)}
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"executable": sys.executable, "version": sys.version, "modules": modules}, f,
                  indent=1)


def _settle(device):
    """The last steps before READY: nothing left for a clone to collect, allocate or fault in.
    Returns what it did, for the boot log."""
    t0 = time.monotonic()
    gc.collect()
    gc.freeze()  # what exists now is never scanned again: a clone's collections stay small
    t1 = time.monotonic()
    device.warm_heap(HEAP_WARM)
    device.touch_stack(STACK_WARM)
    t2 = time.monotonic()
    rd, wr, how = device.populate()
    t3 = time.monotonic()
    return (f"gc {t1 - t0:.2f} s, {HEAP_WARM >> 20} MiB heap + {STACK_WARM >> 10} KiB stack "
            f"{t2 - t1:.2f} s, populated {rd >> 10} KiB read-only + {wr >> 10} KiB writable by "
            f"{how} {t3 - t2:.2f} s")


def main(argv=None):
    handler, opts = _parse(sys.argv[1:] if argv is None else argv)
    if opts["once"] is not None:
        # The host reference: process start, imports, one call. No priming.
        rt = Runtime(handler, opts["function"])
        sys.stdout.write(rt.invoke(opts["once"].encode()).decode() + "\n")
        return 0
    if opts["trace"] is not None:
        rt = Runtime(handler, opts["function"])
        rt.prime(_samples(opts, rt.module))
        _write_trace(opts["trace"])
        return 0

    global _device
    import _sprout

    # First: the device (READY must be possible) and the extension's heap settings, which apply
    # to every allocation from here on.
    _sprout.open()
    _device = _sprout
    global RESPONSE_MAX
    RESPONSE_MAX = _sprout.RESPONSE_MAX  # the ABI's, should this copy ever be stale
    t0 = time.monotonic()  # CLOCK_MONOTONIC: seconds since the guest booted
    rt = Runtime(handler, opts["function"], log=_sprout.log)
    t1 = time.monotonic()
    rt.prime(_samples(opts, rt.module))
    _sprout.on_identity(rt.reseed)
    _sprout.on_warmup(rt.warmup)
    t2 = time.monotonic()
    settled = _settle(_sprout)
    _sprout.log(f"sprout python: {handler} ready: shim running {t0:.2f} s after boot, handler "
                f"imported in {t1 - t0:.2f} s, primed in {t2 - t1:.2f} s; settling: {settled}")
    # In a clone, ready() returns with the clone's identity applied and the hook run; an error
    # there (the kernel RNG or the hook) propagates: a clone that cannot re-seed never serves.
    request = _sprout.ready()
    invoke, done = rt.invoke, _sprout.done
    while True:
        request = done(invoke(request))
