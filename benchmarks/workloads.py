"""The realistic workloads of ``benchmarks/throughput.py``: dialogues as a long run has them in flight.

A throughput figure taken on fresh, two-message dialogues with 100-byte tool
results flatters the orchestrator: real ones carry long histories, tool
results the size of real APIs' and a growing world. So the graph workers run
these instead:

- ``simulated``: the LLM world model over a tool library for an online store
  whose result schemas are shaped like a real commerce API's (an order with its
  addresses, line items, payments and tracking; searches of three summaries):
  results of 1-3 KB, which the world model then remembers in every later
  request, within its token budget.
- ``sql``: Tool-Exec over the bookstore example database
  (``python -m dialogforge.cli.build_example_dbs DIR``): each trajectory on its
  own copy, writes logged and replayed.
- ``light``: the old workload (fresh dialogues, tools synthesized per
  trajectory, small results), kept to compare with earlier figures.

Warm starts: ``simulated`` and ``sql`` trajectories start where a finished
scripted dialogue (run here in-process first, no HTTP) proposed its second or a
later task, so from the window's first second every dialogue in flight carries
its earlier tasks' messages (20+), world or write log, as in a long run's steady
state; each goes on for its current task and two more, with a seed of its own.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

SOURCES = 48  # finished scripted dialogues the warm starts are cut from
DOMAIN = "customer support for an online store"

# ------------------------------------------------------------ the store's tool library

_ADDRESS = {"type": "object", "properties": {
    "name": {"type": "string"}, "line1": {"type": "string", "minLength": 18}, "line2": {"type": "string"},
    "city": {"type": "string"}, "region": {"type": "string"}, "postal_code": {"type": "string"},
    "country": {"type": "string", "enum": ["US", "CA", "GB", "DE", "FR"]}, "phone": {"type": "string", "minLength": 12},
}, "required": ["name", "line1", "city", "postal_code", "country"]}
_MONEY = {"type": "number", "minimum": 1, "maximum": 900}
_ITEM = {"type": "object", "properties": {
    "line_id": {"type": "string"}, "product_id": {"type": "string"}, "sku": {"type": "string"},
    "title": {"type": "string", "minLength": 28}, "quantity": {"type": "integer", "minimum": 1, "maximum": 4},
    "unit_price": _MONEY, "discount": {"type": "number", "minimum": 0, "maximum": 20},
    "tax_rate": {"type": "number", "minimum": 0, "maximum": 1},
    "fulfillment_status": {"type": "string", "enum": ["unfulfilled", "packed", "shipped", "delivered", "returned"]},
}, "required": ["line_id", "product_id", "sku", "title", "quantity", "unit_price", "fulfillment_status"]}
_EVENT = {"type": "object", "properties": {
    "at": {"type": "string", "format": "date-time"}, "location": {"type": "string"},
    "status": {"type": "string", "enum": ["label_created", "picked_up", "in_transit", "out_for_delivery", "delivered"]},
    "description": {"type": "string", "minLength": 40},
}, "required": ["at", "status", "description"]}
ORDER = {"type": "object", "properties": {
    "order_id": {"type": "string"}, "customer_id": {"type": "string"},
    "status": {"type": "string", "enum": ["open", "on_hold", "closed"]},
    "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
    "currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
    "subtotal": _MONEY, "tax": _MONEY, "shipping_cost": _MONEY, "total": _MONEY,
    "shipping_address": _ADDRESS, "billing_address": _ADDRESS,
    "items": {"type": "array", "items": _ITEM, "minItems": 2, "maxItems": 3},
    "payments": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "object", "properties": {
        "payment_id": {"type": "string"}, "method": {"type": "string", "enum": ["card", "paypal", "gift_card"]},
        "amount": _MONEY, "captured_at": {"type": "string", "format": "date-time"},
        "card_last4": {"type": "string"}}, "required": ["payment_id", "method", "amount"]}},
    "tracking": {"type": "object", "properties": {
        "carrier": {"type": "string", "enum": ["UPS", "FedEx", "DHL", "USPS"]}, "tracking_number": {"type": "string", "minLength": 18},
        "estimated_delivery": {"type": "string", "format": "date"},
        "events": {"type": "array", "items": _EVENT, "minItems": 2, "maxItems": 3}}},
    "notes": {"type": "string", "minLength": 60},
}, "required": ["order_id", "customer_id", "status", "created_at", "total", "items", "shipping_address"]}
CUSTOMER = {"type": "object", "properties": {
    "customer_id": {"type": "string"}, "name": {"type": "string"}, "email": {"type": "string", "minLength": 16},
    "phone": {"type": "string", "minLength": 12}, "status": {"type": "string", "enum": ["open", "on_hold", "closed"]},
    "tier": {"type": "string", "enum": ["standard", "silver", "gold"]}, "created_at": {"type": "string", "format": "date-time"},
    "default_address": _ADDRESS, "lifetime_value": _MONEY, "orders_count": {"type": "integer", "minimum": 1, "maximum": 80},
    "marketing_opt_in": {"type": "boolean"}, "notes": {"type": "string", "minLength": 60},
}, "required": ["customer_id", "name", "email", "status"]}
PRODUCT = {"type": "object", "properties": {
    "product_id": {"type": "string"}, "sku": {"type": "string"}, "title": {"type": "string", "minLength": 28},
    "description": {"type": "string", "minLength": 160}, "status": {"type": "string", "enum": ["open", "on_hold", "closed"]},
    "price": _MONEY, "currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
    "stock": {"type": "integer", "minimum": 0, "maximum": 400},
    "dimensions": {"type": "object", "properties": {"weight_kg": _MONEY, "width_cm": _MONEY, "height_cm": _MONEY, "depth_cm": _MONEY}},
    "categories": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3},
    "rating": {"type": "number", "minimum": 1, "maximum": 5}, "reviews_count": {"type": "integer", "minimum": 0, "maximum": 900},
}, "required": ["product_id", "sku", "title", "price", "stock"]}
RETURN = {"type": "object", "properties": {
    "return_id": {"type": "string"}, "order_id": {"type": "string"}, "status": {"type": "string", "enum": ["open", "on_hold", "closed"]},
    "reason": {"type": "string", "minLength": 40}, "items": {"type": "array", "items": _ITEM, "minItems": 1, "maxItems": 2},
    "refund_amount": _MONEY, "label_url": {"type": "string", "minLength": 48}, "created_at": {"type": "string", "format": "date-time"},
}, "required": ["return_id", "order_id", "status", "refund_amount"]}


def _all_required(schema: dict[str, Any]) -> dict[str, Any]:
    """Every field always present, nested objects too: a real API returns whole records."""
    if schema.get("type") == "object" and "properties" in schema:
        props = {k: _all_required(v) for k, v in schema["properties"].items()}
        return {**schema, "properties": props, "required": list(props)}
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return {**schema, "items": _all_required(schema["items"])}
    return schema


def _summary(record: dict[str, Any], keep: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {k: record["properties"][k] for k in keep},
            "required": [k for k in record["required"] if k in keep]}


def _search(record: dict[str, Any], keep: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "results": {"type": "array", "items": _summary(record, keep), "minItems": 3, "maxItems": 3},
        "total": {"type": "integer", "minimum": 3, "maximum": 60}, "next_cursor": {"type": "string"}},
        "required": ["results", "total"]}


def _tool(name: str, description: str, parameters: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters},
            "result_schema": result, "source": "seed"}


def _id(noun: str) -> dict[str, Any]:
    return {"type": "object", "properties": {f"{noun}_id": {"type": "string", "description": f"Identifier of the {noun}."}},
            "required": [f"{noun}_id"]}


def _query() -> dict[str, Any]:
    return {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 50}},
            "required": ["query"]}


def _update(noun: str) -> dict[str, Any]:
    return {"type": "object", "properties": {f"{noun}_id": {"type": "string"},
                                             "status": {"type": "string", "enum": ["open", "on_hold", "closed"]}},
            "required": [f"{noun}_id", "status"]}


def store_tools() -> list[dict[str, Any]]:
    """Ten tools over orders, customers, products and returns, results shaped like a commerce API's."""
    order, customer, product, ret = (_all_required(r) for r in (ORDER, CUSTOMER, PRODUCT, RETURN))
    return [
        _tool("search_order", "Search orders by customer name, email, product or order number.", _query(),
              _search(order, ["order_id", "customer_id", "status", "created_at", "total", "currency", "items"])),
        _tool("get_order", "Get an order with its items, addresses, payments and tracking.", _id("order"), order),
        _tool("update_order", "Change an order's status (hold, reopen or close it).", _update("order"), order),
        _tool("search_customer", "Search customers by name, email or phone.", _query(),
              _search(customer, ["customer_id", "name", "email", "status", "tier", "default_address"])),
        _tool("get_customer", "Get a customer's profile.", _id("customer"), customer),
        _tool("update_customer", "Change a customer's account status.", _update("customer"), customer),
        _tool("search_product", "Search the catalogue.", _query(),
              _search(product, ["product_id", "sku", "title", "price", "stock", "status", "rating", "categories"])),
        _tool("get_product", "Get a product with its description, stock and dimensions.", _id("product"), product),
        _tool("create_return", "Open a return for items of an order.",
              {"type": "object", "properties": {"name": {"type": "string"}, "notes": {"type": "string"},
                                                "quantity": {"type": "integer", "minimum": 1}}, "required": ["name"]}, ret),
        _tool("get_return", "Get a return and its refund.", _id("return"), ret),
    ]


