"""The dialogue graph and its state; ``build_graph`` is the entry point for scripts.

The builder is imported lazily: ``graphs.state`` is imported by everything,
and must not drag the nodes and the model layer in with it.
"""

from typing import Any

__all__ = ["build_graph", "compile_graph"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from graphs import builder

        return getattr(builder, name)
    raise AttributeError(name)
