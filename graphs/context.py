"""What the graph's nodes receive at run time besides the state.

Models and the tool executor are live objects (clients, database handles),
so they travel in LangGraph's runtime context, never in the checkpointed
state.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialogforge.models import ModelSet
from dialogforge.executors.contract import ToolExecutor


@dataclass
class GraphContext:
    models: ModelSet
    executor: ToolExecutor
