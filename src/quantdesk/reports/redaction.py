"""Secret guards: secret-looking parameter names refused, secret values redacted.

Secret values reach a notebook through the environment only.  Papermill writes
parameters into the injected cell and into the notebook metadata, so a parameter
whose *name* looks like a secret (it contains ``key``, ``token``, ``secret``,
``password``, ``passwd``, ``credential``, ``apikey`` or ``api_key``, in any case) is
refused before the kernel starts (:func:`check_parameters`).  As a second line of
defence, every value (8 characters or longer) of a secret-looking environment variable
is replaced with ``***`` wherever it appears in what a run writes
(:func:`redact_secrets`), and only the variable's *name* is logged.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "SecretParameterError",
    "check_parameters",
    "looks_like_secret",
    "redact_secrets",
    "secret_values",
]

logger = logging.getLogger(__name__)

# Substrings that make a parameter or environment variable name look like a secret.
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "credential", "apikey", "api_key")
_SECRET_NAME = re.compile("|".join(map(re.escape, _SECRET_WORDS)), re.IGNORECASE)
# Shorter values are too likely to occur by chance ("true", "1", a port) to redact.
_MIN_SECRET_LENGTH = 8
_REDACTED = "***"


class SecretParameterError(ValueError):
    """Raised when a parameter name looks like a secret; secrets go through the environment."""


def looks_like_secret(name: str) -> bool:
    """Return whether a parameter or environment variable name looks like a secret.

    Examples
    --------
    >>> looks_like_secret("POLYGON_API_KEY"), looks_like_secret("symbol")
    (True, False)
    """
    return _SECRET_NAME.search(name) is not None


def check_parameters(parameters: Mapping[str, Any]) -> None:
    """Return ``None`` if every parameter name is usable; raise otherwise.

    Raises
    ------
    SecretParameterError
        A name looks like a secret (see :func:`looks_like_secret`).
    ValueError
        A name is not a Python identifier (papermill injects ``name = value``).
    """
    secret = sorted(name for name in parameters if looks_like_secret(str(name)))
    if secret:
        raise SecretParameterError(
            f"parameter name(s) {', '.join(map(repr, secret))} look like secrets; papermill "
            "would write their values into the executed notebook and the report. Pass "
            "secrets through an environment variable instead (set it in the environment "
            "or with run_report(env=...)) and read it in the notebook with os.environ."
        )
    bad = sorted(str(name) for name in parameters if not str(name).isidentifier())
    if bad:
        raise ValueError(f"parameter names must be Python identifiers, got {bad}")


def secret_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Return ``{name: value}`` of environment variables that look like secrets."""
    return {
        name: value
        for name, value in environ.items()
        if looks_like_secret(name) and len(value) >= _MIN_SECRET_LENGTH
    }


def redact_secrets(text: str, secrets: Mapping[str, str], where: str, found: set[str]) -> str:
    """Return ``text`` with every secret value replaced by ``***``; names go into ``found``."""
    for name, value in secrets.items():
        # The value may sit in a file raw or as a Python repr (an execute_result), and
        # either of those JSON-escaped (ipynb, run.json) or HTML-escaped (the HTML).
        forms = (value, repr(value)[1:-1])
        spellings = {
            encode(form)
            for form in forms
            for encode in (
                str,
                lambda t: json.dumps(t)[1:-1],
                lambda t: json.dumps(t, ensure_ascii=False)[1:-1],
                html.escape,
                lambda t: html.escape(t, quote=False),
            )
        }
        hit = False
        for spelling in sorted(spellings, key=len, reverse=True):
            if spelling in text:
                text = text.replace(spelling, _REDACTED)
                hit = True
        if hit:
            found.add(name)
            logger.warning(
                "the value of the secret environment variable %s appeared in the %s; "
                "it was replaced by %r",
                name,
                where,
                _REDACTED,
            )
    return text
