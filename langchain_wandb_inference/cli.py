"""W&B Inference from the command line: models, one prompt, a setup check, a probe.

The key comes from WANDB_API_KEY (create one at https://wandb.ai/authorize); the
project from --project or WANDB_ENTITY/WANDB_PROJECT.  Every command goes through
ChatWBInference (same configuration, retries, error mapping and catalog as library
code) and an error exits with its class's exit code.  Results go to stdout;
reasoning, the usage line, notes and errors go to stderr, so "> file" keeps only the
result; neither the key nor the project is ever printed.  Try it without an account:
--emulator.  Also: python -m langchain_wandb_inference.

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
import dataclasses
import datetime
import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import SecretStr

from langchain_wandb_inference import errors
from langchain_wandb_inference._redact import Scrubber
from langchain_wandb_inference._table import prices, table
from langchain_wandb_inference.chat_models import DEFAULT_MODEL, ChatWBInference, resolve_project
from langchain_wandb_inference.errors import DEFAULT_BASE_URL, KEYS_URL, ExitCode
from langchain_wandb_inference.models import (
    Lifecycle,
    ModelInfo,
    is_lora_artifact,
    model_info,
    suggest_model_id,
    unlisted_models,
)
from langchain_wandb_inference.testing import Emulator
from langchain_wandb_inference.testing.probe import report as probe_report
from langchain_wandb_inference.testing.probe import run as probe_run
from langchain_wandb_inference.testing.probe.wire import Service
from langchain_wandb_inference.usage import cached_tokens, estimate_cost

__all__ = ["ExitCode", "build_parser", "main"]

EMULATOR_BANNER = "using the local emulator: answers are synthetic, not from W&B"
NO_KEY_MESSAGE = (
    f"No W&B API key. Create one at {KEYS_URL}, then `export WANDB_API_KEY=...` "
    "(or pass --api-key, which leaves the key in your shell history). To try the "
    "commands without an account, add --emulator."
)
NO_MODELS = "the service listed no models (it once did so by mistake)"
DESCRIPTION, _, EXIT_CODES = (__doc__ or "").partition("\n\nExit codes:")


class CliError(Exception):
    """A failure the CLI itself finds, with an ``exit_code`` like the package's errors."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.CONFIG) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _err(text: str = "") -> None:
    """Print a note, label or error on stderr (looked up per call: tests swap it)."""
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Target:
    """The service to call and the key to call it with (``None``: none was found).

    A missing key fails on first use, so that ``check`` reports it as its first step.
    """

    api_key: str | None
    key_source: str
    base_url: str | None
    timeout: float | None
    emulator: Emulator | None = None

    def require_key(self) -> str:
        """The key, or a configuration error saying how to get one."""
        if not self.api_key:
            raise CliError(NO_KEY_MESSAGE)
        return self.api_key

    def connect(
        self, model: str | None = None, project: str | None = None, **options: Any
    ) -> ChatWBInference:
        """The :class:`ChatWBInference` a command talks through; bad settings exit 3."""
        if self.timeout is not None:
            options["timeout"] = self.timeout
        options |= {"api_key": SecretStr(self.require_key()), "base_url": self.base_url}
        try:
            return ChatWBInference(model=model or DEFAULT_MODEL, project=project, **options)
        except pydantic.ValidationError as exc:  # its str() is framed for developers
            problems = exc.errors(include_input=False, include_url=False, include_context=False)
            message = " ".join(str(p["msg"]).removeprefix("Value error, ") for p in problems)
            raise CliError(message) from exc


def _given_key(args: argparse.Namespace) -> tuple[str | None, str]:
    """The key from ``--api-key`` or ``WANDB_API_KEY`` (blank: none), and its source."""
    if args.api_key and args.api_key.strip():
        return args.api_key.strip(), "--api-key"
    return os.environ.get("WANDB_API_KEY", "").strip() or None, "WANDB_API_KEY"


def _base_url(args: argparse.Namespace) -> str | None:
    """``--base-url`` or ``WANDB_INFERENCE_BASE_URL`` (``None``: W&B's), checked here.

    Why: a typo such as a missing scheme would otherwise surface as "connection failed"
    after retries (exit 7) instead of a configuration error.
    """
    url = args.base_url or os.environ.get("WANDB_INFERENCE_BASE_URL") or None
    parts = urlsplit(url or DEFAULT_BASE_URL)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        source = "--base-url" if args.base_url else "WANDB_INFERENCE_BASE_URL"
        raise CliError(f"{source} must be an http(s) URL such as {DEFAULT_BASE_URL}, got {url!r}.")
    return url


