"""Rule sets: the rules of a scan, declared in YAML (or a dict) or in Python, validated.

A YAML rule set is a list of rules under ``rules:``; each has a ``name`` and one of

* ``rule: <built-in>`` with that rule's parameters beside it,
* ``all: [...]``, ``any: [...]`` or ``not: ...`` over earlier names, built-in names or
  nested rule mappings,
* ``python: module:function``, a factory returning a :class:`~quantdesk.screener.rules.Rule`,
  called with ``params``.

Every mistake is refused before a scan runs, with an error that names the file, the
rule and the field::

    rules.yaml: rule 'big_gap' (#1): field 'pct': must be positive, got -3

Examples
--------
>>> rules = rules_from_config({"rules": [
...     {"name": "big_gap", "rule": "gap_up", "pct": 5},
...     {"name": "gap_and_volume", "all": ["big_gap", {"rule": "volume_spike", "k": 2}]},
... ]})
>>> [r.name for r in rules]
['big_gap', 'gap_and_volume']
>>> try:
...     rules_from_config({"rules": [{"name": "x", "rule": "gap_up", "pcnt": 5}]}, "r.yaml")
... except RuleSetError as exc:
...     print(exc)
r.yaml: rule 'x' (#1): field 'pcnt': unknown parameter of gap_up; expected one of ['pct']
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from quantdesk.screener.rules import (
    BUILTIN_RULES,
    Rule,
    RuleParameterError,
    all_of,
    any_of,
    builtin_parameters,
    not_,
)

__all__ = ["RuleSetError", "RulesLike", "load_rules", "resolve_rules", "rules_from_config"]

#: What a scan accepts as its rules: built-in names, rules, a YAML file, or a mix.
RulesLike = str | Path | Rule | Sequence[str | Rule]

_COMBINATORS = ("all", "any", "not")


class RuleSetError(ValueError):
    """A rule set that cannot be used; the message names the file, rule and field."""

    def __init__(self, source: str, rule: str | None, field: str | None, message: str) -> None:
        where = source
        if rule is not None:
            where += f": rule {rule}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {message}")
        self.source = source
        self.rule = rule
        self.field = field


def load_rules(path: str | Path) -> list[Rule]:
    """Return the rules declared in a YAML file (see the module docstring).

    Raises
    ------
    RuleSetError
        Naming the file, the rule and the field of the first mistake.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RuleSetError(str(path), None, None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetError(str(path), None, None, f"not valid YAML: {exc}") from exc
    return rules_from_config(data, source=str(path))


def rules_from_config(data: Any, source: str = "<rules>") -> list[Rule]:
    """Return the rules of a parsed rule set: ``{"rules": [{"name": ..., ...}, ...]}``.

    A bare list of rule mappings is accepted too.
    """
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - {"rules"})
        if unknown:
            raise RuleSetError(source, None, unknown[0], "unknown top-level key; expected 'rules'")
        data = data.get("rules")
    if not isinstance(data, list) or not data:
        raise RuleSetError(source, None, "rules", "must be a non-empty list of rules")
    defined: dict[str, Rule] = {}
    for i, spec in enumerate(data, start=1):
        label = f"#{i}"
        if not isinstance(spec, Mapping):
            raise RuleSetError(source, label, None, f"must be a mapping, got {spec!r}")
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RuleSetError(source, label, "name", "every rule needs a name (non-empty text)")
        label = f"{name!r} ({label})"
        if name in defined:
            raise RuleSetError(source, label, "name", "defined twice")
        defined[name] = _build(spec, name, label, source, defined)
    return list(defined.values())


def _build(
    spec: Mapping[str, Any], name: str | None, label: str, source: str, defined: dict[str, Rule]
) -> Rule:
    kinds = [k for k in ("rule", "python", *_COMBINATORS) if k in spec]
    if len(kinds) != 1:
        raise RuleSetError(
            source,
            label,
            None,
            "needs exactly one of 'rule', 'all', 'any', 'not', 'python'"
            + (f"; got {kinds}" if kinds else ""),
        )
    kind = kinds[0]
    if kind == "rule":
        return _builtin(spec, name, label, source)
    if kind == "python":
        return _python(spec, name, label, source)
    extra = sorted(set(spec) - {"name", kind})
    if extra:
        raise RuleSetError(source, label, extra[0], f"unknown key beside {kind!r}")
    items = spec[kind]
    if kind == "not":
        inner = _reference(items, label, kind, source, defined)
        return not_(inner, name=name)
    if not isinstance(items, list) or not items:
        raise RuleSetError(source, label, kind, "must be a non-empty list of rules")
    children = [_reference(item, label, kind, source, defined) for item in items]
    return all_of(children, name=name) if kind == "all" else any_of(children, name=name)


