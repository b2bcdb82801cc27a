"""Thin Luigi tasks: parameters, targets and calls into `pipeline`, nothing more.

`luigi --module tasks Pipeline --data-root D` runs the whole graph with Luigi's own command.
"""
from tasks.root import Pipeline

__all__ = ["Pipeline"]
