"""Test and benchmark equipment: the scripted chat model and the stub server.

Nothing here is a default or a fallback for a real model; it is selected
explicitly (``--backend scripted``) by tests, benchmarks and demos.
"""
