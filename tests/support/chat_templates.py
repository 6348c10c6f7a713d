"""The chat templates TRL ships in its wheel, rendered the way transformers' ``apply_chat_template`` does.

``trl_templates()`` downloads the pinned TRL wheel once per machine
(``pip download --no-deps``: no weights, no tokenizer) into a cache directory
and returns the folder of its ``trl/chat_templates/*.jinja``; it skips, with
the reason, only when PyPI cannot be reached. ``render`` compiles a template in
the environment transformers builds (``utils/chat_template_utils.py``:
``ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`` with the
``{% generation %}`` extension and ``loopcontrols``, a ``tojson`` filter that
does not escape non-ASCII, ``raise_exception`` and ``strftime_now``) and
renders it with ``messages``, ``tools``, ``documents`` and
``add_generation_prompt`` as transformers passes them.

``RULES`` says, per template, read from its source, how it writes a call's
arguments, where it reads reasoning, and whether it applies ``tojson`` to a
tool result, so a test can check a rendering without trusting the exporter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
import pytest
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

TRL_VERSION = "1.16.0"
_NETWORK_TROUBLE = ("Could not fetch", "NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                    "Connection refused", "Max retries exceeded", "timed out", "ConnectTimeout", "ProxyError")


def cache_root() -> Path:
    base = os.environ.get("DIALOGFORGE_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dialogforge-tests")
    return Path(base)


def trl_templates() -> Path:
    """The ``chat_templates`` folder of the pinned TRL wheel, downloaded on first use."""
    target = cache_root() / f"trl-{TRL_VERSION}" / "chat_templates"
    if target.is_dir() and any(target.glob("*.jinja")):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", work,
                 f"trl=={TRL_VERSION}"], capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip(f"PyPI unreachable: pip download trl=={TRL_VERSION} timed out after 300 s")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            if any(sign in done.stderr for sign in _NETWORK_TROUBLE):
                pytest.skip(f"PyPI unreachable: pip download trl=={TRL_VERSION} failed: {tail[0]}")
            pytest.fail(f"pip download trl=={TRL_VERSION} failed: {done.stderr[-2000:]}")
        wheel = next(Path(work).glob("trl-*.whl"))
        unpacked = Path(work) / "chat_templates"
        unpacked.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("trl/chat_templates/") and name.endswith(".jinja"):
                    (unpacked / Path(name).name).write_bytes(archive.read(name))
        try:
            os.rename(unpacked, target)  # atomic: a concurrent run either wins or finds it there
        except OSError:
            if not target.is_dir():
                raise
    return target


# ------------------------------------------------------------------ transformers' environment


class _Generation(Extension):
    """``{% generation %}...{% endgeneration %}``: transformers' AssistantTracker tag, here only rendering its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Any) -> str:
        return caller()


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


_ENV = environment()
_COMPILED: dict[str, jinja2.Template] = {}


