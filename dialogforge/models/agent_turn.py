"""One agent step: the model with the tools bound, reasoning kept apart.

Reasoning models return their thinking beside the reply; it is stored on the
assistant message (``Message.reasoning``) so exports can keep or drop it.
"""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage

from dialogforge.errors import ModelCallError
from dialogforge.models.call import invoke_chat
from dialogforge.models.convert import reasoning_of, text_of, tool_calls_of, usage_of
from dialogforge.models.registry import RoleModel
from graphs.state import Message, TokenUsage, ToolSpec

_EMPTY_NUDGE = "Your last reply was empty. Answer the user or call a tool."


async def generate_agent_turn(
    model: RoleModel,
    messages: list[BaseMessage],
    tools: list[ToolSpec],
    *,
    seed: int,
    task_index: int | None,
) -> tuple[Message, TokenUsage]:
    usage = TokenUsage()
    openai_tools = [t.openai_tool() for t in tools]
    conversation = list(messages)
    for _ in range(model.config.max_parse_retries + 1):
        kwargs: dict = {"seed": seed}
        if openai_tools:
            kwargs["tools"] = openai_tools
        reply = await invoke_chat(model, conversation, **kwargs)
        usage = usage.plus(usage_of(reply))
        message = Message(
            role="assistant",
            content=text_of(reply).strip(),
            reasoning=reasoning_of(reply),
            tool_calls=tool_calls_of(reply),
            task_index=task_index,
        )
        if message.content or message.tool_calls:
            return message, usage
        conversation = [*conversation, HumanMessage(_EMPTY_NUDGE)]
    raise ModelCallError(f"{model.role}: empty reply (no text, no tool call) after retries")
