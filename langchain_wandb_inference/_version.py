"""Package version, read by the chat model for LangSmith metadata."""

__version__ = "0.1.0"
