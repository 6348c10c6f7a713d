"""The model layer: every LLM call in dialogforge goes through here."""

from dialogforge.models.registry import ModelSet, RoleModel, get_model
from dialogforge.models.structured import generate_structured
from dialogforge.models.agent_turn import generate_agent_turn

__all__ = ["ModelSet", "RoleModel", "get_model", "generate_structured", "generate_agent_turn"]
