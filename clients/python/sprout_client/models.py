"""The typed results: a dataclass per API object with its documented fields, and ``raw`` (the
object as the daemon sent it) for everything else. A field the daemon did not send is None."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union


def _from(cls, obj: Any):
    if not isinstance(obj, dict):
        from .errors import ProtocolError
        raise ProtocolError(None, f"expected a JSON object for a {cls.__name__}, got {obj!r:.200}")
    names = {f.name for f in dataclasses.fields(cls)} - {"raw"}
    return cls(**{k: obj[k] for k in names if k in obj}, raw=obj)


@dataclass
class Health:
    """GET /v1/health. ``status``: ``ok``, ``draining`` (SIGTERM came) or ``no_kvm`` (the host has
    no usable KVM: every prewarm and clone answers 503 kvm_unavailable; ``host_kind`` is
    ``none``). ``image_roots``: the directories a prewarmed image must be beneath."""

    status: Optional[str] = None
    version: Optional[str] = None
    api: Optional[str] = None
    host_kind: Optional[str] = None
    uptime_s: Optional[float] = None
    snapshots: Optional[int] = None
    clones: Optional[Dict[str, int]] = None  # live, total, dying, limit
    bases_loaded: Optional[int] = None
    workers: Optional[Dict[str, int]] = None  # threads, busy, queued
    prewarms: Optional[Dict[str, int]] = None  # running, pending
    image_roots: Optional[List[str]] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def kvm(self) -> bool:
        """Whether this daemon can boot and clone (False when started without KVM)."""
        return self.status != "no_kvm"

    from_json = classmethod(_from)


@dataclass
class Snapshot:
    """A snapshot (GET /v1/snapshots/{id}). ``status`` moves queued -> booting -> snapshotting
    (``progress`` 0..1 while writing) -> ready, or failed (``error``, ``console_tail``)."""

    id: str = ""
    status: Optional[str] = None
    image: Optional[str] = None
    image_path: Optional[str] = None
    path: Optional[str] = None
    created: Optional[str] = None
    ram_bytes: Optional[int] = None
    file_bytes: Optional[int] = None
    nonzero_bytes: Optional[int] = None
    ratio: Optional[float] = None
    boot_s: Optional[float] = None
    write_s: Optional[float] = None
    progress: Optional[float] = None
    clones: Optional[int] = None
    idle_clones: Optional[int] = None
    loaded: Optional[bool] = None
    pooled_shells: Optional[int] = None
    ready_clones: Optional[int] = None
    error: Optional[str] = None
    console_tail: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def done(self) -> bool:
        """ready or failed: the status will not change any more."""
        return self.status in ("ready", "failed")

    from_json = classmethod(_from)


@dataclass
class Clone:
    """A clone (GET /v1/clones/{id}). ``state``: idle, busy, or dead (``dead_reason``);
    ``origin``: api (made by clone()) or pool (kept for one-shot reuse)."""

    id: str = ""
    snapshot: Optional[str] = None
    state: Optional[str] = None
    origin: Optional[str] = None
    created: Optional[str] = None
    age_s: Optional[float] = None
    idle_s: Optional[float] = None
    invocations: Optional[int] = None
    restore_ms: Optional[float] = None
    pooled_shell: Optional[bool] = None
    private_bytes: Optional[int] = None
    dead_reason: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    from_json = classmethod(_from)


@dataclass
class Invocation:
    """An answered invocation. ``response``: the guest's answer parsed as JSON when it is JSON,
    else its bytes; ``raw``: the bytes exactly as the guest wrote them; ``clone_id``: the clone
    that served it (Sprout-Clone); ``invoke_ms``: the daemon's time for the invocation
    (Sprout-Invoke-Ms); ``log``: with ``log=True``, what the call wrote to the clone's log (its
    handler's output, escaped by the daemon), else None; ``log_lost``: whether part of it is
    missing (the newest 64 KiB are kept)."""

    response: Union[Any, bytes]
    raw: bytes
    clone_id: Optional[str] = None
    invoke_ms: Optional[float] = None
    log: Optional[str] = None
    log_lost: bool = False

    @property
    def is_json(self) -> bool:
        """Whether the answer parsed as JSON (a JSON string or null included)."""
        return not isinstance(self.response, bytes)
