"""Starting trajectories from existing conversations (``generate --from-conversations FILE``).

Each line of the JSONL file is one of:

* an OpenAI-style conversation: ``{"messages": [...], "tools": [...]?}``
  with roles system, user, assistant (``content``, ``tool_calls``,
  ``reasoning_content``) and tool (``tool_call_id``). It must be
  well-formed: user first (after any system messages), every tool call
  answered by one tool message before the dialogue goes on, no tool result
  without its call, no two user messages in a row.
* a BFCL multi-turn entry (``question`` turns, ``initial_config``,
  ``involved_classes``, ``excluded_function``): its tools are the func-doc
  files of its classes (``func_doc/`` beside the file, per the BFCL README),
  its world state is ``initial_config``.

How generation continues from there:

* OpenAI conversation: the messages are the dialogue so far. A system
  message is not kept in the dialogue (the agent has its own); its text
  becomes the scenario's domain. The graph then runs from its entry: the
  task proposer proposes the user's next goal in the scenario, tool
  synthesis imports the conversation's tools and adds what the task needs
  (or synthesizes a set when there are none), and the user simulator, who
  sees the transcript, carries the conversation on toward that goal. A
  conversation that ends with an unanswered user message keeps it as the
  next user turn (``pending_user_message``), so the agent answers it first.
  (The starting states are built in ``dialogforge.runs.planning.conversation_states``.)
* BFCL entry: the task is its questions, in order (goal, one subtask and
  one rubric item per question, expected tools from its ``path``), so the
  trajectory starts after task proposal. The first question is sent
  verbatim as the first user turn (``pending_user_message``); the user
  simulator then reveals the later ones, as BFCL intends, one at a time.

Turn counters start at the imported counts, so ``--max-turns`` bounds the
whole dialogue. A bad line stops everything before anything is written:
one line naming the file, the line and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dialogforge.errors import DialogforgeError, ToolFileError
from dialogforge.inputs.seed_tools import tool_spec_from_entry, load_tools_file
from dialogforge.records import Message, RubricItem, Task, ToolCall, ToolSpec

# BFCL README: which func_doc file holds each class's tools.
BFCL_CLASS_FILES = {
    "GorillaFileSystem": "gorilla_file_system",
    "TravelAPI": "travel_booking",
    "TwitterAPI": "posting_api",
    "MessageAPI": "message_api",
    "TicketAPI": "ticket_api",
    "TradingBot": "trading_bot",
    "VehicleControlAPI": "vehicle_control",
    "MathAPI": "math_api",
}
BFCL_CLASS_DOMAINS = {
    "GorillaFileSystem": "a file system",
    "TravelAPI": "travel booking",
    "TwitterAPI": "a social media posting service",
    "MessageAPI": "a messaging service",
    "TicketAPI": "a support ticket system",
    "TradingBot": "a stock trading bot",
    "VehicleControlAPI": "vehicle controls",
    "MathAPI": "a math toolkit",
}
DOMAIN_CHARS = 300


class ConversationError(DialogforgeError):
    """A conversations file, or one of its lines, cannot be imported."""


@dataclass(frozen=True)
class ImportedConversation:
    where: str  # "FILE line N"
    kind: str  # "openai" or "bfcl"
    messages: list[Message]
    tools: list[ToolSpec]
    pending_user_message: str | None = None
    world: dict[str, Any] = field(default_factory=dict)
    domain: str | None = None
    task: Task | None = None


def load_conversations(path: str | Path) -> list[ImportedConversation]:
    """Every line of ``path``, validated; the first bad line raises with its number."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConversationError(f"{path}: cannot read conversations file ({exc.__class__.__name__})") from exc
    conversations = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConversationError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(entry, dict):
            raise ConversationError(f"{where}: expected a JSON object")
        if "question" in entry:
            conversations.append(_bfcl(path, number, entry))
        elif "messages" in entry:
            conversations.append(_openai(path, number, entry))
        else:
            raise ConversationError(f"{where}: neither an OpenAI conversation (\"messages\") nor a BFCL entry (\"question\")")
    if not conversations:
        raise ConversationError(f"{path}: no conversations in file")
    return conversations


