"""The rubric's rules, one module per rule, each registered by name with ``@rule``.

>>> from harness.scoring.rules import RULES, get_rule
>>> list(RULES)
['code_quality', 'modifications', 'improvement', 'analysis', 'documentation']
>>> get_rule("improvement").params.__name__
'ImprovementParams'

A rubric criterion's ``rule = "<name>"`` is looked up here (``get_rule``); an unknown name raises
``UnknownRuleError`` listing the known ones. Adding a rule: a new module that decorates its
function with ``@rule("<name>", params=<its parameters model>)``, imported below.
"""

from __future__ import annotations

from harness.scoring.rules.registry import RULES, Rule, RuleFunction, RuleParams, UnknownRuleError, get_rule, rule

# Importing a rule module registers its rule. The order is the registry's, which error messages
# list ("known: code_quality, modifications, …"): the rubric's order, not the alphabet.
# isort: off
from harness.scoring.rules import code_quality  # noqa: F401
from harness.scoring.rules import modifications  # noqa: F401
from harness.scoring.rules import improvement  # noqa: F401
from harness.scoring.rules import analysis  # noqa: F401
from harness.scoring.rules import documentation  # noqa: F401
# isort: on

__all__ = ["RULES", "Rule", "RuleFunction", "RuleParams", "UnknownRuleError", "get_rule", "rule"]
