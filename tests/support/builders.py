"""Small builders shared by tests: states, a runtime, models that misbehave on purpose."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from dialogforge.config import ModelConfig, ModelsConfig, Role
from dialogforge.models import ModelSet, RoleModel
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState
from dialogforge.records import FunctionSpec, RubricItem, Scenario, Task, ToolSpec
from dialogforge.executors.simulated import SimulatedToolExecutor


def scripted_set() -> ModelSet:
    return ModelSet.from_config(ModelsConfig(default=ModelConfig(backend="scripted")))


def runtime_with(models: ModelSet | None = None) -> Runtime:
    models = models or scripted_set()
    return Runtime(context=GraphContext(models=models, executor=SimulatedToolExecutor(models[Role.TOOL_SIMULATOR])))


def garbage_model(role: Role, text: str = "this is not json") -> RoleModel:
    """A model that always answers the same unusable text: malformed output, on purpose."""
    chat = GenericFakeChatModel(messages=iter([AIMessage(text)] * 20))
    return RoleModel(role=role, config=ModelConfig(backend="scripted", max_parse_retries=2), chat=chat)


def order_tool() -> ToolSpec:
    return ToolSpec(
        function=FunctionSpec(
            name="get_order",
            description="Look up an order.",
            parameters={"type": "object", "properties": {"order_id": {"type": "string"}, "verbose": {"type": "boolean"}}, "required": ["order_id"]},
        ),
        result_schema={"type": "object", "properties": {"order_id": {"type": "string"}, "status": {"type": "string"}}, "required": ["order_id", "status"]},
    )


def state_with_task(**updates) -> DialogueState:
    task = Task(goal="The user wants to check order A1 and change its address.", subtasks=["check order A1", "change the address"],
                rubric=[RubricItem(criterion="order checked")])
    base = DialogueState(scenario=Scenario(domain="online store"), tools=[order_tool()], tasks=[task], seed=3)
    return base.model_copy(update=updates)


def scripted_context() -> GraphContext:
    """What the dialogue graph runs with in tests: the scripted models and the simulated tool executor."""
    models = scripted_set()
    return GraphContext(models=models, executor=SimulatedToolExecutor(models[Role.TOOL_SIMULATOR]))
