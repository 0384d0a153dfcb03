"""``wb-inference``: list W&B Inference models, chat once, and check a setup end to end.

Why a command line: the first questions with a new key are "does my setup work?",
"which models can I use?" and "what does a call cost?"; answering them should not need
a script.  Every command goes through :class:`ChatWBInference`, so it exercises the same
configuration, retries, error mapping and catalog as library code does.

Commands (also ``python -m langchain_wandb_inference``)::

    wb-inference models [--json]
    wb-inference chat "prompt" [--model M] [--stream] [--project team/proj] [--system S]
                               [--max-tokens N] [--enable-thinking | --no-enable-thinking]
    wb-inference check [--model M] [--project team/proj]

Global options, before or after the command: ``--emulator`` (an in-process emulator,
synthetic answers, no account needed), ``--base-url URL``, ``--api-key KEY``
(discouraged: it lands in shell history; prefer ``WANDB_API_KEY``), ``--timeout S``.
The project comes from ``--project`` or ``WANDB_ENTITY``/``WANDB_PROJECT``, the URL from
``--base-url`` or ``WANDB_INFERENCE_BASE_URL``.

Results (the answer, the table, the JSON, the check lines) go to stdout; reasoning,
the usage line, notes and errors go to stderr, so ``> file`` keeps only the result.
The API key is never printed, not even in part.

Exit codes:
  0  ok
  1  unexpected error (a bug: please report it)
  2  usage error (bad arguments)
  3  configuration error (no API key, malformed project or base URL)
  4  authentication or permission refused (401, 403, personal account)
  5  quota or budget exhausted (402, quota 429, client budget)
  6  model not found or invalid request (404, 400, 422)
  7  transient service failure that persisted after retries
     (429 concurrency limit, 5xx, timeout, connection failure)
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

import pydantic
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import SecretStr

from langchain_wandb_inference import errors
from langchain_wandb_inference._redact import Scrubber
from langchain_wandb_inference.chat_models import (
    DEFAULT_MODEL,
    ChatWBInference,
    ListedModel,
    resolve_project,
)
from langchain_wandb_inference.errors import DEFAULT_BASE_URL, KEYS_URL, ExitCode
from langchain_wandb_inference.models import (
    Lifecycle,
    ModelInfo,
    all_models,
    is_lora_artifact,
    model_info,
    suggest_model_id,
)
from langchain_wandb_inference.usage import cached_tokens, estimate_cost

__all__ = ["ExitCode", "build_parser", "main"]

T = TypeVar("T")

EMULATOR_BANNER = "using the local emulator: answers are synthetic, not from W&B"
NO_KEY_MESSAGE = (
    f"No W&B API key. Create one at {KEYS_URL}, then `export WANDB_API_KEY=...` "
    "(or pass --api-key, which leaves the key in your shell history). To try the "
    "commands without an account, add --emulator."
)
CHECK_PROMPT = "Reply with OK."
DESCRIPTION = f"""\
W&B Inference from the command line: list models, send one prompt, check a setup.

The key comes from WANDB_API_KEY (create one at {KEYS_URL});
the project from --project or WANDB_ENTITY/WANDB_PROJECT. Results go to stdout;
reasoning, the usage line, notes and errors go to stderr. Try it without an
account: --emulator."""


class CliError(Exception):
    """An expected failure the CLI itself detects, with the exit status it means."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------------------


def _err(text: str = "") -> None:
    """Print a note, label or error on stderr (looked up per call: tests swap it)."""
    print(text, file=sys.stderr, flush=True)


def _marks() -> tuple[str, str]:
    """Check and cross marks, in ASCII when stdout cannot encode the Unicode ones."""
    try:
        "\u2713\u2717".encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "[ok]", "[FAILED]"
    return "\u2713", "\u2717"


def _scrub(text: str, secret: str | None) -> str:
    """Remove the API key from text about to be printed (a second line of defence)."""
    return Scrubber([secret] if secret else ()).text(text)


