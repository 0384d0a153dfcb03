"""The request the emulator accepts, as pydantic models, and its FastAPI-shaped 422s.

Why pydantic: W&B's gateway answers a malformed request the way FastAPI does, with
``{"detail": [{"type", "loc": ["body", ...], "msg", "input", ...}]}`` built from
pydantic's ``ValidationError.errors()``.  Validating with pydantic models gives the
same ``type``/``msg`` vocabulary, every error at once, and ``loc`` paths a client can
read the offending parameter from, instead of hand-written imitations of them.

What is modelled is what the contract documents (``wb-inference-api.md`` §3): roles,
content as a string or ``text``/``image_url`` parts, assistant ``tool_calls``, function
``tools`` and ``tool_choice``, ``response_format``, ``temperature`` 0-2, token limits
of at least 1, ``stop``, a non-empty ``cache_salt``, a ``chat_template_kwargs``
object.  Every other field is accepted as it is (``extra="allow"``), as W&B passes
them on to the engine.  Images are refused for a model without vision (the
validation context's ``vision``), still as a 422.

Validation is lax, as FastAPI's is (``"0.5"`` is a valid ``temperature``); backends
receive the validated request as JSON (``validate``), so they see ``0.5``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

__all__ = ["ChatCompletionRequest", "unprocessable", "validate"]


class _Open(BaseModel):
    """A request object that keeps fields it does not know (W&B forwards them)."""

    model_config = ConfigDict(extra="allow")


class ImageURL(_Open):
    """``image_url`` of an image content part."""

    url: str


class ContentPart(_Open):
    """One part of a message's content: text, or an image (vision models only)."""

    type: Literal["text", "image_url"]
    text: str | None = Field(None, validate_default=True)
    image_url: ImageURL | None = Field(None, validate_default=True)

    @field_validator("text")
    @classmethod
    def _text_of_a_text_part(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("type") == "text":
            raise PydanticCustomError("missing", "Field required")
        return value

    @field_validator("image_url")
    @classmethod
    def _image_only_for_vision(
        cls, value: ImageURL | None, info: ValidationInfo
    ) -> ImageURL | None:
        if info.data.get("type") != "image_url":
            return value
        if value is None:
            raise PydanticCustomError("missing", "Field required")
        if not (info.context or {}).get("vision", False):
            raise PydanticCustomError("value_error", "This model does not accept images")
        return value


def _content_kind(value: Any) -> str | None:
    return "str" if isinstance(value, str) else "parts" if isinstance(value, list) else None


Content = Annotated[
    Annotated[str, Tag("str")] | Annotated[list[ContentPart], Tag("parts")],
    Discriminator(
        _content_kind,
        custom_error_type="content_type",
        custom_error_message="Input should be a valid string or a list of content parts",
    ),
]
"""A string, or a list of parts (errors inside the list are located under ``parts``)."""


class FunctionCall(_Open):
    """The function of an assistant's tool call; ``arguments`` is JSON text."""

    name: str
    arguments: str


class AssistantToolCall(_Open):
    """One tool call in an assistant message of the history."""

    function: FunctionCall


class Message(_Open):
    """One chat message; ``content`` may be absent only on an assistant turn."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Content | None = Field(None, validate_default=True)
    tool_calls: list[AssistantToolCall] | None = None
    tool_call_id: str | None = Field(None, validate_default=True)

    @field_validator("content")
    @classmethod
    def _content_unless_assistant(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.data.get("role", "assistant") != "assistant":
            raise PydanticCustomError("missing", "Field required")
        return value

    @field_validator("tool_call_id")
    @classmethod
    def _tool_results_name_their_call(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("role") == "tool":
            raise PydanticCustomError("missing", "Field required")
        return value


class FunctionDefinition(_Open):
    """A function offered as a tool; ``parameters`` is its JSON schema."""

    name: str
    parameters: dict[str, Any] | None = None


class FunctionTool(_Open):
    """A tool: W&B serves function tools only."""

    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Open):
    """The function a ``tool_choice`` object names."""

    name: str


class NamedToolChoice(_Open):
    """``{"type": "function", "function": {"name": ...}}``."""

    type: Literal["function"]
    function: NamedFunction


def _choice_kind(value: Any) -> str:
    """The union's tag, for validating a raw body and for dumping the validated one."""
    return "function" if isinstance(value, dict | NamedToolChoice) else "mode"


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("mode")]
    | Annotated[NamedToolChoice, Tag("function")],
    Discriminator(_choice_kind),
]


class JSONSchemaFormat(_Open):
    """``response_format.json_schema``: the schema the answer must follow."""

    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Open):
    """``response_format``: plain text, any JSON object, or JSON valid against a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = Field(None, validate_default=True)

    @field_validator("json_schema")
    @classmethod
    def _schema_for_json_schema(
        cls, value: JSONSchemaFormat | None, info: ValidationInfo
    ) -> JSONSchemaFormat | None:
        if value is None and info.data.get("type") == "json_schema":
            raise PydanticCustomError("missing", "Field required")
        return value


class ChatCompletionRequest(_Open):
    """``POST /chat/completions`` as the emulator accepts it (see the module docstring)."""

    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    cache_salt: str | None = Field(None, min_length=1)
    chat_template_kwargs: dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoice | None = None

    @field_validator("tool_choice")
    @classmethod
    def _choice_among_the_tools(cls, value: Any, info: ValidationInfo) -> Any:
        """A named function must be one of ``tools``; ``required`` needs tools at all."""
        tools: list[FunctionTool] = info.data.get("tools") or []
        names = {tool.function.name for tool in tools}
        if isinstance(value, NamedToolChoice) and value.function.name not in names:
            raise PydanticCustomError(
                "value_error",
                "tool_choice names the function '{name}', which is not among the tools",
                {"name": value.function.name},
            )
        if value == "required" and not names:
            raise PydanticCustomError("value_error", "tool_choice 'required' needs tools")
        return value


def validate(body: Any, *, vision: bool) -> dict[str, Any]:
    """The request as JSON-ready data, values coerced as FastAPI coerces them (``"8"``: 8).

    Raises ``pydantic.ValidationError`` for what the service answers with a 422.
    Fields the request did not send stay absent; unknown fields are kept.
    """
    # from_attributes: FastAPI validates a body model this way, hence its wording for
    # a body that is not an object ("... or object to extract fields from").
    request = ChatCompletionRequest.model_validate(
        body, from_attributes=True, context={"vision": vision}
    )
    return request.model_dump(mode="json", by_alias=True, exclude_unset=True)


def unprocessable(error: ValueError) -> bytes:
    """FastAPI's 422 body for a request body that is not JSON, or not a valid request.

    ``error`` is the ``ValidationError`` of :func:`validate`, or what ``json.loads``
    raised (``JSONDecodeError``; ``UnicodeDecodeError`` for bytes that are not UTF-8).
    """
    if isinstance(error, ValidationError):
        errors = error.errors(include_url=False)
        return _detail([{**e, "loc": ["body", *e["loc"]]} for e in errors])
    if isinstance(error, json.JSONDecodeError):
        reason, position = error.msg, error.pos
    else:
        reason, position = str(error), 0
    return _detail(
        [
            {
                "type": "json_invalid",
                "loc": ["body", position],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": reason},
            }
        ]
    )


def _detail(errors: list[Any]) -> bytes:
    # ``default=str``: pydantic may put an exception object in ``ctx`` (FastAPI's
    # jsonable_encoder turns it into its text the same way).
    return json.dumps({"detail": errors}, default=str).encode()
