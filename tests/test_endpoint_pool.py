"""Several servers per role: least-busy choice, limits, back-off, fail-over through real HTTP."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from pydantic import ValidationError

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.config import EndpointConfig, GenerationSettings, ModelConfig, ModelsConfig, Role
from dialogforge.config_file import effective_view
from dialogforge.models import ModelSet
from dialogforge.models import pool as pool_module
from dialogforge.models.pool import EndpointPool, Endpoints, PoolMember
from dialogforge.testing.faults import FaultConfig, FaultKind
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from dialogforge.runs.generate import generate


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_pool(urls, clock=None, **limits) -> EndpointPool:
    endpoints = Endpoints(clock or time.monotonic)
    chat = GenericFakeChatModel(messages=iter([]))
    members = [PoolMember(endpoints.get(EndpointConfig(url=u, **limits)), chat) for u in urls]
    return EndpointPool(members, endpoints)


# ------------------------------------------------------------------ config


def test_base_url_takes_a_list_with_per_endpoint_limits():
    config = ModelConfig(backend="openai", max_in_flight=8, requests_per_second=50,
                         base_url=["http://a:1/v1", {"url": "http://b:1/v1", "max_in_flight": 2}])
    a, b = config.endpoints()
    assert (a.url, a.max_in_flight, a.requests_per_second) == ("http://a:1/v1", 8, 50)
    assert (b.url, b.max_in_flight, b.requests_per_second) == ("http://b:1/v1", 2, 50)
    assert ModelConfig(base_url="http://c:1/v1").endpoints()[0].url == "http://c:1/v1"
    assert ModelConfig().endpoints() == []


def test_bad_endpoint_lists_are_refused():
    with pytest.raises(ValidationError, match="endpoint list is empty"):
        ModelConfig(base_url=[])
    with pytest.raises(ValidationError):
        ModelConfig(base_url=[{"url": "http://a/v1", "max_in_flight": 0}])
    with pytest.raises(ValidationError):
        ModelConfig(base_url=[{"url": "http://a/v1", "bogus": 1}])


def test_config_show_masks_every_endpoint():
    config = ModelsConfig(default=ModelConfig(backend="openai", base_url=[
        "http://u:secret@a:1/v1", {"url": "http://u:secret2@b:1/v1", "max_in_flight": 3}]))
    urls = effective_view(config)["agent"]["base_url"]
    assert urls[0] == "http://u:***@a:1/v1"
    assert urls[1]["url"] == "http://u:***@b:1/v1" and urls[1]["max_in_flight"] == 3
    assert "secret" not in repr(effective_view(config))


def test_roles_on_the_same_server_share_its_limits_and_http_client():
    config = ModelsConfig(
        default=ModelConfig(backend="openai", base_url=["http://a:1/v1", "http://b:1/v1"], max_in_flight=5),
        roles={Role.JUDGE: {"max_in_flight": 2}},
    )
    models = ModelSet.from_config(config, connections=64)
    agent, judge = models[Role.AGENT].pool, models[Role.JUDGE].pool
    assert [m.endpoint for m in agent.members] == [m.endpoint for m in judge.members]  # same objects
    assert agent.members[0].endpoint.max_in_flight == 2  # the tightest limit any role asked for wins
    assert len(models.http_clients) == 2  # one per server, not per role


# ------------------------------------------------------------------ choosing


async def test_requests_go_to_the_least_busy_server():
    pool = make_pool(["a", "b", "c"])
    held = [await pool.acquire() for _ in range(6)]
    assert sorted(m.endpoint.url for m in held) == ["a", "a", "b", "b", "c", "c"]
    pool.release(held[0], failed=False)  # frees one on held[0]'s server
    again = await pool.acquire()
    assert again.endpoint is held[0].endpoint


async def test_a_retry_prefers_servers_not_tried_yet():
    pool = make_pool(["a", "b"])
    first = await pool.acquire()
    pool.release(first, failed=True)
    second = await pool.acquire(avoid=[first.endpoint])
    assert second.endpoint is not first.endpoint
    pool.release(second, failed=True)
    # every server tried: take one anyway rather than wait
    third = await pool.acquire(avoid=[first.endpoint, second.endpoint])
    assert third.endpoint in (first.endpoint, second.endpoint)


async def test_max_in_flight_makes_callers_wait_for_a_release():
    pool = make_pool(["a", "b"], max_in_flight=1)
    _, two = await pool.acquire(), await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    pool.release(two, failed=False)
    third = await asyncio.wait_for(waiter, 1)
    assert third.endpoint is two.endpoint
    assert max(e.in_flight for e in pool.endpoints.all()) == 1


async def test_requests_per_second_spaces_the_starts():
    pool = make_pool(["a"], requests_per_second=20)
    started = time.monotonic()
    for _ in range(5):
        pool.release(await pool.acquire(), failed=False)
    assert time.monotonic() - started >= 4 / 20 - 0.01


async def test_a_failing_server_is_set_aside_then_probed_once():
    clock = FakeClock()
    pool = make_pool(["bad", "good"], clock=clock)
    bad = pool.members[0].endpoint
    for _ in range(pool_module.FAILURE_THRESHOLD):
        member = await pool.acquire(avoid=[pool.members[1].endpoint])
        assert member.endpoint is bad
        pool.release(member, failed=True)
    assert bad.is_open
    picks = [await pool.acquire() for _ in range(4)]
    assert all(m.endpoint.url == "good" for m in picks)  # open circuit: no traffic at all
    for m in picks:
        pool.release(m, failed=False)
    clock.now += pool_module.BASE_COOLDOWN_S + 0.1  # cool-down over: one probe may go
    probe = await pool.acquire(avoid=[pool.members[1].endpoint])
    assert probe.endpoint is bad and bad.probing
    other = await pool.acquire(avoid=[pool.members[1].endpoint])
    assert other.endpoint.url == "good"  # only one probe at a time
    pool.release(probe, failed=True)  # probe failed: open again, longer
    assert bad.is_open and bad.open_until - clock.now == pytest.approx(2 * pool_module.BASE_COOLDOWN_S)
    clock.now += 2 * pool_module.BASE_COOLDOWN_S + 0.1
    probe = await pool.acquire(avoid=[pool.members[1].endpoint])
    pool.release(probe, failed=False)  # recovered: back in rotation
    assert not bad.is_open and bad.trips == 0


async def test_all_servers_open_waits_for_the_first_cool_down():
    pool = make_pool(["a", "b"])
    for member in pool.members:
        endpoint = member.endpoint
        endpoint.trips, endpoint.open_until = 1, time.monotonic() + 0.2
    started = time.monotonic()
    member = await asyncio.wait_for(pool.acquire(), 2)
    assert time.monotonic() - started >= 0.15
    pool.release(member, failed=False)


async def test_one_server_is_never_set_aside():
    pool = make_pool(["only"])
    for _ in range(10):
        pool.release(await pool.acquire(), failed=True)
    assert not pool.members[0].endpoint.is_open
    assert pool.members[0].endpoint.failures == 10


# ------------------------------------------------------------------ fail-over, end to end


def test_generation_fails_over_from_a_dead_server(tmp_path):
    dead = FaultConfig(rate=1.0, mix={FaultKind.SERVER_ERROR: 1.0})
    with StubServer(lambda r: ScriptedChatModel(), faults=dead) as bad, StubServer(lambda r: ScriptedChatModel()) as good:
        models = ModelsConfig(default=ModelConfig(backend="openai", base_url=[bad.base_url, good.base_url], max_retries=3))
        # Enough work that the dead server's probes (2 s, 4 s, 8 s... apart, more of them on a slow box)
        # stay a small share: 12 trajectories, not 6, once tool preparation made runs shorter.
        result = generate(tmp_path / "run.db", GenerationSettings(n=12, seed=4, concurrency=3), models)
        bad_calls, good_calls = bad.stats()["calls"], good.stats()["calls"]
    assert result.summary.done == 12 and result.summary.failed == 0, result.summary
    assert bad_calls > 0  # it was tried...
    assert good_calls > 20 * bad_calls  # ...and then set aside: the healthy one did the work
    manifest = Manifest(tmp_path / "run.db")
    try:
        assert {r["status"] for r in manifest.rows()} == {"done"}
    finally:
        manifest.close()


def test_base_url_flag_takes_comma_separated_servers():
    from dialogforge.config_file import apply_flags

    config = apply_flags(ModelsConfig(), backend=None, base_url="http://a:1/v1, http://b:1/v1", model=None)
    assert config.default.backend == "openai"
    assert [e.url for e in config.default.endpoints()] == ["http://a:1/v1", "http://b:1/v1"]
    single = apply_flags(ModelsConfig(), backend=None, base_url="http://a:1/v1", model=None)
    assert single.default.base_url == "http://a:1/v1"