def _project(args: argparse.Namespace, *, strict: bool = True) -> str | None:
    """The project (``--project``, else the environment); malformed: exit 3 if ``strict``.

    Not ``strict``, a malformed ``--project`` comes back as given: the scrubber hides it.
    """
    try:
        return resolve_project(args.project)
    except ValueError as exc:
        if strict:
            raise CliError(str(exc)) from exc
        return str(args.project) if args.project else None


@contextmanager
def _target(args: argparse.Namespace) -> Iterator[Target]:
    """The W&B service, or (``--emulator``) the command's own emulator while it runs.

    The emulator takes ``--api-key`` when given, else its fake key; ``WANDB_API_KEY``
    is never sent to it.
    """
    if not args.emulator:
        key, source = _given_key(args)
        if args.api_key:
            _err("note: --api-key leaves the key in shell history; prefer WANDB_API_KEY.")
        yield Target(key, source, _base_url(args), args.timeout)
        return
    with args.serve(args.api_key, _project(args, strict=False)) as emu:
        _err(f"note: {EMULATOR_BANNER} ({emu.base_url}).")
        yield Target(emu.api_key, "the emulator (fake)", emu.base_url, args.timeout, emu)


def _emulator(api_key: str | None, project: str | None) -> Emulator:
    """The emulator of ``models``, ``chat`` and ``check``: any project, every model."""
    return Emulator(api_key=api_key) if api_key else Emulator()


# --- models ---------------------------------------------------------------------------

_NOTES = dict(listed="", not_in_catalog="not in catalog", not_listed="catalog only: not served now")
_COLUMNS = ["MODEL", "CONTEXT", "VISION", "REASONING", "$/1M IN/OUT/CACHED", "LIFECYCLE", "NOTE"]


def model_row(model_id: str, info: ModelInfo | None, status: str) -> dict[str, Any]:
    """One model as ``--json`` prints it and the table shows it (``None``: no figure)."""
    row = dict.fromkeys(("context_window", "vision", "reasoning", "price", "lifecycle"))
    row |= {"id": model_id, "status": status, "replacement": None}
    if info is not None:
        row |= {"context_window": info.context_window, "vision": info.vision}
        row |= {"reasoning": info.reasoning.value, "lifecycle": info.lifecycle.value}
        row |= {"price": dataclasses.asdict(info.price) if info.price else None}
        row |= {"replacement": info.replacement}
    return row


def _cells(row: Mapping[str, Any]) -> list[str]:
    note, instead, price = _NOTES[row["status"]], row["replacement"], row["price"]
    if instead:
        note = f"{note}; use {instead}" if note else f"use {instead}"
    cells = [row["id"], "?" if row["context_window"] is None else f"{row['context_window']:,}"]
    cells.append({None: "?", True: "yes", False: "-"}[row["vision"]])
    cells.append(row["reasoning"] or "?")
    cells.append(prices(price.values()) if price else "?")
    return [*cells, row["lifecycle"] or "?", note]


def cmd_models(args: argparse.Namespace, target: Target) -> None:
    """The served models with the catalog's context, abilities, prices and lifecycle."""
    listed = target.connect(project=args.project).list_models()
    if not listed:
        _err(f"note: {NO_MODELS}; try again later.")
    listed.sort(key=lambda m: m.id.casefold())
    rows = [model_row(m.id, m.info, "listed" if m.info else "not_in_catalog") for m in listed]
    rows += [model_row(i.id, i, "not_listed") for i in unlisted_models({m.id for m in listed})]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(table([_COLUMNS, *map(_cells, rows)]))
    _err("prices: USD per 1M tokens, catalog snapshot; W&B's Billing page is authoritative.")


# --- chat -----------------------------------------------------------------------------


