"""Fleet tests run a real ``redis-server`` on 127.0.0.1 (a free port, no persistence).

Without ``redis-server`` on PATH they are skipped, saying how to get it; ``.ci/run``
installs it, so in CI they always run.  Only loopback sockets are allowed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import enable_socket, socket_allow_hosts

from langchain_wandb_inference.policies import _redis
from langchain_wandb_inference.testing.redis_server import RedisServer, RedisServerMissing


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    socket_allow_hosts(["127.0.0.1", "localhost", "::1"], allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(autouse=True)
def _fresh_fleet_states() -> Iterator[None]:
    """Each test's coordinators (threads, connections) end with it."""
    yield
    _redis.close_all()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh redis-server for this test, killed afterwards whatever the test did to it."""
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis"))
    except RedisServerMissing as exc:
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.kill()