def store_library() -> Any:
    from dialogforge.inputs.tool_library import ToolLibrary
    from dialogforge.records import ToolSpec

    return ToolLibrary(name="online-store-bench", domain=DOMAIN, tools=[ToolSpec.model_validate(t) for t in store_tools()])


def sql_domain_db(workdir: Path) -> Path:
    """The bookstore example database, built into ``workdir``."""
    from dialogforge.sqltools.build import build_examples

    paths = build_examples(workdir / "examples")
    return next(p for p in paths if p.stem == "bookstore")


# ------------------------------------------------------------ warm starts


def warm_cuts(workload: str, workdir: Path, seed: int = 1) -> tuple[list[Any], dict[str, Any]]:
    """The states warm starts are cut from (see the module docstring) and the settings they run with
    (for Tool-Exec: where its domain is). ``light`` has none: its dialogues start fresh."""
    from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
    from dialogforge.records import ToolExec
    from dialogforge.runs.generate import generate

    if workload == "light":
        return [], {}
    scripted = ModelsConfig(default=ModelConfig(backend="scripted"))
    source_db = workdir / f"warm-{workload}.db"
    extra: dict[str, Any] = {}
    if workload == "sql":
        extra = {"tool_exec": ToolExec.SQL.value, "domain_db": str(sql_domain_db(workdir))}
        result = generate(source_db, GenerationSettings(n=SOURCES, seed=seed, concurrency=16, **extra), scripted)
    else:
        settings = GenerationSettings(n=SOURCES, seed=seed, concurrency=16, domains=[DOMAIN])
        result = generate(source_db, settings, scripted, tool_libraries=[store_library()])
    cuts = [cut for thread in result.thread_ids for cut in _task_starts(source_db, thread)]
    if not cuts:
        raise SystemExit(f"{workload}: no scripted dialogue reached a second task; raise SOURCES")
    return cuts, extra


