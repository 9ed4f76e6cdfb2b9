"""The rule registry: a rubric criterion's ``rule = "<name>"`` names a function registered here.

A rule module declares its parameters model (a ``RuleParams``) and decorates its function with
``@rule("<name>", params=<its model>)``; the engine and the rubric loader look rules up by name
(``get_rule``). This module is a leaf (it imports no rule): the rule modules import it while
``harness/scoring/rules/__init__.py`` imports them, so it cannot be that package's ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.scoring.evidence import Evidence, Verdict
from harness.util.i18n import Translator

RuleFunction = Callable[[Evidence, Any, Translator], Verdict]
"""A rule's signature: (the evidence, its parameters model instance, the report's translator) -> its verdict."""


class RuleParams(BaseModel):
    """A rule's parameters: the keys of its criterion's ``[criteria.params]`` table, with their
    defaults. An unknown key (a typo) is an error, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Rule:
    """A registered rule: its name in the rubric file, its scoring function and its parameters model."""

    name: str
    function: RuleFunction
    params: type[RuleParams]

    def __call__(self, ev: Evidence, p: RuleParams, t: Translator) -> Verdict:
        """Score one criterion: the rule's function on the evidence, its parameters and the translator."""
        return self.function(ev, p, t)


class UnknownRuleError(LookupError):
    """A rule name that no rule module registered."""


RULES: dict[str, Rule] = {}
"""Every registered rule by name, in registration order (the order rules/__init__.py imports them)."""


def rule(name: str, params: type[RuleParams] = RuleParams) -> Callable[[RuleFunction], RuleFunction]:
    """Register the decorated function as the rule ``name`` with its parameters model ``params``
    (a rule without parameters keeps the default, which accepts none). The function is returned
    unchanged, so it can still be called directly."""

    def register(function: RuleFunction) -> RuleFunction:
        """Add ``function`` to RULES (a name registered twice is an error) and return it as it is."""
        if name in RULES:
            raise ValueError(
                f"rule {name!r} is registered twice: by {RULES[name].function.__module__} and by {function.__module__}"
            )
        RULES[name] = Rule(name=name, function=function, params=params)
        return function

    return register


def get_rule(name: str) -> Rule:
    """The rule registered as ``name``; ``UnknownRuleError`` naming the known rules otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise UnknownRuleError(f"unknown rule {name!r}; known: {', '.join(RULES)}") from None
