"""`ifkd bench`: the paper's tables and the generalisation protocols, measured under one fixed budget.

budgets (what is trained, on which data) -> protocols (which data, which test split) -> harness (train,
evaluate, cache, results.json) -> tables / claims (Markdown from the numbers).
"""

from ifkd.bench.budgets import BUDGETS, Budget, get_budget
from ifkd.bench.harness import run_benchmark

__all__ = ["BUDGETS", "Budget", "get_budget", "run_benchmark"]
