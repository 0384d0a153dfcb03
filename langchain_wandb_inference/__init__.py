"""LangChain integration for W&B Inference (CoreWeave Serverless Inference).

``ChatWBInference`` is a ``ChatOpenAI`` that knows W&B: its URL, key and project
header, its ``reasoning`` field, its errors (:mod:`.errors`), and its model catalog
(:class:`WBModel`).
"""

from langchain_wandb_inference import errors
from langchain_wandb_inference._version import __version__
from langchain_wandb_inference.chat_models import ChatWBInference
from langchain_wandb_inference.models import ModelInfo, WBModel, model_info
from langchain_wandb_inference.policies import Budget, CircuitBreaker, RetryPolicy
from langchain_wandb_inference.usage import get_wb_inference_callback

__all__ = [
    "Budget",
    "ChatWBInference",
    "CircuitBreaker",
    "ModelInfo",
    "RetryPolicy",
    "WBModel",
    "__version__",
    "errors",
    "get_wb_inference_callback",
    "model_info",
]
