"""A module nothing imports: tests/test_warm_workers.py has a warm worker prepare it."""
PREPARED = True