def render(template_path: Path, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
    key = str(template_path)
    if key not in _COMPILED:
        _COMPILED[key] = _ENV.from_string(template_path.read_text(encoding="utf-8"))
    return _COMPILED[key].render(messages=messages, tools=tools, documents=None, add_generation_prompt=False,
                                 bos_token="<bos>", eos_token="<eos>")


# ------------------------------------------------------------------ what each template reads


@dataclass(frozen=True)
class Rules:
    arguments: Literal["json", "parameters", "glm"]  # a JSON object; <parameter=k> blocks; <arg_key>/<arg_value> pairs
    reasoning: Literal["all", "after_last_user", "last_message", "none"]
    results: Literal["text", "tojson"] = "text"


RULES: dict[str, Rules] = {
    "qwen3.jinja": Rules("json", "after_last_user"),
    "qwen3_training.jinja": Rules("json", "all"),
    "qwen3_5_think.jinja": Rules("parameters", "after_last_user"),
    "qwen3_5_think_training.jinja": Rules("parameters", "all"),
    "qwen3_5_nothink.jinja": Rules("parameters", "after_last_user"),
    "qwen3_5_nothink_training.jinja": Rules("parameters", "all"),
    "qwen3_6.jinja": Rules("parameters", "after_last_user"),
    "qwen3_6_training.jinja": Rules("parameters", "all"),
    "qwen3_8.jinja": Rules("parameters", "all"),  # preserve_thinking left undefined means kept
    "qwen3_8_training.jinja": Rules("parameters", "all"),
    "glm4moe.jinja": Rules("glm", "after_last_user"),
    "glm4moe_training.jinja": Rules("glm", "after_last_user"),
    "llama3_1.jinja": Rules("json", "none", "tojson"),
    "llama3_2.jinja": Rules("json", "none", "tojson"),
    "gptoss.jinja": Rules("json", "last_message", "tojson"),
    "gptoss_training.jinja": Rules("json", "last_message", "tojson"),
    "deepseekv3.jinja": Rules("json", "none"),
    "deepseekv3_training.jinja": Rules("json", "none"),
}


# ------------------------------------------------------------------ checking a rendering against its trajectory


def trained_span(state: Any) -> list[Any]:
    """The trajectory's messages a sample should hold: no leading system message, up to the last reply."""
    messages = state.messages[1:] if state.messages and state.messages[0].role == "system" else list(state.messages)
    last = max(i for i, m in enumerate(messages) if m.role == "assistant" and not m.tool_calls)
    return messages[: last + 1]


def _once(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def argument_problems(text: str, call: Any, rules: Rules) -> list[str]:
    if call.name not in text:
        return [f"call {call.id}: name {call.name!r} not rendered"]
    if call.raw_arguments is not None:  # only a family that writes arguments as strings keeps these
        once = call.raw_arguments
        return [] if once in text else [f"call {call.id}: raw arguments not rendered"]
    if rules.arguments == "json":
        once = json.dumps(call.arguments, ensure_ascii=False)
        twice = json.dumps(once, ensure_ascii=False)[1:-1]
        if once not in text:
            return [f"call {call.id}: arguments {once} not rendered"]
        if '"' in once and twice in text:
            return [f"call {call.id}: arguments encoded twice"]
        return []
    pieces = [f"<parameter={k}>\n{_once(v)}\n</parameter>" if rules.arguments == "parameters"
              else f"<arg_key>{k}</arg_key>\n<arg_value>{_once(v)}</arg_value>" for k, v in call.arguments.items()]
    return [f"call {call.id}: argument piece {p!r} not rendered" for p in pieces if p not in text]


def result_problems(text: str, message: Any, rules: Rules) -> list[str]:
    content = message.content
    if rules.results == "tojson":
        try:
            value = json.loads(content)
        except ValueError:
            value = content
        expected = json.dumps(value if isinstance(value, (dict, list)) else content, ensure_ascii=False)
    else:
        expected = content.strip()
    return [] if expected in text else [f"result of {message.tool_call_id} not rendered as {expected[:60]!r}"]


def reads_reasoning(rules: Rules, index: int, span: list[Any]) -> bool:
    """Whether ``rules``' template renders the reasoning of the trajectory's message ``index``."""
    if rules.reasoning == "all":
        return True
    if rules.reasoning == "last_message":
        return index == len(span) - 1
    if rules.reasoning == "after_last_user":
        return index > max(i for i, m in enumerate(span) if m.role == "user")
    return False


def rendering_problems(template: Path, rules: Rules, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                       state: Any, *, expect_reasoning: bool, left_out: set[str]) -> list[str]:
    """Why one exported sample does not render right through ``template``; empty when it does.

    Judged against the trajectory, not the export: every user message, every call's arguments
    encoded once, every result, and (``expect_reasoning``) each reasoning where the template
    reads it. ``left_out``: ids of calls the export is meant to leave out, with their results."""
    try:
        text = render(template, messages, tools)
    except Exception as exc:  # any template failure is the finding
        return [f"render error: {type(exc).__name__}: {exc}"]
    problems: list[str] = []
    span = trained_span(state)
    for i, m in enumerate(span):
        if m.role == "user" and m.content.strip() not in text:
            problems.append(f"user message {m.content[:40]!r} not rendered")
        for call in m.tool_calls:
            if call.id not in left_out:
                problems += argument_problems(text, call, rules)
        if m.role == "tool" and m.tool_call_id not in left_out:
            problems += result_problems(text, m, rules)
        kept = not m.tool_calls or any(c.id not in left_out for c in m.tool_calls)
        if expect_reasoning and m.reasoning and kept and reads_reasoning(rules, i, span) and m.reasoning.strip() not in text:
            problems.append(f"reasoning of message {i} not rendered where the template reads it")
    return problems
