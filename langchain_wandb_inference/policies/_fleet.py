"""Fleet mode's configuration: which state a model's calls share, and through what.

``ChatWBInference(redis_url="redis://host:6379/0")`` (or ``WANDB_INFERENCE_REDIS_URL``)
makes every process using that Redis share one concurrency limit, one circuit per
model, and the named budgets (``_redis`` says how).  Without it the state is the
process's own, exactly as before; redis-py is needed only then (the ``redis`` extra),
so this module does not import it.

The URL may hold a password: it is kept as a ``SecretStr``, serialized as a reference
to the environment variable, and never written into a message (``_redis`` logs only
its scheme, host, port and database).
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated

from pydantic import AfterValidator, SecretStr

from langchain_wandb_inference.policies._state import LOCAL, State

ENV = "WANDB_INFERENCE_REDIS_URL"
EXTRA = 'pip install "langchain-wandb-inference[redis]"'
SCHEMES = ("redis", "rediss", "unix")


def checked_url(url: SecretStr | None) -> SecretStr | None:
    """A usable Redis URL, or ``None`` for none (an empty variable is none).

    The errors never quote the URL, which may hold a password.
    """
    if url is None or not url.get_secret_value().strip():
        return None
    value = url.get_secret_value().strip()
    if urllib.parse.urlsplit(value).scheme not in SCHEMES:
        msg = f"redis_url ({ENV}) must be a redis://, rediss:// or unix:// URL."
        raise ValueError(msg)
    valid = _parses(value)
    if valid is None:
        msg = f"redis_url ({ENV}) needs redis-py for fleet mode: {EXTRA}"
        raise ValueError(msg)
    if not valid:
        msg = f"redis_url ({ENV}) is not a valid Redis URL (host, port, database, options)."
        raise ValueError(msg)
    return SecretStr(value)


def _parses(url: str) -> bool | None:
    """Whether redis-py accepts ``url`` (``None``: redis-py is not installed).

    Its own error may quote the URL, so it is not passed on.
    """
    try:
        from redis import ConnectionPool
    except ImportError:
        return None
    try:
        ConnectionPool.from_url(url)
    except ValueError:
        return False
    return True


RedisURL = Annotated[SecretStr | None, AfterValidator(checked_url)]
"""The type of ``ChatWBInference.redis_url``: validated, never shown."""


def state_for(url: SecretStr | None) -> State:
    """The state calls share: the fleet's through Redis at ``url``, else this process's."""
    if url is None:
        return LOCAL
    from langchain_wandb_inference.policies import _redis

    return _redis.state_for(url.get_secret_value())
