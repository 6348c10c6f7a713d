"""--language: tags checked where they enter, each role told in its prompt, and the wrong_language rule
catching a turn in another language, on crafted dialogues in German, Japanese and Brazilian Portuguese."""

from __future__ import annotations

import json

import pytest

from dialogforge.config import GenerationSettings
from dialogforge.dataset.language_check import mismatches, prose
from dialogforge.dataset.rules import Rule, check_rules
from dialogforge.errors import ConfigError
from dialogforge.graphs.state import DialogueState
from dialogforge.languages import language_name, normalize_tag
from dialogforge.nodes.prompting import agent_system_prompt
from dialogforge.runs.planning import initial_state
from tests.support.dataset import good_state, reply, user

GERMAN_USER = "Hallo, könnten Sie bitte nachsehen, wo meine Bestellung A1 gerade ist?"
GERMAN_REPLY = "Ihre Bestellung A1 ist unterwegs und kommt voraussichtlich morgen bei Ihnen an."
GERMAN_THANKS = "Vielen Dank, das ist alles, was ich wissen wollte!"
ENGLISH_REPLY = "Your order A1 is on its way and should arrive at your address tomorrow."
JAPANESE_USER = "こんにちは、注文A1が今どこにあるか確認していただけますか？"
JAPANESE_REPLY = "ご注文A1は現在配送中で、明日お届けの予定です。ほかにお手伝いできることはありますか？"
PORTUGUESE_USER = "Olá, você pode verificar onde está o meu pedido A1 agora, por favor?"
PORTUGUESE_REPLY = "O seu pedido A1 já saiu para entrega e deve chegar amanhã no seu endereço."


def dialogue(language: str, *turns: tuple[str, str]) -> DialogueState:
    """A finished, rule-abiding dialogue (good_state's) whose user and assistant texts are ``turns``."""
    base = good_state()
    messages = [user(text) if role == "user" else reply(text) for role, text in turns]
    return base.model_copy(update={"messages": messages, "language": language})


def rules_of(state: DialogueState) -> list[Rule]:
    return [f.rule for f in check_rules(state)]


@pytest.mark.parametrize("given, normal", [("de", "de"), ("pt-br", "pt-BR"), ("JA", "ja"), ("zh_hant", "zh-Hant"),
                                           ("es-419", "es-419"), ("sr-Latn-RS", "sr-Latn-RS")])
def test_tags_are_normalized(given, normal):
    assert normalize_tag(given) == normal


@pytest.mark.parametrize("bad", ["", "german", "de-", "d", "en us", "e1"])
def test_a_bad_tag_is_a_one_line_error(bad):
    with pytest.raises(ConfigError) as caught:
        normalize_tag(bad)
    assert "BCP-47" in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_language_flag_fails_before_anything_is_written(run_cli, tmp_path):
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--n", "1", "--language", "klingon!", "--db", str(db))
    assert result.code == 2 and result.err.startswith("dialogforge: error:") and "BCP-47" in result.err
    assert not db.exists()


def test_a_german_dialogue_in_german_passes():
    state = dialogue("de", ("user", GERMAN_USER), ("assistant", GERMAN_REPLY), ("user", GERMAN_THANKS))
    assert Rule.WRONG_LANGUAGE not in rules_of(state)


def test_an_english_reply_in_a_german_dialogue_is_caught():
    state = dialogue("de", ("user", GERMAN_USER), ("assistant", ENGLISH_REPLY), ("user", GERMAN_THANKS))
    failures = [f for f in check_rules(state) if f.rule is Rule.WRONG_LANGUAGE]
    assert [f.message_index for f in failures] == [1]
    assert "assistant message reads as en" in failures[0].detail and "not de" in failures[0].detail


def test_a_german_user_turn_in_a_japanese_dialogue_is_caught():
    state = dialogue("ja", ("user", JAPANESE_USER), ("assistant", JAPANESE_REPLY), ("user", GERMAN_THANKS))
    found = mismatches(state.messages, "ja")
    assert [(m.message_index, m.role, m.detected) for m in found] == [(2, "user", "de")]
    assert not mismatches(dialogue("ja", ("user", JAPANESE_USER), ("assistant", JAPANESE_REPLY)).messages, "ja")


def test_a_regional_tag_is_checked_by_its_language():
    state = dialogue("pt-BR", ("user", PORTUGUESE_USER), ("assistant", PORTUGUESE_REPLY))
    assert not mismatches(state.messages, "pt-BR")
    assert [m.detected for m in mismatches(state.messages, "de")] == ["pt", "pt"]


def test_short_turns_and_quoted_tool_output_are_not_judged():
    quoted = 'Erledigt: {"order_id": "A1", "status": "shipped", "carrier": "DHL Express International"} ORD_1042'
    assert "order_id" not in prose(quoted) and "ORD_1042" not in prose(quoted)
    state = dialogue("de", ("user", GERMAN_USER), ("assistant", "OK!"), ("user", "Thanks!"), ("assistant", quoted))
    assert not mismatches(state.messages, "de")