# --------------------------------------------------------------------------------------
# Where to send requests, and as whom
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The service to call and the key to call it with.

    ``key_source`` says where the key came from, for messages: the key itself is never
    shown.  ``api_key`` is ``None`` when none was found; commands fail on first use,
    so that ``check`` can report it as its first step.
    """

    api_key: str | None
    key_source: str
    base_url: str | None
    timeout: float | None

    def require_key(self) -> str:
        """Return the key, or raise a configuration error explaining how to get one."""
        if not self.api_key:
            raise CliError(NO_KEY_MESSAGE, ExitCode.CONFIG)
        return self.api_key

    @property
    def shown_base_url(self) -> str:
        """The base URL requests go to, for messages."""
        return self.base_url or DEFAULT_BASE_URL


def _given_key(args: argparse.Namespace) -> tuple[str | None, str]:
    """Return the key from ``--api-key`` or ``WANDB_API_KEY`` (blank: none), and its source."""
    if args.api_key and args.api_key.strip():
        return args.api_key.strip(), "--api-key"
    env_key = os.environ.get("WANDB_API_KEY", "").strip()
    return (env_key or None), "WANDB_API_KEY"


def _base_url(args: argparse.Namespace) -> str | None:
    """Return ``--base-url`` or ``WANDB_INFERENCE_BASE_URL`` (``None``: W&B's), checked.

    Why check here: a typo such as a missing scheme would otherwise surface as a
    "connection failed" after retries (exit 7) instead of a configuration error.
    """
    url = args.base_url or os.environ.get("WANDB_INFERENCE_BASE_URL") or None
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        source = "--base-url" if args.base_url else "WANDB_INFERENCE_BASE_URL"
        msg = f"{source} must be an http(s) URL such as {DEFAULT_BASE_URL}, got {url!r}."
        raise CliError(msg, ExitCode.CONFIG)
    return url


@contextmanager
def _target(args: argparse.Namespace) -> Iterator[Target]:
    """Yield the W&B service, or (``--emulator``) an emulator serving while the command runs.

    The emulator accepts ``--api-key`` when given (else its own fake key); a
    ``WANDB_API_KEY`` from the environment is not sent to it.
    """
    if not args.emulator:
        key, source = _given_key(args)
        if args.api_key:
            _err("note: --api-key leaves the key in shell history; prefer WANDB_API_KEY.")
        yield Target(key, source, _base_url(args), args.timeout)
        return
    from langchain_wandb_inference.testing import Emulator

    emulator = Emulator(api_key=args.api_key) if args.api_key else Emulator()
    with emulator:
        _err(f"note: {EMULATOR_BANNER} ({emulator.base_url}).")
        yield Target(emulator.api_key, "the emulator (fake)", emulator.base_url, args.timeout)


def _config_message(exc: ValueError) -> str:
    """Return the messages of a configuration ``ValueError``, without pydantic's input echo.

    Why: ``str()`` of a pydantic ``ValidationError`` repeats the constructor input,
    which includes the API key.
    """
    if not isinstance(exc, pydantic.ValidationError):
        return str(exc)
    problems = exc.errors(include_input=False, include_url=False, include_context=False)
    return " ".join(str(e["msg"]).removeprefix("Value error, ") for e in problems)


def _connect(
    target: Target, model: str | None, project: str | None, **options: Any
) -> ChatWBInference:
    """Build the chat model every command talks through; bad settings are config errors."""
    if target.timeout is not None:
        options["timeout"] = target.timeout
    try:
        return ChatWBInference(
            model=model or DEFAULT_MODEL,
            api_key=SecretStr(target.require_key()),
            base_url=target.base_url,
            project=project,
            **options,
        )
    except ValueError as exc:
        raise CliError(_config_message(exc), ExitCode.CONFIG) from exc


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------

STATUS_LISTED = "listed"
STATUS_NOT_IN_CATALOG = "not_in_catalog"
STATUS_NOT_LISTED = "not_listed"
_STATUS_NOTES = {
    STATUS_LISTED: "",
    STATUS_NOT_IN_CATALOG: "not in catalog",
    STATUS_NOT_LISTED: "catalog only: not served now",
}
_COLUMNS = ("MODEL", "CONTEXT", "VISION", "REASONING", "$/1M IN/OUT/CACHED", "LIFECYCLE", "NOTE")


@dataclass(frozen=True)
class ModelRow:
    """One model as the service lists it and the catalog describes it."""

    id: str
    info: ModelInfo | None
    status: str

    def as_json(self) -> dict[str, Any]:
        """Return the row for ``--json``; ``None`` where the catalog does not know a figure."""
        info = self.info
        price = info.price if info else None
        return {
            "id": self.id,
            "status": self.status,
            "context_window": info.context_window if info else None,
            "vision": info.vision if info else None,
            "reasoning": info.reasoning.value if info else None,
            "price": None
            if price is None
            else {"input": price.input, "output": price.output, "cached_input": price.cached_input},
            "lifecycle": info.lifecycle.value if info else None,
            "replacement": info.replacement if info else None,
        }

    def cells(self) -> list[str]:
        """Return the row for the table, rendered from :meth:`as_json` so both agree."""
        data = self.as_json()
        price = data["price"]
        note = _STATUS_NOTES[self.status]
        if data["replacement"]:
            note = f"{note}; use {data['replacement']}" if note else f"use {data['replacement']}"
        return [
            self.id,
            "?" if data["context_window"] is None else f"{data['context_window']:,}",
            "?" if data["vision"] is None else ("yes" if data["vision"] else "-"),
            data["reasoning"] or "?",
            "?" if price is None else "/".join(_money(price[k]) for k in price),
            data["lifecycle"] or "?",
            note,
        ]


def _money(value: float | None) -> str:
    """Format a per-1M-token price, ``-`` when not published."""
    return "-" if value is None else f"{value:g}"


def model_rows(listed: Sequence[ListedModel]) -> list[ModelRow]:
    """Join the service's models with the catalog, then add catalog models it does not list.

    Retired catalog models are left out of the second group: their absence is expected.
    """
    served = {m.id for m in listed}
    rows = [
        ModelRow(m.id, m.info, STATUS_LISTED if m.info else STATUS_NOT_IN_CATALOG)
        for m in sorted(listed, key=lambda m: m.id.casefold())
    ]
    missing = (i for i in all_models() if i.id not in served and i.lifecycle != Lifecycle.RETIRED)
    rows.extend(
        ModelRow(i.id, i, STATUS_NOT_LISTED) for i in sorted(missing, key=lambda i: i.id.casefold())
    )
    return rows


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Render rows as left-aligned columns two spaces apart, trailing spaces trimmed."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def cmd_models(args: argparse.Namespace, target: Target) -> ExitCode:
    """List the served models with the catalog's context, abilities, prices and lifecycle."""
    listed = _connect(target, None, args.project).list_models()
    if not listed:
        _err("note: the service listed no models (it once did so by mistake); try again later.")
    rows = model_rows(listed)
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2))
        return ExitCode.OK
    print(_table([list(_COLUMNS), *(row.cells() for row in rows)]))
    _err("prices: USD per 1M tokens, catalog snapshot; W&B's Billing page is authoritative.")
    return ExitCode.OK


