"""HTTP/1.1 over a Unix socket with http.client: a connection per thread, kept alive between
requests, replaced when the daemon closed it."""

from __future__ import annotations

import http.client
import select
import socket
import threading
from typing import Dict, List, Optional, Tuple

from .errors import DaemonUnreachable, ProtocolError, RequestTimeout


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection whose transport is an AF_UNIX stream socket at ``path``."""

    def __init__(self, path: str, timeout: Optional[float]):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self.path)
        except BaseException:
            s.close()
            raise
        self.sock = s


def _dropped(conn: UnixHTTPConnection) -> bool:
    """Whether the daemon closed (or wrote to) an idle kept-alive connection: readable at rest
    means EOF, so a request sent on it would be lost."""
    s = conn.sock
    if s is None:
        return True
    try:
        r, _, _ = select.select([s], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(r)


class Transport:
    """Sends requests on ``path``; safe to share between threads (each has its own connection)."""

    def __init__(self, path: str, timeout: Optional[float]):
        self.path = path
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: List[UnixHTTPConnection] = []

    def _conn(self) -> Tuple[UnixHTTPConnection, bool]:
        """This thread's connection and whether it has served a request before."""
        c = getattr(self._local, "conn", None)
        if c is not None and c.sock is not None and not _dropped(c):
            return c, True
        if c is not None:
            self._forget(c)
        c = UnixHTTPConnection(self.path, self.timeout)
        try:
            c.connect()
        except socket.timeout:
            raise RequestTimeout(self.timeout or 0, f"connect to {self.path}") from None
        except OSError as e:  # missing, refused, not a socket, no permission, path too long
            raise DaemonUnreachable(self.path, e.strerror or str(e)) from None
        self._local.conn = c
        with self._lock:
            self._all.append(c)
        return c, False

    def _forget(self, c: UnixHTTPConnection) -> None:
        c.close()
        if getattr(self._local, "conn", None) is c:
            self._local.conn = None
        with self._lock:
            if c in self._all:
                self._all.remove(c)

    def request(self, method: str, target: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None, timeout: Optional[float] = None,
                what: str = "") -> Tuple[int, Dict[str, str], bytes]:
        """One request; (status, headers with lowercase names, body). A GET that fails on a
        reused connection before any answer is sent again once on a new one (the daemon may have
        closed it in between); a POST or DELETE never is (it may have been acted upon)."""
        t = self.timeout if timeout is None else timeout
        what = what or f"{method} {target}"
        for attempt in (0, 1):
            c, reused = self._conn()
            c.timeout = t
            if c.sock is not None:
                c.sock.settimeout(t)
            try:
                c.request(method, target, body=body, headers=headers or {})
                r = c.getresponse()
                data = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if r.will_close:
                    self._forget(c)
                return r.status, hdrs, data
            except socket.timeout:
                self._forget(c)
                raise RequestTimeout(t or 0, what) from None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self._forget(c)
                if reused and attempt == 0 and method in ("GET", "HEAD"):
                    continue
                raise ProtocolError(None, f"{what}: the connection closed without an answer "
                                    f"({e.__class__.__name__})") from None
            except (http.client.HTTPException, OSError) as e:
                self._forget(c)
                raise ProtocolError(None, f"{what}: {e.__class__.__name__}: {e}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        self._local = threading.local()
