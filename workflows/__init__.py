"""Steward's processes: one workflow class per module (see workflows/registry.py).

This package's __init__ imports nothing on purpose: the workflow sandbox
re-imports a workflow's module, and its package, for every run it starts;
importing every process here would make each order review pay for loading
the chargeback, returns and delivery workflows too.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # `workflows.ALL_WORKFLOWS` for the worker, loaded only when asked for.
    if name == "ALL_WORKFLOWS":
        from workflows.registry import ALL_WORKFLOWS

        return ALL_WORKFLOWS
    raise AttributeError(f"module 'workflows' has no attribute {name!r}")
