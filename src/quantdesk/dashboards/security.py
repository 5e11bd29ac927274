"""The bind rule every quantdesk server follows, and the checks behind its authentication.

A server binds to 127.0.0.1 unless the user asks for another address, and any address
that is not loopback requires authentication: :func:`check_bind` refuses to start
without it, with a message that says what to add.  :func:`read_credentials` reads a
basic-auth credentials file strictly (Panel treats a mistyped path as the password
itself, holoviz/panel#4703: here a missing or unreadable file is an error).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path

__all__ = [
    "DEFAULT_ADDRESS",
    "InsecureBindError",
    "check_bind",
    "is_loopback",
    "read_credentials",
]

DEFAULT_ADDRESS = "127.0.0.1"


class InsecureBindError(ValueError):
    """A server was asked to listen beyond this machine without authentication."""


def is_loopback(address: str) -> bool:
    """Return whether ``address`` (an IP or a host name) only reaches this machine.

    ``""`` and ``0.0.0.0`` mean every interface, so they are not loopback; a host name
    counts as loopback only when every address it resolves to is.

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    address = address.strip().strip("[]")
    if not address:
        return False
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        pass
    if address == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(address, None)
    except OSError:
        return False
    ips = {str(info[4][0]) for info in infos}
    return bool(ips) and all(ipaddress.ip_address(ip.split("%")[0]).is_loopback for ip in ips)


def check_bind(address: str, *, authenticated: bool, what: str = "server", how: str = "") -> str:
    """Return ``address`` when serving on it is allowed; raise otherwise.

    Parameters
    ----------
    address
        Where the server will listen.
    authenticated
        Whether the user configured authentication.
    what
        The server's name for the message (``"quantdesk dashboard"``).
    how
        The options that configure authentication, for the message
        (``"--basic-auth FILE --cookie-secret S"``).

    Raises
    ------
    InsecureBindError
        ``address`` is not loopback and no authentication is configured.
    """
    if authenticated or is_loopback(address):
        return address
    hint = f" (add {how})" if how else ""
    raise InsecureBindError(
        f"{what} refuses to listen on {address!r} without authentication: that address is "
        f"reachable from other machines. Configure authentication{hint}, or bind to "
        f"{DEFAULT_ADDRESS}."
    )


def read_credentials(path: str | Path) -> dict[str, str]:
    """Return the ``{user: password}`` mapping of a basic-auth credentials file.

    The file is JSON (``{"alice": "secret"}``) or lines of ``user:password``; blank lines
    and ``#`` comments are ignored.  The passwords are never logged.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (a mistyped path is never taken as a password).
    PermissionError
        ``path`` cannot be read.
    ValueError
        The file is empty or a line is not ``user:password``; the message names the file
        and line, never a password.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"basic-auth credentials file {str(file)!r} does not exist")
    text = file.read_text(encoding="utf-8")
    creds: dict[str, str] = {}
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{file}: not valid JSON (line {exc.lineno})") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in data.items()
        ):
            raise ValueError(f"{file}: JSON credentials must map user names to passwords")
        creds = dict(data)
    else:
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, password = line.partition(":")
            if not sep or not user.strip() or not password:
                raise ValueError(f"{file}, line {lineno}: expected 'user:password'")
            creds[user.strip()] = password
    if not creds:
        raise ValueError(f"{file}: no credentials in the file")
    return creds
