"""The baselines of bench_dashboard: minimal Panel apps served the way the monitor is.

``python -m benchmarks._panel_baseline markdown PORT`` serves one Markdown pane;
``python -m benchmarks._panel_baseline ticker PORT N`` serves one HTML pane that shows
the time of the newest tick of an N-symbol :class:`~quantdesk.data.live.SimulatedFeed`,
refreshed every 250 ms like the monitor: the floor of "tick to
DOM" lag that Panel's server and a browser allow, with none of the monitor's work.
Both answer ``/liveness``.
"""

from __future__ import annotations

import sys
from typing import Any


def main(argv: list[str]) -> None:
    import panel as pn

    mode, port = argv[0], int(argv[1])
    feed: Any = None
    if mode == "markdown":

        def app() -> Any:
            return pn.pane.Markdown("# quantdesk baseline\n\nOne Markdown pane.")

    elif mode == "ticker":
        from quantdesk.data.live import SimulatedFeed

        feed = SimulatedFeed(int(argv[2]), rate=2.0).start()

        def app() -> Any:
            pane = pn.pane.HTML("<span class='qd-tick'></span>")
            seen = {"version": -1}

            def update() -> None:
                if feed.cache.version == seen["version"]:
                    return
                seen["version"] = feed.cache.version
                newest = max(q.ts for q in feed.cache.changed_since(0)[1])
                text = newest.strftime("%H:%M:%S.%f")[:-3]
                pane.object = f"<span class='qd-tick'>{text}</span>"

            pn.state.add_periodic_callback(update, period=250)
            return pane

    else:
        raise SystemExit(f"unknown baseline {mode!r}")
    try:
        pn.serve(
            app,
            port=port,
            address="127.0.0.1",
            websocket_origin=[f"127.0.0.1:{port}"],
            show=False,
            liveness=True,
        )
    finally:
        if feed is not None:
            feed.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