# --------------------------------------------------------------------------------------
# chat
# --------------------------------------------------------------------------------------


class Transcript:
    """Shows an answer as it arrives: reasoning first, labeled, then the answer text.

    Reasoning and labels go to stderr and the answer to stdout, so redirecting stdout
    keeps just the answer.  Also remembers what the usage line needs: the model that
    answered, its usage and why it stopped.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage: Mapping[str, Any] | None = None
        self.finish_reason: str | None = None
        self.section: str | None = None
        self.answered = False

    def show(self, part: AIMessage) -> None:
        """Print one message or stream chunk and note its metadata."""
        self._write("reasoning", part.additional_kwargs.get("reasoning_content"))
        self._write("answer", part.text)
        self.usage = part.usage_metadata or self.usage
        meta = part.response_metadata
        self.model = str(meta.get("model_name") or self.model)
        self.finish_reason = meta.get("finish_reason") or self.finish_reason

    def _write(self, section: str, text: object) -> None:
        if not isinstance(text, str) or not text:
            return
        if section != self.section:
            self.end_line()
            if "reasoning" in (section, self.section):
                _err(f"[{section}]")
            self.section = section
        self.answered = self.answered or section == "answer"
        stream = self._stream(section)
        stream.write(text)
        stream.flush()

    @staticmethod
    def _stream(section: str | None) -> TextIO:
        return sys.stdout if section == "answer" else sys.stderr

    def end_line(self) -> None:
        """Finish the current line (also after a failure mid-stream, before the error)."""
        if self.section is not None:
            print(file=self._stream(self.section), flush=True)

    def summarize(self) -> None:
        """Note a missing or cut answer, then print the usage line."""
        if not self.answered:
            _err("note: the model returned no answer text.")
        if self.finish_reason == "length":
            _err('note: the answer stopped at the output token limit (finish_reason "length").')
        _err(usage_line(self.model, self.usage))


def usage_line(model: str, usage: Mapping[str, Any] | None) -> str:
    """Tokens in/out/cached and the estimated cost, or why there is none."""
    if not usage:
        return f"tokens: not reported by the service; price unknown [{model}]"
    counts = f"{usage.get('input_tokens', 0)}/{usage.get('output_tokens', 0)}"
    cost = estimate_cost(model, usage)
    price = (
        "price unknown (the catalog has no price for this model)"
        if cost is None
        else f"estimated cost ${cost:.6f}"
    )
    return f"tokens in/out/cached: {counts}/{cached_tokens(usage)}; {price} [{model}]"


def _prompt_messages(args: argparse.Namespace) -> list[BaseMessage]:
    """Build the system message (if any) and the prompt; ``-`` reads the prompt from stdin."""
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    system: list[BaseMessage] = [SystemMessage(args.system)] if args.system else []
    return [*system, HumanMessage(prompt)]


def cmd_chat(args: argparse.Namespace, target: Target) -> ExitCode:
    """One call, streamed or not, then the usage line."""
    llm = _connect(
        target,
        args.model,
        args.project,
        max_tokens=args.max_tokens,
        enable_thinking=args.enable_thinking,
    )
    messages = _prompt_messages(args)
    parts: Iterable[AIMessage] = llm.stream(messages) if args.stream else [llm.invoke(messages)]
    transcript = Transcript(llm.model_name)
    try:
        for part in parts:
            transcript.show(part)
    finally:
        transcript.end_line()
    transcript.summarize()
    return ExitCode.OK


# --------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------


def _step(label: str, action: Callable[[], tuple[T, str]]) -> T:
    """Run one check: print a check mark and what it found, or a cross and re-raise."""
    ok, failed = _marks()
    try:
        value, found = action()
    except BaseException:
        print(f"{failed} {label}", flush=True)
        raise
    print(f"{ok} {label}: {found}", flush=True)
    return value


def _settings(args: argparse.Namespace, target: Target) -> tuple[str | None, str]:
    """Step 1: a key is present and the project is well formed."""
    target.require_key()
    try:
        project = resolve_project(args.project)
    except ValueError as exc:
        raise CliError(str(exc), ExitCode.CONFIG) from exc
    shown = project or "none (W&B uses your default entity and the project 'inference')"
    found = f"key from {target.key_source}, not shown; project {shown}"
    return project, found


def _lifecycle_note(info: ModelInfo | None) -> str:
    """Say what the catalog knows of a model's lifecycle, for check lines and errors."""
    if info is None:
        return "not in the catalog (no metadata, no price)"
    when = f" on {info.retired_on.isoformat()}" if info.retired_on else ""
    instead = f"; replacement: {info.replacement}" if info.replacement else ""
    if info.lifecycle == Lifecycle.RETIRED:
        return f"retired{when}, requests fail with 404{instead}"
    if info.lifecycle == Lifecycle.DEPRECATED:
        return f"deprecated, to be retired{when}{instead}"
    return f"catalog lifecycle: {info.lifecycle.value}"


