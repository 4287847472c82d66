"""The client: one method per route of the sproutd API (docs/api.md)."""

from __future__ import annotations

import json
import math
import os
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._transport import Transport
from .errors import BadRequest, PrewarmDeadline, PrewarmFailed, ProtocolError, SproutError, error_class
from .models import Clone, Health, Invocation, Snapshot

SOCKET_NAME = "sproutd.sock"


def default_socket_path() -> str:
    """Where sproutd listens when nobody says, as the daemon and the CLI decide it
    (``sprout_default_socket_path``): ``$SPROUT_SOCKET``, else the default state directory's
    ``sproutd.sock``: ``/var/lib/sprout`` for root, else ``$XDG_STATE_HOME/sprout`` (an absolute
    XDG_STATE_HOME only), else ``$HOME/.local/state/sprout``."""
    env = os.environ.get("SPROUT_SOCKET")
    if env:
        return env
    xdg, home = os.environ.get("XDG_STATE_HOME"), os.environ.get("HOME")
    if os.geteuid() == 0:
        state = "/var/lib/sprout"
    elif xdg and xdg.startswith("/"):
        state = f"{xdg}/sprout"
    elif home and home.startswith("/"):
        state = f"{home}/.local/state/sprout"
    else:
        raise ValueError("no sproutd socket: set SPROUT_SOCKET, XDG_STATE_HOME or HOME, or pass one")
    return f"{state}/{SOCKET_NAME}"


def _seconds(name: str, v: Any, allow_none: bool = True) -> Optional[float]:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(v).__name__}")
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {v!r}")
    return float(v)


def _flag(name: str, v: Any) -> Optional[bool]:
    if not isinstance(v, bool):
        raise TypeError(f"{name} must be a bool, not {type(v).__name__}")
    return True if v else None


_RESPONSE_KEY = b',"response":'


def _unwrap_log(data: bytes) -> Tuple[bytes, str, bool]:
    """The ?log=true envelope, {"log": L, "log_lost": B, "response": R} with R the guest's bytes
    spliced in as they came (or "response_text" when they are not JSON): R's bytes, L, B."""
    try:
        env = json.loads(data)
    except ValueError as e:
        raise ProtocolError(200, f"the answer is no log envelope: {e}") from None
    if not isinstance(env, dict) or not isinstance(env.get("log"), str):
        raise ProtocolError(200, "the answer is no log envelope")
    log, lost = env["log"], env.get("log_lost") is True
    if "response" not in env:
        text = env.get("response_text")
        return (text.encode() if isinstance(text, str) else b""), log, lost
    # The first top-level ',"response":' is the daemon's: a JSON string holds no bare quote.
    at = data.find(_RESPONSE_KEY)
    return data[at + len(_RESPONSE_KEY):data.rindex(b"}")], log, lost


def _timeout_ms(v: Any) -> Optional[int]:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"timeout_ms must be an integer number of milliseconds, not {type(v).__name__}")
    if v < 1:
        raise ValueError(f"timeout_ms must be at least 1, not {v}")
    return v


