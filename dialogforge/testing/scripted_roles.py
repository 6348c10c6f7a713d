"""What the scripted model says in each role, as pure functions of (context, rng).

The context is the JSON block every node puts in its prompt, so the scripted
model works the same in-process and behind the stub HTTP server. Behaviour
is chosen to exercise the whole graph: incremental subtasks, clarification
turns, several tool calls per request, invalid arguments, several tasks.
"""

from __future__ import annotations

import random
import re
from typing import Any

from dialogforge.testing.scripted_backend import tool_result

_STOP = {"a", "an", "the", "for", "of", "and", "in", "on", "to", "with", "online", "service", "services"}
_VERBS = ["get", "search", "create", "update", "delete"]


def domain_nouns(domain: str) -> list[str]:
    words = [w for w in re.findall(r"[a-z]+", domain.lower()) if w not in _STOP and len(w) > 2]
    nouns = [w.rstrip("s") for w in words][:3]
    return nouns or ["record"]


def humanize(tool_name: str) -> str:
    return tool_name.replace("_", " ")


# ------------------------------------------------------------ task proposer


def propose_task(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    scenario = ctx.get("scenario") or {}
    domain = scenario.get("domain", "general help")
    difficulty = scenario.get("difficulty", "medium")
    tools = [t["name"] for t in ctx.get("tools") or [] if isinstance(t, dict) and t.get("name")]
    count = {"easy": (1, 2), "medium": (2, 3), "hard": (3, 5)}.get(difficulty, (2, 3))
    n = rng.randint(*count)
    earlier = len(ctx.get("previous_tasks") or [])
    used = (ctx.get("goals_already_proposed") or {}).get("tools_used") or {}
    if tools and used:  # other users' goals already use some tools: favour the others
        chosen = rng.choices(tools, weights=[1.0 / (1 + used.get(name, 0)) for name in tools], k=n)
        subtasks = [f"{humanize(name)} for the {rng.choice(['current', 'latest', 'pending'])} case" for name in chosen]
    elif tools:
        chosen = [rng.choice(tools) for _ in range(n)]
        subtasks = [f"{humanize(name)} for the {rng.choice(['current', 'latest', 'pending'])} case" for name in chosen]
    else:
        # Name the steps after tools that do not exist yet, so tool synthesis's
        # gap analysis has something to add.
        chosen = [f"{rng.choice(_VERBS)}_{rng.choice(domain_nouns(domain))}" for _ in range(n)]
        subtasks = [f"{humanize(name)} for the {rng.choice(['current', 'latest', 'pending'])} case" for name in chosen]
    prefix = "Building on the earlier results, the user" if earlier else "The user"
    goal = f"{prefix} wants to " + ", then ".join(subtasks) + f" ({domain}), and confirm the outcome."
    rubric = [{"criterion": f"The assistant completed: {s}", "category": "critical"} for s in subtasks]
    rubric.append({"criterion": "Facts come from tool results, not invention", "category": "structural"})
    rubric.append({"criterion": "Replies are concise and polite", "category": "noncritical"})
    return {"goal": goal, "subtasks": subtasks, "rubric": rubric, "difficulty": difficulty, "expected_tools": sorted(set(chosen))}


# ------------------------------------------------------------ tool synthesizer


def _domain(ctx: dict[str, Any]) -> str:
    """Tool preparation's domain: the library's (``domain``) or the trajectory's scenario."""
    return str(ctx.get("domain") or (ctx.get("scenario") or {}).get("domain") or "records")


def user_questions(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    nouns = domain_nouns(_domain(ctx))
    combos = [(verb, noun, what) for verb in ["check", "find", "change", "open", "cancel", "list"] for noun in nouns
              for what in ["details", "status", "history", "settings", "options", "schedule"]]
    rng.shuffle(combos)
    return {"questions": [f"Can you {verb} my {noun} {what}?" for verb, noun, what in combos[: rng.randint(20, 24)]]}


def _parameters(verb: str, noun: str) -> dict[str, Any]:
    key = {"type": "string", "description": f"Identifier of the {noun}."}
    if verb == "search":
        return {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 50}}, "required": ["query"]}
    if verb == "create":
        return {"type": "object", "properties": {"name": {"type": "string"}, "notes": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}}, "required": ["name"]}
    if verb == "update":
        return {"type": "object", "properties": {f"{noun}_id": key, "status": {"type": "string", "enum": ["open", "on_hold", "closed"]}}, "required": [f"{noun}_id", "status"]}
    return {"type": "object", "properties": {f"{noun}_id": key}, "required": [f"{noun}_id"]}


