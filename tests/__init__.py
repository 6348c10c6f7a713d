"""dialogforge's test suite: a package, so ``pytest`` and ``python3 -m pytest`` both work from the root.

Shared helpers live in ``tests.support``; no test module imports another.
"""
