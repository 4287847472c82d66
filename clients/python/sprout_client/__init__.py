"""sprout_client: a Python client of sproutd, the sprout clone API (HTTP/1.1 + JSON on a Unix
socket). Standard library only.

    from sprout_client import Client, TooManyRequests
    c = Client()                         # $SPROUT_SOCKET, else the default state directory's
    snap = c.prewarm("/var/lib/sprout/images/hello")
    print(c.invoke(snap.id, {"name": "x"}).response)
"""

from .client import Client, default_socket_path
from .errors import (BadRequest, Conflict, DaemonUnreachable, GuestError, InternalError,
                     InvokeTimeout, NotFound, PrewarmDeadline, PrewarmFailed, ProtocolError,
                     RequestTimeout, SproutError, TooManyRequests, Unavailable, error_class)
from .models import Clone, Health, Invocation, Snapshot

__version__ = "0.1.0"

__all__ = [
    "Client", "default_socket_path", "Health", "Snapshot", "Clone", "Invocation",
    "SproutError", "BadRequest", "NotFound", "Conflict", "TooManyRequests", "InternalError",
    "GuestError", "Unavailable", "InvokeTimeout", "DaemonUnreachable", "RequestTimeout",
    "ProtocolError", "PrewarmFailed", "PrewarmDeadline", "error_class",
]