def tool_drafts(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    existing = {t.get("name") for t in ctx.get("existing_tools") or [] if isinstance(t, dict)}
    fixing = [f["tool"]["name"] for f in ctx.get("fix_these") or [] if isinstance(f, dict) and isinstance(f.get("tool"), dict)]
    wanted = fixing or [w for w in ctx.get("missing_tools") or [] if w not in existing]
    nouns = domain_nouns(_domain(ctx))
    if not wanted:
        pool = [f"{v}_{n}" for n in nouns for v in _VERBS]
        rng.shuffle(pool)
        size = rng.randint(5, 7) if ctx.get("stage") == "draft" else rng.randint(1, 3)
        wanted = [name for name in pool if name not in existing][:size]
        if ctx.get("stage") == "draft" and rng.random() < 0.2:
            wanted.append("get_current_time")  # a trivial helper tool preparation must refuse
    drafts = []
    for name in wanted:
        verb, _, noun = name.partition("_")
        verb = verb if verb in _VERBS else "get"
        params = _parameters(verb, noun or "record")
        if rng.random() < 0.08 and not fixing:
            params = {"type": "objekt", "properties": []}  # a broken schema tool preparation must catch (and have fixed)
        drafts.append({"name": name, "description": f"{verb.capitalize()} {noun} records in the system.", "parameters": params})
    return {"tools": drafts}


def gap_analysis(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The gap stage's drafts, each with the reason the gap analysis gives for it."""
    tools = tool_drafts(ctx, rng)["tools"]
    asked = set(ctx.get("missing_tools") or [])
    for tool in tools:
        why = "the task needs it" if tool["name"] in asked else f"no existing tool can {humanize(tool['name'])}"
        tool["reason"] = f"{why}: requests like these go unserved without it."
    return {"tools": tools}


def result_schemas(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = []
    for tool in ctx.get("tools") or []:
        name = tool.get("name", "get_record")
        verb, _, noun = name.partition("_")
        id_type = "integer" if rng.random() < 0.15 else "string"  # drift the node must reconcile
        record = {"type": "object", "properties": {f"{noun}_id": {"type": id_type}, "status": {"type": "string"}, "updated_at": {"type": "string", "format": "date-time"}}, "required": [f"{noun}_id"]}
        if verb == "search":
            schema = {"type": "object", "properties": {"results": {"type": "array", "items": record}, "total": {"type": "integer"}}, "required": ["results", "total"]}
        elif verb == "delete":
            schema = {"type": "object", "properties": {"deleted": {"type": "boolean"}, f"{noun}_id": {"type": id_type}}, "required": ["deleted"]}
        else:
            schema = record
        out.append({"tool_name": name, "result_schema": schema})
    return {"schemas": out}


# ------------------------------------------------------------ user simulator


def _plan(subtasks: list[str], rng: random.Random) -> list[list[str] | None]:
    """Which subtasks each user turn raises; ``None`` is a follow-up turn."""
    plan: list[list[str] | None] = []
    i = 0
    while i < len(subtasks):
        take = 2 if rng.random() < 0.3 and i + 1 < len(subtasks) else 1
        plan.append(subtasks[i : i + take])
        i += take
        if rng.random() < 0.3:
            plan.append(None)
    return plan


def user_turn(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    subtasks = list(ctx.get("subtasks") or ["get some help"])
    turn = int(ctx.get("turns_on_this_goal") or 0)
    plan = _plan(subtasks, random.Random(str(ctx.get("goal"))))
    if turn >= len(plan):
        return {"user_message": rng.choice(["That's everything, thank you!", "Perfect, that covers it. Thanks!"]), "is_task_complete": True}
    step = plan[turn]
    if step is None:
        return {"user_message": rng.choice(["Could you double-check that and give me the exact details?", "Hmm, what does that mean for me exactly?"]), "is_task_complete": False}
    ask = " and ".join(step)
    opener = "Hi, could you help me" if turn == 0 else rng.choice(["Thanks. Next, could you", "Great. Can you also", "Okay. Now please"])
    return {"user_message": f"{opener} {ask}?", "is_task_complete": False}


# ------------------------------------------------------------ judge (the tool simulator: scripted_backend)


def judgment(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    ok = ctx.get("stop_reason") in {"completed", "agent_finished"} and rng.random() > 0.1
    return {"judgment": "valid" if ok else "invalid", "reasoning": "All critical rubric items are met." if ok else "A critical rubric item is not met."}


# Identifier-like words ("A1", "ZX9041", "INV-204"): what a hallucinated claim usually gets wrong.
_IDENTIFIER = re.compile(r"\b[A-Z]{1,4}-?\d{1,8}\b")


def unsupported_claims(ctx: dict[str, Any]) -> list[str]:
    """Identifiers the judged task's replies state that no user message or tool result the
    agent could see contains (before the reply, from its ``saw_from`` on, and its ``saw_request``)."""
    task = ctx.get("task_number")
    entries = [e for e in ctx.get("transcript") or [] if isinstance(e, dict)]
    missing = []
    for reply in entries:
        if reply.get("role") != "assistant" or reply.get("task") != task or reply.get("tool_calls"):
            continue
        first, request = int(reply.get("saw_from") or 0), reply.get("saw_request")
        evidence = " ".join(str(e.get("content", "")) for e in entries if e.get("role") in ("user", "tool") and (
            first <= int(e.get("n", 0)) < int(reply.get("n", 0)) or e.get("n") == request))
        missing += [word for word in _IDENTIFIER.findall(str(reply.get("content", ""))) if word not in evidence]
    return missing


def task_judgment(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Rubric items are met when the task was seen through; now and then a critical one is not.
    A reply stating an identifier the agent never saw is a hallucination: the task is invalid."""
    finished = ctx.get("task_status") == "completed" or ctx.get("stop_reason") in {"completed", "agent_finished"}
    rubric = [r for r in ctx.get("rubric") or [] if isinstance(r, dict)]
    critical = [r["index"] for r in rubric if r.get("category") == "critical"]
    missed = rng.choice(critical) if critical and rng.random() < 0.1 else None
    invented = unsupported_claims(ctx)
    items = [
        {"index": r["index"], "met": finished and r["index"] != missed,
         "note": "Seen in the tool results." if finished and r["index"] != missed else "Not done in the conversation."}
        for r in rubric
    ]
    if invented:
        for item, r in zip(items, rubric):
            if r.get("category") == "structural":
                item.update(met=False, note=f"{invented[0]} appears in no message the assistant could see.")
    ok = all(item["met"] for item in items if item["index"] in critical) and not invented
    if invented:
        reasoning = f"The reply states {invented[0]}, which nothing the assistant saw supports."
    else:
        reasoning = "All critical rubric items are met." if ok else "A critical rubric item is not met."
    return {"judgment": "valid" if ok else "invalid", "reasoning": reasoning, "items": items}


ROLE_BY_SCHEMA = {
    "ProposedTask": propose_task,
    "UserQuestions": user_questions,
    "LibraryQuestions": user_questions,
    "ToolDrafts": tool_drafts,
    "GapAnalysis": gap_analysis,
    "ResultSchemas": result_schemas,
    "UserTurn": user_turn,
    "ToolResult": tool_result,
    "Judgment": judgment,
    "TaskJudgment": task_judgment,
}