class Transcript:
    """Shows an answer as it arrives: reasoning (labeled) on stderr, the answer on stdout.

    Also keeps what the usage line needs: who answered, the usage, why it stopped.
    """

    def __init__(self, model: str) -> None:
        self.model, self.finish_reason = model, None
        self.usage: Mapping[str, Any] | None = None
        self.section: str | None = None
        self.answered = False

    def show(self, part: AIMessage) -> None:
        """Print one message or stream chunk and note its metadata."""
        self._write("reasoning", part.additional_kwargs.get("reasoning_content"))
        self._write("answer", part.text)
        self.usage = part.usage_metadata or self.usage
        self.model = str(part.response_metadata.get("model_name") or self.model)
        self.finish_reason = part.response_metadata.get("finish_reason") or self.finish_reason

    def _write(self, section: str, text: object) -> None:
        if not isinstance(text, str) or not text:
            return
        if section != self.section:
            self.end_line()
            if "reasoning" in (section, self.section):
                _err(f"[{section}]")
            self.section = section
        self.answered = self.answered or section == "answer"
        print(text, end="", file=sys.stdout if section == "answer" else sys.stderr, flush=True)

    def end_line(self) -> None:
        """Finish the current line (also after a failure mid-stream, before the error)."""
        if self.section is not None:
            print(file=sys.stdout if self.section == "answer" else sys.stderr, flush=True)


def usage_line(model: str, usage: Mapping[str, Any] | None) -> str:
    """Tokens in/out/cached and the estimated cost, or why there is none."""
    if not usage:
        return f"tokens: not reported by the service; price unknown [{model}]"
    cost = estimate_cost(model, usage)
    price = "price unknown (the catalog has no price for this model)"
    if cost is not None:
        price = f"estimated cost ${cost:.6f}"
    counts = (usage.get("input_tokens", 0), usage.get("output_tokens", 0), cached_tokens(usage))
    return f"tokens in/out/cached: {'/'.join(map(str, counts))}; {price} [{model}]"


def cmd_chat(args: argparse.Namespace, target: Target) -> None:
    """One call, streamed or not, then the usage line; ``-`` reads the prompt from stdin."""
    options = {"max_tokens": args.max_tokens, "enable_thinking": args.enable_thinking}
    llm = target.connect(args.model, args.project, **options)
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    system: list[BaseMessage] = [SystemMessage(args.system)] if args.system else []
    messages = [*system, HumanMessage(prompt)]
    parts: Iterable[AIMessage] = llm.stream(messages) if args.stream else [llm.invoke(messages)]
    transcript = Transcript(llm.model_name)
    try:
        for part in parts:
            transcript.show(part)
    finally:
        transcript.end_line()
    if not transcript.answered:
        _err("note: the model returned no answer text.")
    if transcript.finish_reason == "length":
        _err('note: the answer stopped at the output token limit (finish_reason "length").')
    _err(usage_line(transcript.model, transcript.usage))


# --- check ----------------------------------------------------------------------------


@contextmanager
def _step(label: str) -> Iterator[list[str]]:
    """One check: the body appends what it found; a check mark, or a cross and re-raise.

    The marks fall back to ASCII when stdout cannot encode them.
    """
    try:
        ok, failed = "\u2713", "\u2717"
        (ok + failed).encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        ok, failed = "[ok]", "[FAILED]"
    found: list[str] = []
    try:
        yield found
    except BaseException:
        print(f"{failed} {label}", flush=True)
        raise
    print(f"{ok} {label}: {'; '.join(found)}", flush=True)


def _lifecycle_note(info: ModelInfo | None) -> str:
    """What the catalog knows of a model's lifecycle, for check lines and errors."""
    if info is None:
        return "not in the catalog (no metadata, no price)"
    when = f" on {info.retired_on.isoformat()}" if info.retired_on else ""
    instead = f"; replacement: {info.replacement}" if info.replacement else ""
    if info.lifecycle == Lifecycle.RETIRED:
        return f"retired{when}, requests fail with 404{instead}"
    if info.lifecycle == Lifecycle.DEPRECATED:
        return f"deprecated, to be retired{when}{instead}"
    return f"catalog lifecycle: {info.lifecycle.value}"


