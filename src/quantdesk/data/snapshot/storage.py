"""Where a snapshot lives: a local folder or any fsspec URL, and what its failures say.

Credentials and endpoints come from where fsspec and the object store's client look
for them, never from quantdesk: for ``s3://`` the ``AWS_*`` variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ...), the AWS
config files, or fsspec's own configuration (``~/.config/fsspec/*.json``,
``FSSPEC_S3_*``); ``storage_options`` passed by a caller go to the filesystem as they
are.  Neither is logged nor written into a manifest.

An object store that does not answer fails in seconds, not minutes: an ``s3://`` URL
connects with a 5 s timeout and 3 attempts unless the caller's ``storage_options`` say
otherwise, and every failure of the storage is raised as
:class:`SnapshotStorageError`, naming the URL and what was being done.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = [
    "SnapshotError",
    "SnapshotLocation",
    "SnapshotStorageError",
    "open_location",
    "redact",
    "storage_errors",
]

logger = logging.getLogger(__name__)

#: Client settings of ``s3://`` URLs that the caller's ``storage_options`` did not set:
#: a store that does not answer fails within about 3 x 5 s instead of botocore's minutes.
S3_CLIENT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 5,
    "read_timeout": 60,
    "retries": {"max_attempts": 3, "mode": "standard"},
}

_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")


class SnapshotError(Exception):
    """A snapshot cannot be written or read as asked (no such version, a bad manifest)."""


class SnapshotStorageError(SnapshotError, OSError):
    """The snapshot's storage failed: unreachable, refused, or a file missing or corrupt.

    The message names the URL (without any user name or password in it) and the step.
    """


def redact(url: str) -> str:
    """Return ``url`` without a ``user:password@`` part, for messages and logs.

    Examples
    --------
    >>> redact("s3://key:secret@bucket/snap"), redact("/data/snap")
    ('s3://bucket/snap', '/data/snap')
    """
    return _USERINFO.sub(r"\1", url)


@contextlib.contextmanager
def storage_errors(url: str, doing: str) -> Iterator[None]:
    """Raise any failure of the storage inside the block as :class:`SnapshotStorageError`.

    The block does storage I/O only, so whatever it raises (``OSError``, botocore's
    connection errors, aiohttp's) is the storage's failure; quantdesk's own errors
    pass through.
    """
    try:
        yield
    except SnapshotError:
        raise
    except Exception as exc:
        raise SnapshotStorageError(
            f"{doing} {redact(url)} failed: {type(exc).__name__}: {exc}"
        ) from exc


@dataclass(frozen=True)
class SnapshotLocation:
    """A snapshot's root: its filesystem, the root path on it, and whether it is local."""

    url: str
    fs: AbstractFileSystem
    root: str
    local: bool

    def path(self, relative: str) -> str:
        """Return the filesystem path of a path relative to the root."""
        return f"{self.root.rstrip('/')}/{relative}" if relative else self.root

    def __str__(self) -> str:
        return redact(self.url)


def open_location(url: str, storage_options: dict[str, Any] | None = None) -> SnapshotLocation:
    """Return the location of a snapshot URL (a local path, ``file://``, ``s3://``, ...).

    Examples
    --------
    >>> open_location("memory://snapshots/demo").root
    '/snapshots/demo'
    """
    from fsspec.core import url_to_fs
    from fsspec.utils import get_protocol

    url = str(url)
    options = dict(storage_options or {})
    protocol = get_protocol(url)
    if protocol in ("s3", "s3a"):
        client = dict(options.get("config_kwargs") or {})
        for key, value in S3_CLIENT_DEFAULTS.items():
            client.setdefault(key, value)
        options["config_kwargs"] = client
        # A new client per location: one cached under an earlier environment (another
        # endpoint, other credentials) would be reused otherwise.
        options.setdefault("skip_instance_cache", True)
    with storage_errors(url, "opening"):
        fs, root = url_to_fs(url, **options)
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    local = "file" in protocols or "local" in protocols
    return SnapshotLocation(url=url, fs=fs, root=str(root).rstrip("/") or "/", local=local)