def _unlisted_message(model: str, served: set[str]) -> str:
    """Why a model is not listed and what to use instead (catalog replacement, case slip)."""
    suggestion = suggest_model_id(model)
    info = model_info(model)
    parts = [f"Model {model!r} is not among the {len(served)} models the service lists."]
    if suggestion:
        listed = "" if suggestion in served else " (not listed either)"
        parts.append(f"Model IDs are case-sensitive: did you mean {suggestion!r}{listed}?")
    elif info is not None:
        parts.append(f"The catalog says: {_lifecycle_note(info)}.")
    parts.append("See `wb-inference models` for the models served now.")
    return " ".join(parts)


def _listing(llm: ChatWBInference) -> tuple[list[ListedModel], str]:
    """Step 2: ``GET /models`` accepts the key (and project)."""
    listed = llm.list_models()
    return listed, f"{len(listed)} models listed"


def _model_listed(model: str, listed: Sequence[ListedModel]) -> tuple[None, str]:
    """Step 3: the service lists the model (LoRA adapters are not listed, so skipped)."""
    if is_lora_artifact(model):
        return None, "a LoRA adapter: not listed by GET /models, the call below checks it"
    served = {m.id for m in listed}
    if not served:
        return None, "the service listed no models (it once did so by mistake); trying the call"
    if model not in served:
        raise CliError(_unlisted_message(model, served), ExitCode.REQUEST)
    return None, f"yes; {_lifecycle_note(model_info(model))}"


def _one_token_call(llm: ChatWBInference) -> tuple[None, str]:
    """Step 4: a 1-token chat call succeeds."""
    started = time.monotonic()
    message = llm.invoke(CHECK_PROMPT, max_tokens=1)
    seconds = time.monotonic() - started
    answered_by = message.response_metadata.get("model_name") or llm.model_name
    return None, f"answered by {answered_by} in {seconds:.2f}s"