def _not_listed(model: str, served: set[str]) -> CliError:
    """Why a model is not listed, and what to use instead (a case slip, a replacement)."""
    why = [f"Model {model!r} is not among the {len(served)} models the service lists."]
    if suggestion := suggest_model_id(model):
        also = "" if suggestion in served else " (not listed either)"
        why.append(f"Model IDs are case-sensitive: did you mean {suggestion!r}{also}?")
    elif model_info(model) is not None:
        why.append(f"The catalog says: {_lifecycle_note(model_info(model))}.")
    why.append("See `wb-inference models` for the models served now.")
    return CliError(" ".join(why), ExitCode.REQUEST)


def cmd_check(args: argparse.Namespace, target: Target) -> None:
    """Key, project, authentication, model listing and one call, each reported as a step."""
    model = args.model or DEFAULT_MODEL
    with _step("1. API key and project") as found:
        target.require_key()
        project = _project(args)
        shown = "set, not shown" if project else "none (W&B uses your default entity, 'inference')"
        found.append(f"key from {target.key_source}, not shown; project {shown}")
    llm = target.connect(model, project)
    with _step(f"2. GET /models authenticates at {target.base_url or DEFAULT_BASE_URL}") as found:
        served = {m.id for m in llm.list_models()}
        found.append(f"{len(served)} models listed")
    with _step(f"3. model {model!r} is listed") as found:
        if is_lora_artifact(model):
            found.append("a LoRA adapter: not listed by GET /models, the call below checks it")
        elif not served:
            found.append(f"{NO_MODELS}; trying the call")
        elif model not in served:
            raise _not_listed(model, served)
        else:
            found.append(f"yes; {_lifecycle_note(model_info(model))}")
    with _step("4. a 1-token chat call succeeds") as found:
        started = time.monotonic()
        message = llm.invoke("Reply with OK.", max_tokens=1)
        answered_by = message.response_metadata.get("model_name") or llm.model_name
        found.append(f"answered by {answered_by} in {time.monotonic() - started:.2f}s")
    print("All checks passed.")


# --- probe ----------------------------------------------------------------------------


def cmd_probe(args: argparse.Namespace, target: Target) -> None:
    """Observe the contract's assumptions on the target, print the table, write the files."""
    if importlib.util.find_spec("vcr") is None:
        raise CliError(
            "probe records vcrpy cassettes: pip install 'langchain-wandb-inference[probe]'"
        )
    project = _project(args) or (probe_run.PROBE_PROJECT if target.emulator else None)
    where, key, timeout = target.base_url or DEFAULT_BASE_URL, target.require_key(), target.timeout
    service = Service(where, key, project, timeout or 60.0, target.emulator)
    now = datetime.datetime.now(datetime.timezone.utc)
    out = Path(args.out or f"wb-inference-probe-{now:%Y%m%dT%H%M%SZ}")
    _err(f"cost cap: ${args.budget_usd:g} ({probe_report.CAP})")
    run = probe_run.run(
        service, args.models, args.budget_usd, progress=lambda line: _err("  " + line)
    )
    print(probe_report.terminal_table(run))
    written = probe_report.write(run, out)  # a SecretLeakError exits 1, nothing written
    _err(probe_report.summary(run))
    _err(f"wrote {out}/: report.md, report.json, cassettes/ ({len(written)} files)")
    _err(probe_report.SHARE)


