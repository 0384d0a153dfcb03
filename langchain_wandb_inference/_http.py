"""The HTTP clients ``ChatWBInference`` builds: pools that survive event loops and fork().

Why not langchain-openai's cached default clients:

* **Event loops.**  Its shared async client keeps keep-alive connections that belong to
  the event loop that opened them, so the next ``asyncio.run(llm.ainvoke(...))`` trips
  over them with "Event loop is closed".  Here each running loop gets its own pool; the
  pools of closed loops are dropped when the next new loop gets its pool.
* **fork().**  A pooled connection opened before ``fork()`` (multiprocessing's default on
  Linux, gunicorn and Celery prefork) is shared by parent and child, which then read
  each other's answers.  Here every process gets its own pool: the child never touches
  a connection of its parent.

Everything else is as langchain-openai builds it: the same connection limits, the same
TCP keepalive / ``TCP_USER_TIMEOUT`` socket options (``http_socket_options``, the
``LANGCHAIN_OPENAI_TCP_*`` variables), an explicit ``openai_proxy``, and the
environment's proxy (``HTTPS_PROXY`` / ``NO_PROXY``), resolved here because a custom
transport would otherwise shadow it.  Clients the caller passes are used as they are.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

import httpx2
import openai
from langchain_openai.chat_models._client_utils import (
    _DEFAULT_CONNECTION_LIMITS,
    _resolve_socket_options,
)
from pydantic import SecretStr

SocketOptions = Sequence[tuple[int, int, int]]


class _PerProcess(httpx2.BaseTransport):
    """A sync transport with one pool per process, made on first use in each."""

    def __init__(self, make: Callable[[], httpx2.BaseTransport]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._pid = -1
        self._pool: httpx2.BaseTransport | None = None

    def _current(self) -> httpx2.BaseTransport:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool, self._pid = self._make(), os.getpid()  # never the parent's
            return self._pool

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send on this process's own pool."""
        return self._current().handle_request(request)

    def close(self) -> None:
        """Close this process's pool."""
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()


class _PerLoop(httpx2.AsyncBaseTransport):
    """An async transport with one pool per (process, running event loop)."""

    def __init__(self, make: Callable[[], httpx2.AsyncBaseTransport]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._pools: dict[tuple[int, asyncio.AbstractEventLoop], httpx2.AsyncBaseTransport] = {}

    def _current(self) -> httpx2.AsyncBaseTransport:
        key = (os.getpid(), asyncio.get_running_loop())
        pool = self._pools.get(key)  # a dict read is atomic: no lock on every request
        if pool is not None:
            return pool
        with self._lock:
            for stale in [k for k in self._pools if k[0] != key[0] or k[1].is_closed()]:
                del self._pools[stale]  # a dead loop's or the parent's connections
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = self._make()
        return pool

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send on this loop's own pool."""
        return await self._current().handle_async_request(request)

    async def aclose(self) -> None:
        """Close this loop's pool (other loops' pools are theirs to close)."""
        await self._current().aclose()


def _env_proxy(base_url: str | None) -> str | None:
    """The proxy the environment names for ``base_url`` (as httpx would use it)."""
    parts = urllib.parse.urlsplit(base_url or "")
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _transport_options(socket_options: Any, proxy: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "limits": _DEFAULT_CONNECTION_LIMITS,
        "socket_options": list(socket_options),
    }
    if proxy:
        options["proxy"] = httpx2.Proxy(proxy)
    return options


@lru_cache(maxsize=64)
def _cached_sync(
    base_url: str | None, timeout: Any, socket_options: Any, proxy: str | None
) -> httpx2.Client:
    options = _transport_options(socket_options, proxy)
    transport = _PerProcess(lambda: httpx2.HTTPTransport(**options))
    client: httpx2.Client = openai.DefaultHttpxClient(
        base_url=base_url or "", timeout=timeout, transport=transport
    )
    return client


@lru_cache(maxsize=64)
def _cached_async(
    base_url: str | None, timeout: Any, socket_options: Any, proxy: str | None
) -> httpx2.AsyncClient:
    options = _transport_options(socket_options, proxy)
    transport = _PerLoop(lambda: httpx2.AsyncHTTPTransport(**options))
    client: httpx2.AsyncClient = openai.DefaultAsyncHttpxClient(
        base_url=base_url or "", timeout=timeout, transport=transport
    )
    return client


def _resolved(
    base_url: str | None, timeout: Any, socket_options: SocketOptions | None, proxy: str | None
) -> tuple[Any, ...]:
    """The cache key: settings as resolved now (the environment may have changed since)."""
    resolved = tuple(tuple(o) for o in _resolve_socket_options(socket_options))
    return base_url, timeout, resolved, proxy or _env_proxy(base_url)


def sync_client(
    base_url: str | None, timeout: Any, socket_options: SocketOptions | None, proxy: str | None
) -> httpx2.Client:
    """The process-wide sync client for these settings (one pool per process)."""
    key = _resolved(base_url, timeout, socket_options, proxy)
    return _cached_sync(*key) if _is_hashable(timeout) else _cached_sync.__wrapped__(*key)


def async_client(
    base_url: str | None, timeout: Any, socket_options: SocketOptions | None, proxy: str | None
) -> httpx2.AsyncClient:
    """The process-wide async client for these settings, safe across event loops."""
    key = _resolved(base_url, timeout, socket_options, proxy)
    return _cached_async(*key) if _is_hashable(timeout) else _cached_async.__wrapped__(*key)


def _is_hashable(value: Any) -> bool:
    """Whether ``value`` can key a cache (an httpx ``Timeout`` cannot: a fresh client)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def clean_key(key: str) -> str:
    """The key without surrounding whitespace (a newline copied from a file, say).

    A key with whitespace inside is refused: it cannot be sent in a header, and the
    error never shows it.
    """
    stripped = key.strip()
    if not stripped or any(c.isspace() for c in stripped):
        msg = (
            "The W&B API key is empty or has whitespace inside it (is it two values, or a "
            "line of a file?). Copy a valid key from https://wandb.ai/authorize."
        )
        raise ValueError(msg)
    return stripped


def api_keys(
    key: SecretStr | Callable[[], str] | Callable[[], Awaitable[str]] | None,
) -> tuple[str | Callable[[], str] | None, str | Callable[[], Awaitable[str]] | None]:
    """The key for the sync and async SDK clients; callables are cleaned on each call.

    A sync callable serves both (in an executor on async paths); an async one serves
    async calls only (sync calls then raise, as in ChatOpenAI).
    """
    if key is None or isinstance(key, SecretStr):
        value = key.get_secret_value() if key is not None else None
        return value, value
    if inspect.iscoroutinefunction(key):

        async def async_key() -> str:
            return clean_key(await key())

        return None, async_key

    def sync_key() -> str:
        return clean_key(key())  # type: ignore[arg-type]

    async def threaded_key() -> str:
        return await asyncio.get_running_loop().run_in_executor(None, sync_key)

    return sync_key, threaded_key