def expand(workload: str, cuts: list[Any], count: int, seed: int = 1) -> list[Any]:
    """``count`` starting states: the cuts in turn, each going on for its task and two more, on a seed
    of its own (``light``: fresh planned states)."""
    from dialogforge.config import GenerationSettings
    from dialogforge.runs.planning import initial_state

    if workload == "light":
        settings = GenerationSettings(n=count, seed=seed)
        return [initial_state(settings, i, []) for i in range(count)]
    rng = random.Random(seed)
    states = []
    for i in range(count):
        state = cuts[i % len(cuts)]
        scenario = state.scenario.model_copy(update={"target_tasks": len(state.tasks) + 2})
        states.append(state.model_copy(update={"seed": rng.randrange(2**31), "scenario": scenario}))
    return states


def _task_starts(db: Path, thread_id: str) -> list[Any]:
    """The thread's states right after its second, third... task was proposed (next: tool synthesis)."""
    from dialogforge.checkpoints.store_kinds import store_saver
    from dialogforge.graphs.builder import compile_graph
    from dialogforge.graphs.state import DialogueState
    from dialogforge.records import Mode

    with store_saver(db) as saver:
        graph = compile_graph(Mode.USER, saver)
        snapshots = list(graph.get_state_history({"configurable": {"thread_id": thread_id}}))
    return [DialogueState.model_validate(s.values) for s in reversed(snapshots)
            if s.next == ("synthesize_tools",) and len(s.values.get("tasks") or []) >= 2
            and len(s.values.get("messages") or []) >= 20]