# ---------------------------------------------------------------- OpenAI conversations


def _openai(path: Path, number: int, entry: dict[str, Any]) -> ImportedConversation:
    where = f"{path}: line {number}"
    raw_messages = entry["messages"]
    if not isinstance(raw_messages, list) or not raw_messages:
        raise ConversationError(f"{where}: \"messages\" must be a non-empty list")
    tools = _openai_tools(path, number, entry.get("tools"))
    system: list[str] = []
    messages: list[Message] = []
    open_calls: dict[str, str] = {}  # tool call id -> tool name, awaiting a result
    for position, raw in enumerate(raw_messages, start=1):
        here = f"{where}: message {position}"
        if not isinstance(raw, dict):
            raise ConversationError(f"{here}: expected a JSON object")
        role = raw.get("role")
        content = _text(here, raw.get("content"))
        if role == "system":
            if messages:
                raise ConversationError(f"{here}: a system message after the dialogue started")
            system.append(content)
            continue
        if role not in ("user", "assistant", "tool"):
            raise ConversationError(f"{here}: unknown role {role!r} (system, user, assistant or tool)")
        if open_calls and role != "tool":
            raise ConversationError(f"{here}: tool call {next(iter(open_calls))!r} has no tool result before this {role} message")
        if not messages and role != "user":
            raise ConversationError(f"{here}: the dialogue must start with a user message, not {role}")
        if role == "user":
            if messages and messages[-1].role == "user":
                raise ConversationError(f"{here}: two user messages in a row (merge them)")
            messages.append(Message(role="user", content=content))
        elif role == "assistant":
            calls = _tool_calls(here, raw.get("tool_calls"))
            reasoning = raw.get("reasoning_content", raw.get("reasoning"))
            if not content and not calls:
                raise ConversationError(f"{here}: an assistant message with neither content nor tool calls")
            open_calls = {call.id: call.name for call in calls}
            messages.append(Message(role="assistant", content=content, tool_calls=calls,
                                    reasoning=reasoning if isinstance(reasoning, str) else None))
        else:
            call_id = raw.get("tool_call_id")
            if call_id not in open_calls:
                raise ConversationError(f"{here}: tool result for {call_id!r}, which no open tool call has")
            name = open_calls.pop(call_id)
            messages.append(Message(role="tool", content=content, tool_call_id=call_id, name=raw.get("name") or name))
    if open_calls:
        raise ConversationError(f"{where}: tool call {next(iter(open_calls))!r} has no tool result")
    pending = None
    if messages[-1].role == "user":  # unanswered: the next user turn sends it, the agent answers it
        pending = messages.pop().content
    domain = " ".join(" ".join(system).split()) or None
    return ImportedConversation(f"{path} line {number}", "openai", messages, tools, pending, domain=domain)


