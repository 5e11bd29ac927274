"""Results that display themselves: one escaping component for every ``_repr_html_``.

A result object (a backtest, a regime model, a paper ledger, a store...) shows in a
notebook the way pandas and xarray objects do: a title, a small table of headline
numbers, then details folded in ``<details>`` elements.  Every repr is built here, with
all text escaped by :func:`html.escape` (a symbol or a ledger name comes from outside:
``<script>`` must show as text), so no module writes its own HTML.  :func:`summary_text`
is the plain-text twin that ``__repr__`` returns.

Examples
--------
>>> page = summary_html("Backtest <A>", {"Sharpe": 1.23456, "fills": 12})
>>> "Backtest &lt;A&gt;" in page and "1.2346" in page and "<script" not in page
True
>>> print(summary_text("Backtest", {"Sharpe": 1.23456, "fills": 12}))
Backtest
  Sharpe  1.2346
  fills   12
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from datetime import date, datetime
from numbers import Integral, Real
from typing import Any

import pandas as pd

__all__ = [
    "Html",
    "element",
    "escape",
    "format_value",
    "frame_table",
    "summary_html",
    "summary_text",
]

#: Rows of a folded frame shown before it is cut (head and tail, as pandas does).
MAX_ROWS = 20

_STYLE = (
    "<style>.qd-repr{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
    ".qd-repr table{border-collapse:collapse;margin:4px 0}"
    ".qd-repr th,.qd-repr td{padding:2px 8px;text-align:right}"
    ".qd-repr .qd-head th{text-align:left;font-weight:normal;color:#555}"
    ".qd-repr summary{cursor:pointer;margin:2px 0}</style>"
)


def format_value(value: Any) -> str:
    """Return ``value`` as the text a summary shows.

    Integers get thousands separators, other numbers four decimals (``n/a`` when not
    finite), timestamps at midnight their date, anything else its ``str``.

    Examples
    --------
    >>> format_value(1234567), format_value(0.123456), format_value(float("nan"))
    ('1,234,567', '0.1235', 'n/a')
    >>> format_value(pd.Timestamp("2024-01-02", tz="UTC"))
    '2024-01-02'
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return f"{int(value):,}"
    if isinstance(value, Real):
        number = float(value)
        return f"{number:,.4f}" if math.isfinite(number) else "n/a"
    if isinstance(value, (pd.Timestamp, datetime)):
        stamp = pd.Timestamp(value)
        return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else stamp.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _frame_html(frame: pd.DataFrame | pd.Series) -> str:
    table = frame.to_frame() if isinstance(frame, pd.Series) else frame
    shown = table if len(table) <= MAX_ROWS else pd.concat([table.head(10), table.tail(10)])
    body = shown.to_html(escape=True, border=0, float_format=format_value, na_rep="n/a")
    if len(table) > MAX_ROWS:
        body += f"<div>{len(table):,} rows; first and last 10 shown</div>"
    return body


def summary_html(
    title: str,
    headline: Mapping[str, Any],
    details: Mapping[str, Any] | None = None,
) -> str:
    """Return a compact HTML summary: the title, the headline table, the folded details.

    Parameters
    ----------
    title
        One line naming the object (escaped).
    headline
        Label -> value, shown first (labels and values escaped; values through
        :func:`format_value`).
    details
        Section name -> a frame or a series (as a table), or anything else (as its text),
        each folded in a ``<details>``.
    """
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(format_value(v))}</td></tr>"
        for k, v in headline.items()
    )
    parts = [
        _STYLE,
        '<div class="qd-repr">',
        f"<strong>{html.escape(title)}</strong>",
        f'<table class="qd-head">{rows}</table>',
    ]
    for name, content in (details or {}).items():
        if isinstance(content, (pd.DataFrame, pd.Series)):
            inner = _frame_html(content)
        else:
            inner = f"<pre>{html.escape(str(content))}</pre>"
        parts.append(f"<details><summary>{html.escape(name)}</summary>{inner}</details>")
    parts.append("</div>")
    return "".join(parts)


def summary_text(title: str, headline: Mapping[str, Any]) -> str:
    """Return the plain-text twin of :func:`summary_html`'s title and headline table."""
    width = max((len(str(k)) for k in headline), default=0)
    lines = [title, *(f"  {k!s:<{width}}  {format_value(v)}" for k, v in headline.items())]
    return "\n".join(lines)


# -- fragments for panes and apps (a dashboard's labels, tables and messages) ------------


class Html(str):
    """Text that is HTML already (made by :func:`element`): inserted as it is, not escaped."""

    __slots__ = ()


def escape(text: Any) -> Html:
    """Return ``text`` escaped for HTML (an :class:`Html` value stays as it is).

    Examples
    --------
    >>> escape("<b>x</b> & y"), escape(element("b", "x"))
    ('&lt;b&gt;x&lt;/b&gt; &amp; y', '<b>x</b>')
    """
    return text if isinstance(text, Html) else Html(html.escape(str(text)))


def element(tag: str, *children: Any, cls: str | None = None, **attrs: Any) -> Html:
    """Return the element ``<tag>`` around ``children``, every text and attribute escaped.

    Children that are :class:`Html` (other elements) go in as they are; anything else
    is escaped text.  ``cls`` is the ``class`` attribute; other keywords are attributes,
    ``_`` written ``-`` (``data_metric`` is ``data-metric``); ``None`` leaves one out.

    Examples
    --------
    >>> element("td", "<script>", cls="qd-x", data_metric='a"b')
    '<td class="qd-x" data-metric="a&quot;b">&lt;script&gt;</td>'
    >>> element("tr", element("td", 1.5))
    '<tr><td>1.5</td></tr>'
    """
    named = {"class": cls, **{k.replace("_", "-"): v for k, v in attrs.items()}}
    attributes = "".join(
        f' {name}="{html.escape(str(value), quote=True)}"'
        for name, value in named.items()
        if value is not None
    )
    body = "".join(escape(child) for child in children)
    return Html(f"<{tag}{attributes}>{body}</{tag}>")


def frame_table(frame: pd.DataFrame, cls: str | None = None) -> Html:
    """Return ``frame`` as a plain table (a header row, then one row per row), all escaped.

    Examples
    --------
    >>> frame_table(pd.DataFrame({"<a>": ["x&y"]}), cls="t")
    '<table class="t"><tr><th>&lt;a&gt;</th></tr><tr><td>x&amp;y</td></tr></table>'
    """
    header = element("tr", *(element("th", column) for column in frame.columns))
    rows = (
        element("tr", *(element("td", value) for value in row))
        for row in frame.itertuples(index=False)
    )
    return element("table", header, *rows, cls=cls)
