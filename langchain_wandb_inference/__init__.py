"""LangChain integration for W&B Inference (CoreWeave Serverless Inference).

``ChatWBInference`` is a ``ChatOpenAI`` that knows W&B: its URL, key and project
header, its ``reasoning`` field, its errors, and its model catalog (:class:`WBModel`).
"""

from langchain_wandb_inference._version import __version__
from langchain_wandb_inference.budget import Budget
from langchain_wandb_inference.chat_models import ChatWBInference, ListedModel
from langchain_wandb_inference.circuit_breaker import CircuitBreaker
from langchain_wandb_inference.errors import (
    WBAuthenticationError,
    WBBudgetExceededError,
    WBCircuitOpenError,
    WBConcurrencyLimitError,
    WBConnectionError,
    WBContextOverflowError,
    WBDeadlineExceededError,
    WBInferenceError,
    WBInvalidRequestError,
    WBModelNotFoundError,
    WBOverloadedError,
    WBPermissionDeniedError,
    WBQuotaExceededError,
    WBServerError,
    WBTimeoutError,
    WBUnprocessableEntityError,
)
from langchain_wandb_inference.models import (
    Lifecycle,
    ModelInfo,
    ReasoningMode,
    WBModel,
    model_info,
)
from langchain_wandb_inference.retry import RetryPolicy
from langchain_wandb_inference.usage import (
    ModelUsage,
    WBInferenceCallbackHandler,
    get_wb_inference_callback,
)

__all__ = [
    "Budget",
    "ChatWBInference",
    "CircuitBreaker",
    "Lifecycle",
    "ListedModel",
    "ModelInfo",
    "ModelUsage",
    "ReasoningMode",
    "RetryPolicy",
    "WBAuthenticationError",
    "WBBudgetExceededError",
    "WBCircuitOpenError",
    "WBConcurrencyLimitError",
    "WBConnectionError",
    "WBContextOverflowError",
    "WBDeadlineExceededError",
    "WBInferenceCallbackHandler",
    "WBInferenceError",
    "WBInvalidRequestError",
    "WBModel",
    "WBModelNotFoundError",
    "WBOverloadedError",
    "WBPermissionDeniedError",
    "WBQuotaExceededError",
    "WBServerError",
    "WBTimeoutError",
    "WBUnprocessableEntityError",
    "__version__",
    "get_wb_inference_callback",
    "model_info",
]