def _model_list(text: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    if not models:
        raise argparse.ArgumentTypeError("name at least one model")
    return models


# --- parser and entry point -----------------------------------------------------------

# The connection options are shared (``parents=``) by the top parser and every command,
# so they may come before or after it.  Their default is SUPPRESS, so that a command's
# parser does not reset a value given before it; parsing starts from these defaults.
_CONNECTION_DEFAULTS = {"emulator": False, "base_url": None, "api_key": None, "timeout": None}
_POSITIVE = {"timeout": "--timeout", "max_tokens": "--max-tokens", "budget_usd": "--budget-usd"}


def build_parser(prog: str = "wb-inference") -> argparse.ArgumentParser:
    """The argument parser for every command."""
    hide = argparse.SUPPRESS
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument(
        "--emulator",
        action="store_true",
        default=hide,
        help="run against an in-process emulator (synthetic answers; no account needed)",
    )
    url_help = f"API base URL (default: WANDB_INFERENCE_BASE_URL, else {DEFAULT_BASE_URL})"
    group.add_argument("--base-url", metavar="URL", default=hide, help=url_help)
    key_help = "W&B API key; discouraged (shell history, process list): prefer WANDB_API_KEY"
    group.add_argument("--api-key", metavar="KEY", default=hide, help=key_help)
    timeout_help = "per-request timeout (default: 60)"
    group.add_argument("--timeout", type=float, metavar="SECONDS", default=hide, help=timeout_help)
    project = argparse.ArgumentParser(add_help=False)
    project_help = "sent as the OpenAI-Project header (default: WANDB_ENTITY/WANDB_PROJECT)"
    project.add_argument("--project", metavar="TEAM/PROJECT", help=project_help)
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", help=f"model ID, case-sensitive (default: {DEFAULT_MODEL})")

    layout: dict[str, Any] = {
        "epilog": "Exit codes:" + EXIT_CODES.rstrip(),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, parents=[connection], **layout
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, run: Callable[..., None], text: str, *more: argparse.ArgumentParser
    ) -> Any:
        parents = [connection, project, *more]
        sub = commands.add_parser(name, help=text, description=text, parents=parents, **layout)
        sub.set_defaults(run=run, serve=_emulator)
        return sub

    models = command("models", cmd_models, "list served models joined with the catalog")
    models.add_argument("--json", action="store_true", help="print a JSON array")
    chat = command("chat", cmd_chat, "send one prompt; print the answer, usage and cost", model)
    chat.add_argument("prompt", help='the user message ("-" reads it from stdin)')
    chat.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    chat.add_argument("--system", metavar="TEXT", help="a system message sent before the prompt")
    chat.add_argument("--max-tokens", type=int, metavar="N", help="cap on output tokens")
    thinking_help = "turn reasoning on/off on models that allow it (default: the model's)"
    chat.add_argument(
        "--enable-thinking", action=argparse.BooleanOptionalAction, help=thinking_help
    )
    command("check", cmd_check, "verify key, project and a model end to end", model)
    probe = command("probe", cmd_probe, "check the service against the contract; write a report")
    probe.set_defaults(serve=probe_run.emulator, models=probe_run.DEFAULT_MODELS)
    probe.set_defaults(budget_usd=probe_run.DEFAULT_BUDGET_USD)
    models_help = f"models to probe (default: {','.join(probe_run.DEFAULT_MODELS)})"
    probe.add_argument("--models", type=_model_list, metavar="M1,M2", help=models_help)
    probe.add_argument("--out", metavar="DIR", help="default: ./wb-inference-probe-<UTC time>")
    budget_help = f"cost cap, estimated USD (default: {probe_run.DEFAULT_BUDGET_USD})"
    probe.add_argument("--budget-usd", type=float, metavar="X", help=budget_help)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, then refuse what argparse cannot express (exit 2 via ``parser.error``)."""
    args = parser.parse_args(argv, argparse.Namespace(**_CONNECTION_DEFAULTS))
    for name, flag in _POSITIVE.items():
        if getattr(args, name, None) is not None and not getattr(args, name) > 0:
            parser.error(f"argument {flag}: must be greater than 0")
    if args.emulator and args.base_url:
        parser.error("--emulator runs its own server: drop --base-url")
    return args


def _report(exc: BaseException, scrubber: Scrubber) -> int:
    """Print an error without secrets; a traceback only for an unexpected one."""
    mapped = errors.classify(exc)
    if isinstance(code := getattr(mapped, "exit_code", None), ExitCode):  # ours, expected
        _err(scrubber.text(f"error: {mapped}"))
        return code
    _err(scrubber.text("".join(traceback.format_exception(exc)).rstrip()))
    _err(f"error: unexpected {type(exc).__name__}; this is a bug, please report it.")
    return ExitCode.UNEXPECTED


def main(argv: Sequence[str] | None = None, *, prog: str = "wb-inference") -> int:
    """Run one command; returns the exit status (see the module docstring)."""
    try:
        args = _parse(build_parser(prog), argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    key, project = _given_key(args)[0], _project(args, strict=False)
    scrubber = Scrubber([key] if key else (), [project] if project else ())
    try:
        with _target(args) as target:
            args.run(args, target)
        return ExitCode.OK
    except KeyboardInterrupt:
        _err("interrupted")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        return _report(exc, scrubber)


if __name__ == "__main__":
    raise SystemExit(main())
