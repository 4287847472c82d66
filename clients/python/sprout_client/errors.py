"""Exceptions: one class per class of API error code, all of them SproutError.

Every non-2xx answer of sproutd raises a SproutError whose ``code`` is the API's stable string
(``docs/api.md``, "Conventions"); catch the class for the kind of failure and look at ``code`` for
the exact one. Failures on the client's side (no daemon, no answer in time, an answer that is not
HTTP) are SproutErrors too, with ``status`` None and a code of their own, so one ``except
SproutError`` sees every failure of a call.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class SproutError(Exception):
    """A failed call. ``status``: the HTTP status (None when no answer came), ``code``: the API's
    error code, ``message``: the daemon's words, ``body``: the parsed error body, if any."""

    def __init__(self, status: Optional[int], code: str, message: str,
                 body: Optional[Dict[str, Any]] = None, clone_id: Optional[str] = None):
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        #: The clone that served a failed invocation (its Sprout-Clone header), when the daemon
        #: named one: after a 502 or 504 that clone is dead.
        self.clone_id = clone_id

    def __str__(self) -> str:
        where = f"{self.status} " if self.status is not None else ""
        return f"{where}{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status!r}, {self.code!r}, {self.message!r})"


class BadRequest(SproutError):
    """400 (invalid_json, invalid_request, unknown_field, missing_field, invalid_field, invalid_id)
    and the other refusals of what was sent: 405, 413 body_too_large, 415."""


class NotFound(SproutError):
    """404: snapshot_not_found, clone_not_found, not_found (no such route)."""


class Conflict(SproutError):
    """409: snapshot_not_ready, snapshot_in_use, snapshot_busy, snapshot_incompatible, clone_busy,
    clone_dead."""


class TooManyRequests(SproutError):
    """429: too_many_clones, queue_full, too_many_prewarms, too_many_connections, quota_exceeded
    (a per-tenant quota, named in the message). Retry later."""


class InternalError(SproutError):
    """500: internal, snapshot_load_failed, clone_failed."""


class GuestError(SproutError):
    """502 invoke_failed: the guest panicked, stopped or broke the protocol; the clone is dead.
    502 worker_died: the worker process holding the clone died; all of its clones are dead."""


class Unavailable(SproutError):
    """503: kvm_unavailable (the host has no usable KVM) or shutting_down (SIGTERM came)."""


class InvokeTimeout(SproutError):
    """504 invoke_timeout: the guest did not answer within timeout_ms; the clone is dead."""


class DaemonUnreachable(SproutError):
    """No daemon accepts on the socket (missing, refused, or not a socket): code
    ``daemon_unreachable``, status None. Nothing was sent."""

    def __init__(self, socket_path: str, reason: str):
        super().__init__(None, "daemon_unreachable", f"no sproutd answers on {socket_path}: {reason}")
        self.socket_path = socket_path


class RequestTimeout(SproutError):
    """The daemon did not answer within the client's timeout: code ``request_timeout``, status
    None. The request may have been sent and may still take effect (a prewarm started, a clone
    made, an invocation run)."""

    def __init__(self, timeout_s: float, what: str):
        super().__init__(None, "request_timeout", f"{what}: no answer in {timeout_s:g} s")
        self.timeout_s = timeout_s


class ProtocolError(SproutError):
    """The connection broke mid-answer, or the answer was not what the API promises: code
    ``bad_response``, status as received (None when there was none)."""

    def __init__(self, status: Optional[int], message: str):
        super().__init__(status, "bad_response", message)


class PrewarmFailed(SproutError):
    """The prewarm ended ``failed``: code ``prewarm_failed``, status None. ``snapshot`` is the
    failed Snapshot; ``error`` its error text and ``console_tail`` the guest's last console lines
    (None when it printed nothing)."""

    def __init__(self, snapshot: Any):
        self.snapshot = snapshot
        self.error = snapshot.error or "(no error text)"
        self.console_tail = snapshot.console_tail
        super().__init__(None, "prewarm_failed", f"prewarm of {snapshot.image} ({snapshot.id}) "
                         f"failed: {self.error}")


class PrewarmDeadline(SproutError):
    """prewarm()/wait_snapshot() gave up after ``deadline_s`` (code ``prewarm_deadline``): the
    prewarm goes on in the daemon; ``snapshot`` is its last state seen."""

    def __init__(self, snapshot: Any, deadline_s: float):
        self.snapshot = snapshot
        super().__init__(None, "prewarm_deadline", f"snapshot {snapshot.id} still "
                         f"{snapshot.status} after {deadline_s:g} s")


# The class of each documented code; a code the client does not know is classed by its status.
_BY_CODE: Dict[str, Type[SproutError]] = {}
for _cls, _codes in (
    (BadRequest, "invalid_json invalid_request unknown_field missing_field invalid_field "
                 "invalid_id method_not_allowed body_too_large unsupported_media_type"),
    (NotFound, "not_found snapshot_not_found clone_not_found"),
    (Conflict, "snapshot_not_ready snapshot_in_use snapshot_busy snapshot_incompatible "
               "clone_busy clone_dead"),
    (TooManyRequests, "too_many_clones queue_full too_many_prewarms too_many_connections "
                      "quota_exceeded"),
    (InternalError, "internal snapshot_load_failed clone_failed"),
    (GuestError, "invoke_failed worker_died"),
    (Unavailable, "shutting_down kvm_unavailable"),
    (InvokeTimeout, "invoke_timeout"),
):
    for _c in _codes.split():
        _BY_CODE[_c] = _cls

_BY_STATUS: Dict[int, Type[SproutError]] = {
    400: BadRequest, 405: BadRequest, 413: BadRequest, 415: BadRequest, 404: NotFound,
    409: Conflict, 429: TooManyRequests, 500: InternalError, 502: GuestError, 503: Unavailable,
    504: InvokeTimeout,
}


def error_class(status: int, code: str) -> Type[SproutError]:
    """The exception class for an answer: by its code, else by its status, else SproutError."""
    return _BY_CODE.get(code) or _BY_STATUS.get(status) or SproutError
