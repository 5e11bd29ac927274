"""The screener: rules over bars, whole-universe scans, stored alerts and their sinks.

Names load on first use, so importing :mod:`quantdesk.screener` stays cheap::

    from quantdesk.screener import scan, gap_up, volume_spike
    alerts = scan(store, [gap_up(pct=3), volume_spike(k=2.5)], start="2024-01-01")
    stream = StreamingScan("rules.yaml")          # on each new candle of the live feed
    alerts = stream.update(closed_candles)
    record_alerts(store, alerts)                  # stored, then queued for the webhook
    deliver(store)                                # POSTs what is pending, at least once

- :mod:`~quantdesk.screener.rules`: the rules and their combinators (pure).
- :mod:`~quantdesk.screener.rulesets`: rule sets from YAML or Python, validated.
- :mod:`~quantdesk.screener.batch`: batch scans (latest bar, one date, backfills).
- :mod:`~quantdesk.screener.streaming`: the incremental scan of live candles.
- :mod:`~quantdesk.screener.webhooks`: the webhook sink, with retries and idempotency keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "scan": "quantdesk.screener.batch",
    "evaluate": "quantdesk.screener.batch",
    "StreamingScan": "quantdesk.screener.streaming",
    "recent_alerts": "quantdesk.screener.streaming",
    "Rule": "quantdesk.screener.rules",
    "RuleOutput": "quantdesk.screener.rules",
    "BUILTIN_RULES": "quantdesk.screener.rules",
    "gap_up": "quantdesk.screener.rules",
    "gap_down": "quantdesk.screener.rules",
    "volume_spike": "quantdesk.screener.rules",
    "new_high": "quantdesk.screener.rules",
    "new_low": "quantdesk.screener.rules",
    "ma_cross": "quantdesk.screener.rules",
    "regime_change": "quantdesk.screener.rules",
    "sentiment_shock": "quantdesk.screener.rules",
    "all_of": "quantdesk.screener.rules",
    "any_of": "quantdesk.screener.rules",
    "not_": "quantdesk.screener.rules",
    "rule": "quantdesk.screener.rules",
    "RuleSetError": "quantdesk.screener.rulesets",
    "load_rules": "quantdesk.screener.rulesets",
    "WebhookConfig": "quantdesk.screener.webhooks",
    "DeliveryReport": "quantdesk.screener.webhooks",
    "deliver": "quantdesk.screener.webhooks",
    "record_alerts": "quantdesk.screener.webhooks",
}
_SUBMODULES = frozenset({"analysis", "batch", "rules", "rulesets", "streaming", "webhooks"})

__all__ = [
    "BUILTIN_RULES",
    "DeliveryReport",
    "Rule",
    "RuleOutput",
    "RuleSetError",
    "StreamingScan",
    "WebhookConfig",
    "all_of",
    "any_of",
    "deliver",
    "evaluate",
    "gap_down",
    "gap_up",
    "load_rules",
    "ma_cross",
    "new_high",
    "new_low",
    "not_",
    "recent_alerts",
    "record_alerts",
    "regime_change",
    "rule",
    "scan",
    "sentiment_shock",
    "volume_spike",
]

if TYPE_CHECKING:
    from quantdesk.screener.batch import evaluate, scan
    from quantdesk.screener.rules import (
        BUILTIN_RULES,
        Rule,
        RuleOutput,
        all_of,
        any_of,
        gap_down,
        gap_up,
        ma_cross,
        new_high,
        new_low,
        not_,
        regime_change,
        rule,
        sentiment_shock,
        volume_spike,
    )
    from quantdesk.screener.rulesets import RuleSetError, load_rules
    from quantdesk.screener.streaming import StreamingScan, recent_alerts
    from quantdesk.screener.webhooks import DeliveryReport, WebhookConfig, deliver, record_alerts


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
