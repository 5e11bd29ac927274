"""The bottom floor: small concepts every other package shares.

Nothing here imports from the rest of quantdesk, and every module is cheap to import
(numpy and pandas load inside the functions that need them, except in :mod:`markov`).

- :mod:`quantdesk.core.provenance`: versions of Python and installed libraries.
- :mod:`quantdesk.core.jsonable`: numpy/pandas values made JSON-ready.
- :mod:`quantdesk.core.paths`: the project root and quantdesk's own checkout.
- :mod:`quantdesk.core.markov`: stationary distribution and expected stays of a chain.
- :mod:`quantdesk.core.parallel`: one runner for batches on a process pool or Dask.
- :mod:`quantdesk.core.charts`: the chart theme, hover formats and regime colours.
"""

from __future__ import annotations

__all__: list[str] = []
