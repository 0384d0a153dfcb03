"""Fleet mode's configuration: where the URL comes from, what is refused, what is shown.

No Redis here (and no sockets): choosing the state connects to nothing.
"""

from __future__ import annotations

import json
import sys

import pytest
from langchain_core.load import dumpd

from langchain_wandb_inference import Budget, ChatWBInference
from langchain_wandb_inference.policies import _fleet, _redis
from langchain_wandb_inference.policies._state import LOCAL

URL = "redis://:pa55word-for-the-fleet@redis.internal:6379/2"


def make(**kwargs: object) -> ChatWBInference:
    return ChatWBInference(api_key="k" * 40, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_fleet_states() -> object:
    yield
    _redis.close_all()


def test_without_a_url_the_state_is_the_process() -> None:
    llm = make()
    assert llm.redis_url is None
    assert _fleet.state_for(llm.redis_url) is LOCAL


def test_the_url_comes_from_the_argument_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert make(redis_url=URL).redis_url.get_secret_value() == URL  # type: ignore[union-attr]
    monkeypatch.setenv("WANDB_INFERENCE_REDIS_URL", URL)
    llm = make()
    assert llm.redis_url is not None and llm.redis_url.get_secret_value() == URL
    state = _fleet.state_for(llm.redis_url)
    assert isinstance(state, _redis.FleetState)
    assert state is _fleet.state_for(make().redis_url)  # one per Redis and process
    assert state.coordinator.where == "redis://redis.internal:6379/2"  # what logs show


def test_an_empty_variable_means_no_fleet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_INFERENCE_REDIS_URL", "  ")
    assert make().redis_url is None


@pytest.mark.parametrize("url", ["http://redis:6379", "redis.internal:6379", "postgres://x"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"redis://, rediss:// or unix://"):
        make(redis_url=url)


def test_without_redis_py_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    with pytest.raises(ValueError, match=r'pip install "langchain-wandb-inference\[redis\]"'):
        make(redis_url=URL)
    assert make().redis_url is None  # without a URL, nothing needs it


def test_the_url_is_never_shown_or_serialized() -> None:
    llm = make(redis_url=URL)
    for text in (repr(llm), str(llm), json.dumps(dumpd(llm)), json.dumps(llm.to_json())):
        assert "pa55word" not in text and "redis.internal" not in text
    assert dumpd(llm)["kwargs"]["redis_url"] == {
        "lc": 1,
        "type": "secret",
        "id": ["WANDB_INFERENCE_REDIS_URL"],
    }


def test_errors_never_quote_the_url() -> None:
    bad = "redis://:pa55word-for-the-fleet@redis.internal:notaport/0"
    with pytest.raises(ValueError, match="not a valid Redis URL") as info:
        make(redis_url=bad)
    assert "pa55word" not in str(info.value)


def test_only_named_budgets_join_the_fleet() -> None:
    state = _fleet.state_for(make(redis_url=URL).redis_url)
    unnamed, named = Budget(1.0), Budget(1.0, name="nightly-eval")
    assert unnamed.ledger_in(state) is unnamed.ledger  # stays in-process
    assert isinstance(named.ledger_in(state), _redis.FleetLedger)
    assert isinstance(named.ledger_in(LOCAL), _redis.FleetLedger)  # once joined, for good


@pytest.mark.parametrize("name", ["", "  ", 3])
def test_a_budget_name_is_a_non_empty_string(name: object) -> None:
    with pytest.raises(ValueError, match="name"):
        Budget(1.0, name=name)  # type: ignore[arg-type]