def _reference(item: Any, label: str, field: str, source: str, defined: dict[str, Rule]) -> Rule:
    if isinstance(item, str):
        if item in defined:
            return defined[item]
        if item in BUILTIN_RULES:
            return BUILTIN_RULES[item]()
        raise RuleSetError(
            source,
            label,
            field,
            f"{item!r} is neither a rule defined above nor a built-in ({', '.join(BUILTIN_RULES)})",
        )
    if isinstance(item, Mapping):
        return _build(item, item.get("name"), label, source, defined)
    raise RuleSetError(source, label, field, f"expected a rule name or mapping, got {item!r}")


def _builtin(spec: Mapping[str, Any], name: str | None, label: str, source: str) -> Rule:
    kind = spec["rule"]
    if kind not in BUILTIN_RULES:
        raise RuleSetError(
            source, label, "rule", f"unknown rule {kind!r}; built-ins: {', '.join(BUILTIN_RULES)}"
        )
    accepted = builtin_parameters(kind)
    params = {k: v for k, v in spec.items() if k not in ("name", "rule")}
    for key in params:
        if key not in accepted:
            raise RuleSetError(
                source, label, key, f"unknown parameter of {kind}; expected one of {accepted}"
            )
    try:
        built = BUILTIN_RULES[kind](**params)
    except RuleParameterError as exc:
        raise RuleSetError(source, label, exc.field, str(exc).split(": ", 1)[1]) from exc
    return built.named(name) if name else built


def _python(spec: Mapping[str, Any], name: str | None, label: str, source: str) -> Rule:
    extra = sorted(set(spec) - {"name", "python", "params"})
    if extra:
        raise RuleSetError(source, label, extra[0], "unknown key beside 'python'")
    target = spec["python"]
    if not isinstance(target, str) or ":" not in target:
        raise RuleSetError(source, label, "python", f"expected 'module:function', got {target!r}")
    module_name, _, attr = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise RuleSetError(source, label, "python", f"cannot import {target!r}: {exc}") from exc
    params = spec.get("params") or {}
    if not isinstance(params, Mapping):
        raise RuleSetError(source, label, "params", f"must be a mapping, got {params!r}")
    try:
        built = factory(**params)
    except RuleParameterError as exc:
        raise RuleSetError(source, label, exc.field, str(exc).split(": ", 1)[1]) from exc
    except TypeError as exc:
        raise RuleSetError(source, label, "params", str(exc)) from exc
    if not isinstance(built, Rule):
        raise RuleSetError(
            source, label, "python", f"{target} returned {type(built).__name__}, not a Rule"
        )
    return built.named(name) if name else built


def resolve_rules(rules: RulesLike) -> list[Rule]:
    """Return the rules of a scan from built-in names, rule objects, or a YAML file path.

    Names must be unique: they are the ``rule`` of the alerts.
    """
    if isinstance(rules, Path) or (
        isinstance(rules, str) and rules.endswith((".yaml", ".yml", ".json"))
    ):
        return load_rules(rules)
    items: Sequence[str | Rule] = [rules] if isinstance(rules, (str, Rule)) else rules
    out: list[Rule] = []
    for item in items:
        if isinstance(item, Rule):
            out.append(item)
        elif isinstance(item, str) and item in BUILTIN_RULES:
            out.append(BUILTIN_RULES[item]())
        else:
            raise RuleSetError(
                "<rules>",
                None,
                None,
                f"{item!r} is not a rule, a built-in rule name ({', '.join(BUILTIN_RULES)}) "
                "or a YAML file",
            )
    names = [r.name for r in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RuleSetError("<rules>", repr(twice[0]), "name", "used by two rules; rename one")
    if not out:
        raise RuleSetError("<rules>", None, None, "no rules given")
    return out