def _id(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{name} must be a str, not {type(v).__name__}")
    # The daemon judges ids (400 invalid_id); one that cannot be a single path segment would reach
    # another route, so it is refused here with the daemon's code (and no status: nothing was sent).
    if v in ("", ".", "..") or "/" in v:
        raise BadRequest(None, "invalid_id", f"{name} {v!r}: ids are lowercase UUIDs")
    return urllib.parse.quote(v, safe="")


def _event_body(event: Any) -> bytes:
    if isinstance(event, (bytes, bytearray, memoryview)):
        return bytes(event)
    return json.dumps(event, allow_nan=False, separators=(",", ":")).encode()


class Client:
    """A client of one sproutd. ``socket``: its path (default: default_socket_path());
    ``timeout``: seconds any call may wait for the daemon's answer (None: no limit; an invocation
    with ``timeout_ms`` waits that much longer). Safe to share between threads: each thread
    keeps its own connection."""

    def __init__(self, socket: Optional[str] = None, *, timeout: Optional[float] = 30.0):
        self.socket = socket if socket is not None else default_socket_path()
        if not isinstance(self.socket, str) or not self.socket:
            raise ValueError("socket must be a non-empty path")
        self.timeout = _seconds("timeout", timeout)
        self._t = Transport(self.socket, self.timeout)

    def __repr__(self) -> str:
        return f"Client(socket={self.socket!r}, timeout={self.timeout!r})"

    def close(self) -> None:
        """Closes the connections (a later call opens a new one)."""
        self._t.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------------

    def _call(self, method: str, path: str, query: Optional[Dict[str, Any]] = None,
              body: Optional[bytes] = None, timeout: Optional[float] = None
              ) -> Tuple[int, Dict[str, str], bytes]:
        target = path
        q = {k: ("true" if v is True else "false" if v is False else v)
             for k, v in (query or {}).items() if v is not None}
        if q:
            target += "?" + urllib.parse.urlencode(q)
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        status, hdrs, data = self._t.request(method, target, body=body, headers=headers,
                                             timeout=timeout)
        if not 200 <= status < 300:
            raise self._error(status, hdrs, data)
        return status, hdrs, data

    @staticmethod
    def _error(status: int, hdrs: Dict[str, str], data: bytes) -> SproutError:
        code, message, doc = f"http_{status}", "", None
        try:
            doc = json.loads(data)
            err = doc.get("error") if isinstance(doc, dict) else None
            if isinstance(err, dict):
                code = str(err.get("code") or code)
                message = str(err.get("message") or "")
        except ValueError:
            pass
        if not message:
            message = data.decode("utf-8", "replace").strip()[:500] or f"HTTP {status}"
        cls = error_class(status, code)
        return cls(status, code, message, body=doc if isinstance(doc, dict) else None,
                   clone_id=hdrs.get("sprout-clone") or None)

    def _json(self, method: str, path: str, query: Optional[Dict[str, Any]] = None,
              obj: Any = None) -> Any:
        body = None if obj is None else json.dumps(obj, allow_nan=False).encode()
        status, _, data = self._call(method, path, query, body)
        try:
            return json.loads(data)
        except ValueError:
            raise ProtocolError(status, f"{method} {path}: the answer is not JSON: "
                                f"{data[:200]!r}") from None

    @staticmethod
    def _list(doc: Any, key: str) -> List[Any]:
        v = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(v, list):
            raise ProtocolError(None, f"expected {{{key!r}: [...]}}, got {doc!r:.200}")
        return v

    # --- the daemon -----------------------------------------------------------------------------

    def health(self) -> Health:
        """GET /v1/health."""
        return Health.from_json(self._json("GET", "/v1/health"))

    def metrics(self) -> str:
        """GET /metrics: the Prometheus text."""
        return self._call("GET", "/metrics")[2].decode("utf-8", "replace")

    # --- snapshots ------------------------------------------------------------------------------

    def prewarm(self, image: str, *, wait: bool = True,
                progress: Optional[Callable[[Snapshot], Any]] = None,
                timeout_s: Optional[int] = None, zstd_level: Optional[int] = None,
                cmdline: Optional[str] = None, poll_s: float = 0.5,
                deadline_s: Optional[float] = None) -> Snapshot:
        """POST /v1/snapshots: boot ``image`` (an absolute path beneath one of the daemon's image
        roots, Health.image_roots) into a snapshot. With ``wait`` (the default) polls it every
        ``poll_s`` seconds, calls ``progress(snapshot)`` whenever its status or progress changes,
        and returns it ready; a failed prewarm raises PrewarmFailed (its error and console tail),
        and giving up after ``deadline_s`` raises PrewarmDeadline (the prewarm goes on). Without
        ``wait``, returns the queued snapshot at once. ``timeout_s``, ``zstd_level``,
        ``cmdline``: the request's fields (the daemon's defaults when None)."""
        if not isinstance(image, str):
            raise TypeError(f"image must be a str path, not {type(image).__name__}")
        poll_s = _seconds("poll_s", poll_s, allow_none=False)
        deadline_s = _seconds("deadline_s", deadline_s)
        req: Dict[str, Any] = {"image": image}
        for k, v in (("cmdline", cmdline), ("timeout_s", timeout_s), ("zstd_level", zstd_level)):
            if v is not None:
                req[k] = v
        snap = Snapshot.from_json(self._json("POST", "/v1/snapshots", obj=req))
        if not wait:
            return snap
        return self._wait(snap, progress, poll_s, deadline_s)

    def wait_snapshot(self, snapshot_id: str, *,
                      progress: Optional[Callable[[Snapshot], Any]] = None,
                      poll_s: float = 0.5, deadline_s: Optional[float] = None) -> Snapshot:
        """Polls a snapshot until it is ready (returned) or failed (PrewarmFailed), as prewarm()
        does: for a prewarm started with ``wait=False`` or by someone else (``sprout deploy``)."""
        poll_s = _seconds("poll_s", poll_s, allow_none=False)
        deadline_s = _seconds("deadline_s", deadline_s)
        return self._wait(self.snapshot(snapshot_id), progress, poll_s, deadline_s)

    def _wait(self, snap: Snapshot, progress, poll_s: float, deadline_s: Optional[float]) -> Snapshot:
        start, seen = time.monotonic(), None
        while True:
            now = (snap.status, snap.progress)
            if progress is not None and now != seen:
                progress(snap)
            seen = now
            if snap.ready:
                return snap
            if snap.failed:
                raise PrewarmFailed(snap)
            pause = poll_s
            if deadline_s is not None:
                left = deadline_s - (time.monotonic() - start)
                if left <= 0:
                    raise PrewarmDeadline(snap, deadline_s)
                pause = min(pause, left)
            time.sleep(pause)
            snap = self.snapshot(snap.id)

    def snapshots(self) -> List[Snapshot]:
        """GET /v1/snapshots, oldest first."""
        return [Snapshot.from_json(o) for o in self._list(self._json("GET", "/v1/snapshots"),
                                                          "snapshots")]

    def snapshot(self, snapshot_id: str) -> Snapshot:
        """GET /v1/snapshots/{id}."""
        return Snapshot.from_json(self._json("GET", f"/v1/snapshots/{_id('snapshot_id', snapshot_id)}"))

    def delete_snapshot(self, snapshot_id: str, force: bool = False) -> Dict[str, Any]:
        """DELETE /v1/snapshots/{id}: ``{"deleted": id, "clones_destroyed": n}``. A snapshot with
        clones made by clone() is refused (Conflict snapshot_in_use) unless ``force``, which
        destroys them."""
        return self._json("DELETE", f"/v1/snapshots/{_id('snapshot_id', snapshot_id)}",
                          {"force": True} if force else None)

    # --- invocations ----------------------------------------------------------------------------

    def _invoke(self, path: str, event: Any, query: Dict[str, Any]) -> Invocation:
        ms = query.get("timeout_ms")
        t = None if self.timeout is None or ms is None else self.timeout + ms / 1000.0
        _, hdrs, data = self._call("POST", path, query, _event_body(event), timeout=t)
        log, log_lost = None, False
        if query.get("log"):
            data, log, log_lost = _unwrap_log(data)
        try:
            response: Any = json.loads(data)
        except ValueError:
            response = data
        invoke_ms = hdrs.get("sprout-invoke-ms")
        try:
            invoke_ms_f = float(invoke_ms) if invoke_ms is not None else None
        except ValueError:
            invoke_ms_f = None
        return Invocation(response=response, raw=data, clone_id=hdrs.get("sprout-clone") or None,
                          invoke_ms=invoke_ms_f, log=log, log_lost=log_lost)

    def invoke(self, snapshot_id: str, event: Any, *, reuse: bool = False,
               timeout_ms: Optional[int] = None, log: bool = False) -> Invocation:
        """POST /v1/snapshots/{id}/invoke, the one-shot call: a fresh clone of the snapshot (or,
        with ``reuse``, an idle pooled one that keeps earlier calls' state) answers ``event``
        (any JSON value; bytes are sent as they are and must be JSON). ``timeout_ms``: the
        guest's time limit (the daemon's default when None). With ``log``, the result's ``log``
        holds what the call wrote to the clone's log (its handler's output)."""
        return self._invoke(f"/v1/snapshots/{_id('snapshot_id', snapshot_id)}/invoke", event,
                            {"reuse": True if reuse else None, "timeout_ms": _timeout_ms(timeout_ms),
                             "log": _flag("log", log)})

    # --- clones ---------------------------------------------------------------------------------

    def clone(self, snapshot_id: str, n: int = 1) -> List[Clone]:
        """POST /v1/clones: ``n`` (1..256) long-lived clones of a ready snapshot, all or none."""
        if not isinstance(snapshot_id, str):
            raise TypeError(f"snapshot_id must be a str, not {type(snapshot_id).__name__}")
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        doc = self._json("POST", "/v1/clones", obj={"snapshot": snapshot_id, "count": n})
        return [Clone.from_json(o) for o in self._list(doc, "clones")]

    def clones(self, snapshot: Optional[str] = None) -> List[Clone]:
        """GET /v1/clones, oldest first; only ``snapshot``'s when given."""
        if snapshot is not None and not isinstance(snapshot, str):
            raise TypeError(f"snapshot must be a str, not {type(snapshot).__name__}")
        doc = self._json("GET", "/v1/clones", {"snapshot": snapshot})
        return [Clone.from_json(o) for o in self._list(doc, "clones")]

    def clone_info(self, clone_id: str) -> Clone:
        """GET /v1/clones/{id}."""
        return Clone.from_json(self._json("GET", f"/v1/clones/{_id('clone_id', clone_id)}"))

    def invoke_clone(self, clone_id: str, event: Any, *, timeout_ms: Optional[int] = None,
                     log: bool = False) -> Invocation:
        """POST /v1/clones/{id}/invoke: one request on that clone (its state carries over between
        requests). A guest that fails (GuestError) or does not answer in time (InvokeTimeout)
        leaves the clone dead. ``log`` as for invoke()."""
        return self._invoke(f"/v1/clones/{_id('clone_id', clone_id)}/invoke", event,
                            {"timeout_ms": _timeout_ms(timeout_ms), "log": _flag("log", log)})

    def log(self, clone_id: str) -> str:
        """GET /v1/clones/{id}/log: the clone's console and its handler's output, oldest first
        (escaped by the daemon; bounded by its console ring)."""
        _, _, data = self._call("GET", f"/v1/clones/{_id('clone_id', clone_id)}/log")
        return data.decode("utf-8", "replace")

    def delete_clone(self, clone_id: str) -> Dict[str, Any]:
        """DELETE /v1/clones/{id}: ``{"deleted": id}``."""
        return self._json("DELETE", f"/v1/clones/{_id('clone_id', clone_id)}")
