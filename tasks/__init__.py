"""Thin Luigi tasks: parameters, targets and calls into `pipeline`, nothing more."""