def cmd_check(args: argparse.Namespace, target: Target) -> ExitCode:
    """Key, project, authentication, model listing and one call, each reported as a step."""
    model = args.model or DEFAULT_MODEL
    project = _step("1. API key and project", lambda: _settings(args, target))
    llm = _connect(target, model, project)
    listed = _step(
        f"2. GET /models authenticates at {target.shown_base_url}", lambda: _listing(llm)
    )
    _step(f"3. model {model!r} is listed", lambda: _model_listed(model, listed))
    _step("4. a 1-token chat call succeeds", lambda: _one_token_call(llm))
    print("All checks passed.")
    return ExitCode.OK


# --------------------------------------------------------------------------------------
# Parser and entry point
# --------------------------------------------------------------------------------------


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """Make an argparse type from ``int`` or ``float`` that accepts only values above zero."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _add_global_options(parser: argparse.ArgumentParser, *, on_command: bool) -> None:
    """Add the connection options; repeated on each command so they may follow it too.

    On the commands their default is ``SUPPRESS``, so an option not repeated there keeps
    the value given before the command.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if on_command else value

    group = parser.add_argument_group("connection")
    group.add_argument(
        "--emulator",
        action="store_true",
        default=default(False),
        help="run against an in-process emulator (synthetic answers; no account needed)",
    )
    group.add_argument(
        "--base-url",
        default=default(None),
        metavar="URL",
        help=f"API base URL (default: WANDB_INFERENCE_BASE_URL, else {DEFAULT_BASE_URL})",
    )
    group.add_argument(
        "--api-key",
        default=default(None),
        metavar="KEY",
        help="W&B API key; discouraged (shell history, process list): prefer WANDB_API_KEY",
    )
    group.add_argument(
        "--timeout",
        type=_positive(float),
        default=default(None),
        metavar="SECONDS",
        help="per-request timeout (default: 60)",
    )


def _add_project(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project",
        metavar="TEAM/PROJECT",
        help="sent as the OpenAI-Project header (default: WANDB_ENTITY/WANDB_PROJECT)",
    )


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help=f"model ID, case-sensitive (default: {DEFAULT_MODEL})")


def _exit_codes_help() -> str:
    """Return the exit-code table from this module's docstring (one source for both)."""
    doc = __doc__ or ""
    return doc[doc.index("Exit codes:") :].strip()


def build_parser(prog: str = "wb-inference") -> argparse.ArgumentParser:
    """Build the argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=_exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(parser, on_command=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[..., ExitCode], text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=text,
            description=text,
            epilog=_exit_codes_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_global_options(sub, on_command=True)
        _add_project(sub)
        sub.set_defaults(run=run)
        return sub

    models = command("models", cmd_models, "list served models joined with the catalog")
    models.add_argument("--json", action="store_true", help="print a JSON array")

    chat = command("chat", cmd_chat, "send one prompt and print the answer, usage and cost")
    chat.add_argument("prompt", help='the user message ("-" reads it from stdin)')
    _add_model(chat)
    chat.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    chat.add_argument("--system", metavar="TEXT", help="a system message sent before the prompt")
    chat.add_argument("--max-tokens", type=_positive(int), metavar="N", help="cap on output tokens")
    chat.add_argument(
        "--enable-thinking",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="turn reasoning on/off on models that allow it (default: the model's)",
    )

    check = command("check", cmd_check, "verify key, project and a model end to end")
    _add_model(check)
    return parser


def exit_code_for(exc: BaseException) -> ExitCode | None:
    """Return the exit status an expected error means; ``None`` for an unexpected one."""
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, errors.WBInferenceError):
        return exc.exit_code
    return None


def _report(exc: BaseException, secret: str | None) -> ExitCode:
    """Print an error without the key; a traceback only for an unexpected one."""
    mapped = errors.classify(exc)
    code = exit_code_for(mapped)
    if code is not None:
        _err(_scrub(f"error: {mapped}", secret))
        return code
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    _err(_scrub(text.rstrip(), secret))
    _err(f"error: unexpected {type(exc).__name__}; this is a bug, please report it.")
    return ExitCode.UNEXPECTED


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, and reject ``--emulator`` with ``--base-url`` (exit 2 via ``parser.error``)."""
    args = parser.parse_args(argv)
    if args.emulator and args.base_url:
        parser.error("--emulator runs its own server: drop --base-url")
    return args


def main(argv: Sequence[str] | None = None, *, prog: str = "wb-inference") -> int:
    """Run one command; returns the exit status (see the module docstring)."""
    parser = build_parser(prog)
    try:
        args = _parse(parser, argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    secret = _given_key(args)[0]
    try:
        with _target(args) as target:
            return int(args.run(args, target))
    except KeyboardInterrupt:
        _err("interrupted")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        return _report(exc, secret)


if __name__ == "__main__":
    raise SystemExit(main())
