"""What makes a tool library usable, one problem per line.

``dialogforge tools check`` prints every problem; ``generate --tool-library``
refuses the file on the first. ``tools build`` runs the same checks on what
it is about to write, so a library it writes always passes them. Checked:

- names: unique, valid function names; a synthesized tool follows the
  paper's rules (get_/search_/create_/update_/delete_, no trivial helpers);
  seed tools are exempt, they describe a real API;
- JSON Schemas: every tool's parameters (an object schema whose required
  parameters exist) and its result schema (a seed tool's own is kept as given);
  every tool has a result schema;
- entity types: each type is a JSON Schema type, and every shared entity in a
  synthesized tool or a predicted result has the library's type for it;
- references: gap additions and predicted results name tools of the
  library, at most 10 gap additions, each once.
"""

from __future__ import annotations

from collections import Counter

from dialogforge.inputs.tool_library import MAX_GAP_ADDITIONS, ToolLibrary
from dialogforge.records import ToolSpec
from dialogforge.tool_checks import entity_types_in, needs_result_schema, result_schema_problem, schema_problem, tool_rule_problem

JSON_TYPES = {"string", "integer", "number", "boolean", "object", "array", "null"}


def library_problems(library: ToolLibrary) -> list[str]:
    return [*_name_problems(library), *_schema_problems(library), *_entity_problems(library), *_reference_problems(library)]


def _where(index: int, tool: ToolSpec) -> str:
    return f"tools[{index}] ({tool.name})"


def _name_problems(library: ToolLibrary) -> list[str]:
    problems = []
    counts = Counter(library.tool_names())
    for name in sorted(n for n, c in counts.items() if c > 1):
        problems.append(f"tool name {name!r} appears {counts[name]} times")
    for i, tool in enumerate(library.tools):
        rule = tool_rule_problem(tool.name) if tool.source == "synthesized" else None
        if rule:
            problems.append(f"{_where(i, tool)}: {rule}")
    if not library.questions and any(t.source == "synthesized" for t in library.tools):
        problems.append("questions: a library with synthesized tools lists the user questions they answer")
    return problems


def _schema_problems(library: ToolLibrary) -> list[str]:
    problems = []
    own = set(library.own_results())
    for i, tool in enumerate(library.tools):
        where = _where(i, tool)
        parameters = schema_problem(tool.function.parameters)
        if parameters:
            problems.append(f"{where}: parameters: {parameters}")
        # A seed tool's own result schema is the real API's, kept as given (BFCL's use draft-4 tuple
        # ``items``, which 2020-12 refuses); what tool preparation wrote must be valid.
        result = None if tool.name in own else result_schema_problem(tool.result_schema)
        if result:
            problems.append(f"{where}: result_schema: {result}")
        elif needs_result_schema(tool):
            problems.append(f"{where}: result_schema: says only \"an object\"; a library gives every tool the "
                            "schema of what it returns (tools build predicts it)")
        if tool.sql is not None:
            problems.append(f"{where}: has a SQL binding; SQL tools come from --domain-db, not a tool library")
    return problems


def _entity_problems(library: ToolLibrary) -> list[str]:
    problems = [f"entity_types: {name!r} has type {kind!r}, which is not a JSON Schema type"
                for name, kind in library.entity_types.items() if kind not in JSON_TYPES]
    own = set(library.own_results())
    for i, tool in enumerate(library.tools):
        schemas = []
        if tool.source != "seed":
            schemas.append(("parameters", tool.function.parameters))
        if tool.name not in own:
            schemas.append(("result_schema", tool.result_schema))
        for part, schema in schemas:
            for name, kind in entity_types_in(schema):
                expected = library.entity_types.get(name)
                if expected is None:
                    problems.append(f"{_where(i, tool)}: {part}: shared entity {name!r} is missing from entity_types")
                elif kind != expected:
                    problems.append(f"{_where(i, tool)}: {part}: {name!r} is {kind!r}, but entity_types says {expected!r}")
    return problems


def _reference_problems(library: ToolLibrary) -> list[str]:
    problems = []
    names = set(library.tool_names())
    gap = [g.tool for g in library.gap_additions]
    if len(gap) > MAX_GAP_ADDITIONS:
        problems.append(f"gap_additions: {len(gap)} tools; the gap analysis adds at most {MAX_GAP_ADDITIONS}")
    for i, name in enumerate(gap):
        if name not in names:
            problems.append(f"gap_additions[{i}]: names {name!r}, which is not a tool of the library")
        elif gap.index(name) != i:
            problems.append(f"gap_additions[{i}]: {name!r} is listed twice")
        elif next(t for t in library.tools if t.name == name).source == "seed":
            problems.append(f"gap_additions[{i}]: {name!r} is a seed tool; the gap analysis adds synthesized ones")
    for i, name in enumerate(library.predicted_results):
        if name not in names:
            problems.append(f"predicted_results[{i}]: names {name!r}, which is not a tool of the library")
    return problems
