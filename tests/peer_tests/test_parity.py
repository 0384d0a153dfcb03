"""Parity checks that langchain-openai's own tests cannot make for ChatWBInference.

Upstream's socket-option and proxy tests spy on langchain-openai's client builders,
which ChatWBInference does not use (it builds its own fork- and event-loop-safe
clients), so for it they say nothing (see ``HTTP_CLIENTS`` in ``expected.py``).  Here
the connection pool that would carry a request is compared directly: the same TCP
socket options and the same proxy as ChatOpenAI's, for the same settings.

Each case first builds the same model without the case's environment, then with it:
settings ChatOpenAI reads at construction must not be pinned by an earlier model (a
client cache keyed on unresolved settings would serve the first model's environment).

There is no public accessor for a pool's options: this reads the private attributes of
httpx's client (``_transport_for_url``) and of httpcore's pools (``_socket_options``,
``_proxy_url``); a rename upstream fails these tests loudly rather than passing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

import pytest
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from langchain_wandb_inference import ChatWBInference

KEY = SecretStr("k")
KEEPALIVE = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
PROXY = "http://proxy.example:3128"
# id: (environment, constructor arguments).  No HTTPS_PROXY case: ChatOpenAI's own
# answer to it depends on which of its cached clients earlier tests happened to build.
CASES: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "defaults": ({}, {}),
    "LANGCHAIN_OPENAI_TCP_KEEPIDLE": ({"LANGCHAIN_OPENAI_TCP_KEEPIDLE": "7"}, {}),
    "LANGCHAIN_OPENAI_TCP_KEEPALIVE=0": ({"LANGCHAIN_OPENAI_TCP_KEEPALIVE": "0"}, {}),
    "http_socket_options": ({}, {"http_socket_options": KEEPALIVE}),
    "http_socket_options=()": ({}, {"http_socket_options": ()}),
    "openai_proxy": ({}, {"openai_proxy": PROXY}),
}


def _pools(obj: Any, depth: int = 0) -> list[Any]:
    """httpcore connection pools reachable from a transport (through any wrapper)."""
    if hasattr(obj, "_socket_options"):
        return [obj]
    if depth > 3:
        return []
    values = obj.values() if isinstance(obj, dict) else getattr(obj, "__dict__", {}).values()
    return [p for v in values if not isinstance(v, str | bytes) for p in _pools(v, depth + 1)]


async def _pool_settings(llm: ChatOpenAI | ChatWBInference, side: str) -> tuple[Any, Any]:
    """(socket options, proxy) of the pool a request to the API would use."""
    sdk = llm.root_client if side == "sync" else llm.root_async_client
    client = sdk._client  # type: ignore[union-attr]
    url = client.base_url.join("models")
    with contextlib.suppress(Exception):  # no network: only for a lazily made pool to exist
        sent = client.send(client.build_request("GET", url))
        if asyncio.iscoroutine(sent):
            await asyncio.wait_for(sent, 5)
    (pool,) = _pools(client._transport_for_url(url))
    proxy = getattr(pool, "_proxy_url", None)
    return pool._socket_options or None, proxy and (proxy.scheme, proxy.host, proxy.port)


@pytest.mark.parametrize("side", ["sync", "async"])
@pytest.mark.parametrize(("env", "kwargs"), CASES.values(), ids=list(CASES))
async def test_pool_matches_chat_openai(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kwargs: dict[str, Any], side: str
) -> None:
    """The settings ChatOpenAI honours at construction reach ChatWBInference's pools."""
    for name in [n for n in os.environ if n.startswith("LANGCHAIN_OPENAI_TCP_")]:
        monkeypatch.delenv(name)
    ChatWBInference(model="m", api_key=KEY, **kwargs)  # made earlier, it must pin nothing
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    theirs = await _pool_settings(ChatOpenAI(model="m", api_key=KEY, **kwargs), side)
    ours = await _pool_settings(ChatWBInference(model="m", api_key=KEY, **kwargs), side)
    assert ours == theirs, "(socket options, proxy)"
