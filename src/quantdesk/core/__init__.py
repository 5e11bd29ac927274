"""The bottom floor: small concepts every other package shares.

Nothing here imports from the rest of quantdesk, and every module is cheap to import
(numpy and pandas load inside the functions that need them, except in :mod:`markov`).

- :mod:`quantdesk.core.provenance`: versions of Python and installed libraries.
- :mod:`quantdesk.core.jsonable`: numpy/pandas values made JSON-ready.
- :mod:`quantdesk.core.paths`: the project root and quantdesk's own checkout.
- :mod:`quantdesk.core.markov`: stationary distribution and expected stays of a chain.
- :mod:`quantdesk.core.parallel`: one runner for batches on a process pool or Dask.
- :mod:`quantdesk.core.charts`: the chart theme, hover formats and regime colours.
- :mod:`quantdesk.core.html`: the one escaping helper and summary tables for `_repr_html_`.
- :mod:`quantdesk.core.progress`: the progress bar every long job shows.
- :mod:`quantdesk.core.coerce`: a time as UTC, symbols as a list: what users pass, one form.
- :mod:`quantdesk.core.backoff`: the one retry back-off formula.
"""

from __future__ import annotations

__all__: list[str] = []