def _text(here: str, content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ConversationError(f"{here}: only text content can be imported")
            parts.append(part["text"])
        return "\n".join(parts)
    raise ConversationError(f"{here}: content must be a string, null or a list of text parts")


def _tool_calls(here: str, raw: Any) -> list[ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConversationError(f"{here}: \"tool_calls\" must be a list")
    calls = []
    for k, item in enumerate(raw, start=1):
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not isinstance(item.get("id"), str):
            raise ConversationError(f"{here}: tool call {k} needs an \"id\" and a \"function\" with a \"name\"")
        arguments = function.get("arguments", {})
        raw_arguments = None
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                arguments = parsed
            else:
                arguments, raw_arguments = {}, function["arguments"]
        elif not isinstance(arguments, dict):
            arguments, raw_arguments = {}, json.dumps(arguments)
        calls.append(ToolCall(id=item["id"], name=function["name"], arguments=arguments, raw_arguments=raw_arguments))
    ids = [c.id for c in calls]
    if len(set(ids)) != len(ids):
        raise ConversationError(f"{here}: two tool calls share an id")
    return calls


def _openai_tools(path: Path, number: int, raw: Any) -> list[ToolSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConversationError(f"{path}: line {number}: \"tools\" must be a list")
    try:
        tools = [tool_spec_from_entry(path, f"line {number}: tool {k}", item) for k, item in enumerate(raw, start=1)]
    except ToolFileError as exc:
        raise ConversationError(str(exc)) from exc
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConversationError(f"{path}: line {number}: duplicate tool name {duplicates[0]!r}")
    return tools


# ---------------------------------------------------------------- BFCL entries


def _bfcl(path: Path, number: int, entry: dict[str, Any]) -> ImportedConversation:
    where = f"{path}: line {number}"
    questions = _bfcl_questions(where, entry.get("question"))
    classes = entry.get("involved_classes") or []
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ConversationError(f"{where}: \"involved_classes\" must be a list of class names")
    world = entry.get("initial_config") or {}
    if not isinstance(world, dict):
        raise ConversationError(f"{where}: \"initial_config\" must be an object")
    excluded = set(entry.get("excluded_function") or [])
    tools = [t for t in _bfcl_tools(path, where, classes) if t.name not in excluded]
    names = {t.name for t in tools}
    expected = sorted({step.rsplit(".", 1)[-1] for step in entry.get("path") or [] if isinstance(step, str)} & names)
    try:
        task = Task(
            goal="The user works through these requests, in order: "
                 + " ".join(f"({i}) {q}" for i, q in enumerate(questions, start=1)),
            subtasks=questions,
            rubric=[RubricItem(criterion=f"Request {i} is carried out with the tools: {q[:200]}") for i, q in enumerate(questions, start=1)],
            expected_tools=expected,
        )
    except ValidationError as exc:
        raise ConversationError(f"{where}: cannot make a task of the questions ({exc.errors()[0]['msg']})") from exc
    domain = " and ".join(BFCL_CLASS_DOMAINS.get(c, c) for c in classes) or None
    return ImportedConversation(f"{path} line {number}", "bfcl", [], tools, questions[0], world=world, domain=domain, task=task)


def _bfcl_questions(where: str, raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise ConversationError(f"{where}: \"question\" must be a non-empty list of turns")
    questions = []
    for k, turn in enumerate(raw, start=1):
        if not isinstance(turn, list) or not all(isinstance(m, dict) for m in turn):
            raise ConversationError(f"{where}: question turn {k} must be a list of messages")
        texts = [m.get("content") for m in turn if m.get("role") == "user"]
        if not all(isinstance(t, str) for t in texts):
            raise ConversationError(f"{where}: question turn {k} has a user message without text content")
        text = "\n".join(t for t in texts if t.strip())
        if text:
            questions.append(text)
    if not questions:
        raise ConversationError(f"{where}: no question turn has a user message")
    return questions


def _bfcl_tools(path: Path, where: str, classes: list[str]) -> list[ToolSpec]:
    func_doc = path.parent / "func_doc"
    tools: list[ToolSpec] = []
    seen: set[str] = set()
    for name in classes:
        stem = BFCL_CLASS_FILES.get(name)
        if stem is None:
            raise ConversationError(f"{where}: unknown BFCL class {name!r} (known: {', '.join(sorted(BFCL_CLASS_FILES))})")
        doc = func_doc / f"{stem}.jsonl"
        if not doc.is_file():
            raise ConversationError(f"{where}: class {name} needs {doc} (func_doc/ beside the conversations file)")
        try:
            specs = load_tools_file(doc)
        except ToolFileError as exc:
            raise ConversationError(f"{where}: class {name}: {exc}") from exc
        for spec in specs:
            if spec.name not in seen:
                seen.add(spec.name)
                tools.append(spec)
    return tools