def save_cuts(path: Path, states: list[Any], extra: dict[str, Any]) -> None:
    path.write_text(json.dumps({"extra": extra, "states": [s.model_dump(mode="json") for s in states]}))


def load_cuts(path: Path) -> tuple[list[Any], dict[str, Any]]:
    from dialogforge.graphs.state import DialogueState

    data = json.loads(path.read_text())
    return [DialogueState.model_validate(s) for s in data["states"]], data["extra"]


def history_lengths(states: list[Any]) -> tuple[float, int]:
    lengths = [len(s.messages) for s in states] or [0]
    return sum(lengths) / len(lengths), max(lengths)


def agent_request(state: Any | None) -> tuple[list, dict]:
    """The agent's request for ``state`` (system prompt, visible history, tools bound): what most calls are."""
    from langchain_core.messages import SystemMessage

    from dialogforge.context_windows import agent_view, agent_window
    from dialogforge.models.convert import to_langchain
    from dialogforge.nodes.run_agent import agent_system_prompt
    from dialogforge.tokens import MESSAGE_OVERHEAD, estimate_json_tokens, estimate_tokens

    if state is None:  # the light workload's: a short dialogue, four small tools
        return _light_request()
    system = agent_system_prompt(state)
    tools = [t.openai_tool() for t in state.tools]
    fixed = estimate_tokens(system) + MESSAGE_OVERHEAD + estimate_json_tokens(tools)  # as run_agent counts it
    window = agent_window(state.messages, fixed=fixed, budget=state.limits.agent_context_tokens)
    shown, reasoning_from = agent_view(state.messages, len(state.messages), window)
    return [SystemMessage(system), *to_langchain(shown, reasoning_from=reasoning_from)], {"tools": tools, "seed": 7}


def _light_request() -> tuple[list, dict]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    from dialogforge.nodes.prompting import render

    tools = [{"type": "function", "function": {
        "name": f"{verb}_order", "description": f"{verb.title()} an order of the online store.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}},
                       "required": ["order_id"]}}} for verb in ("get", "update", "cancel", "search")]
    messages = [
        SystemMessage(render("run_agent", domain=DOMAIN, reference_time="2026-03-04T10:15:00Z", language="")),
        HumanMessage("Hi, I ordered a lamp last week and it still has not shipped. Order A1234."),
        AIMessage("", tool_calls=[{"id": "call_1", "name": "get_order", "args": {"order_id": "A1234"}, "type": "tool_call"}]),
        ToolMessage(json.dumps({"order_id": "A1234", "status": "processing", "items": ["desk lamp"], "eta": "2026-03-09"}), tool_call_id="call_1"),
        AIMessage("Your order A1234 (a desk lamp) is still processing; it should ship by March 9."),
        HumanMessage("Can you add a note asking for gift wrapping, and tell me if that delays it?"),
        AIMessage("", tool_calls=[{"id": "call_2", "name": "update_order", "args": {"order_id": "A1234", "note": "gift wrap"}, "type": "tool_call"}]),
        ToolMessage(json.dumps({"order_id": "A1234", "updated": True}), tool_call_id="call_2"),
    ]
    return messages, {"tools": tools, "seed": 7}


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="df-bench-"))
