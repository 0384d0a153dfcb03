"""The reliability layer: a pipeline of small policies around each model call.

A call flows one way — budget → fallback → retry → circuit breaker → concurrency limiter
→ HTTP → error mapping — and back out through usage.  Each policy is one module with no
knowledge of LangChain (``_pipeline`` explains how they compose and run, sync and
async); shared state (limiter, breaker, budget) sits behind ``_state``'s interfaces.

Public are the settings users pass to ``ChatWBInference`` (re-exported at the top of
the package); the modules are internal.  A new policy is one module with a class that
has ``handle(call, proceed)``, and one line in ``ChatWBInference._policies``.
"""

from langchain_wandb_inference.policies._budget import Budget
from langchain_wandb_inference.policies._circuit_breaker import CircuitBreaker
from langchain_wandb_inference.policies._retry import RetryPolicy

__all__ = ["Budget", "CircuitBreaker", "RetryPolicy"]
