"""Async HTTP that survives ``asyncio.run`` being called more than once.

langchain-openai shares one async HTTP client per base URL across the process.  Its
keep-alive connections belong to the event loop that opened them, so the next
``asyncio.run(llm.ainvoke(...))`` (a new loop) trips over them with "Event loop is
closed" — every other call fails.  Here the shared client keeps one connection pool
*per running event loop*; the pools of closed loops are dropped at the next request.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from functools import lru_cache
from typing import Any

import httpx2
import openai


class LoopLocalTransport(httpx2.AsyncBaseTransport):
    """An ``AsyncHTTPTransport`` per running event loop, created on first use."""

    def __init__(self, **transport_kwargs: Any) -> None:
        self._kwargs = transport_kwargs
        self._lock = threading.Lock()
        self._pools: dict[asyncio.AbstractEventLoop, httpx2.AsyncHTTPTransport] = {}

    def _for_running_loop(self) -> httpx2.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        with self._lock:
            for finished in [other for other in self._pools if other.is_closed()]:
                del self._pools[finished]  # its connections died with their loop
            transport = self._pools.get(loop)
            if transport is None:
                transport = self._pools[loop] = httpx2.AsyncHTTPTransport(**self._kwargs)
        return transport

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send on this loop's own connection pool."""
        return await self._for_running_loop().handle_async_request(request)

    async def aclose(self) -> None:
        """Close this loop's pool (other loops' pools are theirs to close)."""
        await self._for_running_loop().aclose()


def proxies_configured() -> bool:
    """Whether the environment names an HTTP proxy (then httpx's own handling is kept)."""
    return bool(urllib.request.getproxies())


@lru_cache(maxsize=32)
def shared_async_client(base_url: str, timeout: float | None) -> httpx2.AsyncClient:
    """The process-wide async client for one base URL, safe across event loops."""
    transport = LoopLocalTransport(
        limits=httpx2.Limits(
            max_connections=1000, max_keepalive_connections=100, keepalive_expiry=5.0
        ),
    )
    client: httpx2.AsyncClient = openai.DefaultAsyncHttpxClient(
        base_url=base_url, timeout=timeout, transport=transport
    )
    return client