def test_no_language_and_an_unknown_language_are_not_checked():
    english = dialogue("de", ("user", "Hi, could you check where my order A1 is right now, please?")).messages
    assert not mismatches(english, None)
    assert not mismatches(english, "haw")  # Hawaiian: py3langid has no model of it


def test_each_role_is_told_the_language_and_nothing_changes_without_one():
    from dialogforge.nodes.prompting import render
    from dialogforge.languages import task_instruction, user_instruction

    german = good_state().model_copy(update={"language": "de"})
    assert "Always answer the user in German (de)" in agent_system_prompt(german)
    assert "Write every message in German (de)" in render("simulate_user", persona="", language=user_instruction("de"))
    assert "write the goal, the subtasks and the rubric in German (de)" in render(
        "propose_task", continuation="", language=task_instruction("de"))
    plain = good_state()
    assert agent_system_prompt(plain) == render("run_agent", domain=plain.scenario.domain,
                                                reference_time=plain.reference_time, language="").strip()
    assert "language" not in agent_system_prompt(plain).lower()
    assert language_name("pt-BR") == "Brazilian Portuguese (pt-BR)"


def test_the_most_specific_language_wins():
    settings = GenerationSettings(n=1, language="de", domains=["a bakery", "a tax office"], personas=["an expat"],
                                  domain_languages={"a tax office": "fr"}, persona_languages={"an expat": "ja"})
    assert initial_state(settings, 0, []).language == "ja"
    no_persona = settings.model_copy(update={"persona_languages": {}})
    chosen = {initial_state(no_persona, i, []).scenario.domain: initial_state(no_persona, i, []).language for i in range(12)}
    assert chosen == {"a bakery": "de", "a tax office": "fr"}


def test_seed_files_carry_languages_into_the_run(run_cli, tmp_path):
    domains = tmp_path / "domains.jsonl"
    domains.write_text(json.dumps({"domain": "Bahn tickets", "language": "de"}) + "\n"
                       + json.dumps({"domain": "train tickets"}) + "\n")
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--n", "6", "--seed", "2", "--language", "en-GB",
                     "--domains-file", str(domains), "--max-turns", "4", "--max-tasks", "1", "--db", str(db), "--quiet",
                     "--no-show")
    assert result.code == 0, result.err
    rows = run_cli("list", "--db", str(db), "--json").json()
    assert {(r["domain"], r["language"]) for r in rows} == {("Bahn tickets", "de"), ("train tickets", "en-GB")}
    stats = run_cli("stats", "--db", str(db), "--json").json()
    assert sum(stats["languages"].values()) == stats["overall"]["samples"] and set(stats["languages"]) <= {"de", "en-GB"}


def test_a_seed_line_with_a_bad_language_names_its_line(run_cli, tmp_path):
    personas = tmp_path / "personas.jsonl"
    personas.write_text(json.dumps({"persona": "a nurse"}) + "\n" + json.dumps({"persona": "a chef", "language": "??"}) + "\n")
    result = run_cli("generate", "--backend", "scripted", "--personas-file", str(personas), "--db", str(tmp_path / "r.db"))
    assert result.code == 2 and "line 2: language" in result.err and "\n" not in result.err.strip()


def test_the_instruction_reaches_the_server_in_each_roles_request(tmp_path):
    """One real request per role as an OpenAI-compatible server receives it (the stub server, over HTTP)."""
    from dialogforge.config import ModelConfig, ModelsConfig
    from dialogforge.runs.generate import generate
    from dialogforge.testing.scripted_model import ScriptedChatModel
    from dialogforge.testing.stub_server import StubServer

    bodies: list[dict] = []

    def model(body: dict) -> ScriptedChatModel:
        bodies.append(body)
        return ScriptedChatModel()

    with StubServer(model) as server:
        models = ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url, model="stub"))
        generate(tmp_path / "run.db", GenerationSettings(n=1, seed=1, language="ja"), models)

    def system_of(body: dict) -> str:
        return next(m["content"] for m in body["messages"] if m["role"] == "system")

    systems = [system_of(b) for b in bodies]
    agent = [s for s in systems if s.startswith("You are a capable assistant for:")]
    user = [s for s in systems if s.startswith("You are playing a person")]
    task = [s for s in systems if s.startswith("You design realistic goals")]
    assert agent and user and task
    assert all(s.strip().endswith("Always answer the user in Japanese (ja), whatever language the tools return.") for s in agent)
    assert all("Write every message in Japanese (ja), as a native speaker would." in s for s in user)
    assert all("write the goal, the subtasks and the rubric in Japanese (ja)" in s for s in task)
