"""Running the probe: steps in order under one budget, each exchange recorded and scrubbed.

:func:`run` walks ``steps.STEPS`` (service checks, then each probed model, the
costliest last) and judges every observation against ``probe.ASSUMPTIONS``.  When the
budget guard refuses a request, nothing more is sent: the step in progress and every
later one are reported as skipped for budget.  Against the bundled emulator the few
assumptions it cannot show are reported "not observable offline" and not sent.

Every exchange is recorded as a vcrpy cassette (one per step and model), in memory:
``report`` scans everything for secrets before a byte reaches the disk.  On the
way in, each request and answer goes through the one scrubber (``_redact.Scrubber``,
built from the key and project in use): credentials and the project become
``[REDACTED]``, user agent and ``x-stainless-*`` fingerprints and cookies are dropped,
and response headers other than standard HTTP ones keep their name and shape only.
"""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from langchain_wandb_inference import errors
from langchain_wandb_inference._redact import Scrubber
from langchain_wandb_inference.models import WBModel, model_info
from langchain_wandb_inference.policies import Budget
from langchain_wandb_inference.testing.emulator import Emulator
from langchain_wandb_inference.testing.probe.assumptions import (
    BUDGET,
    BY_NAME,
    FAILED,
    OFFLINE,
    SKIPPED,
    Assumption,
)
from langchain_wandb_inference.testing.probe.steps import STEPS, Context, Seen, Step
from langchain_wandb_inference.testing.probe.wire import STANDARD_HEADERS, Service, Wire, shape
from langchain_wandb_inference.testing.recording import ProvenanceSerializer

DEFAULT_MODELS = (WBModel.LLAMA_3_1_8B_INSTRUCT.value, WBModel.GPT_OSS_20B.value)
"""One cheap generally available model and one cheap reasoning model."""
DEFAULT_BUDGET_USD = 0.05
PROBE_PROJECT = "probe-team/probe-project"
"""The project the probe's emulator knows (when none is given)."""


def emulator(api_key: str | None = None, project: str | None = None, **options: Any) -> Emulator:
    """The bundled emulator set up as the contract describes an account.

    It accepts one project (so an unknown one is refused, §1) and one request in flight
    per project and model (the limit observed live, §6); ``options`` go to
    :class:`Emulator` (a ``backend=``, say).
    """
    options |= {"api_key": api_key} if api_key else {}
    return Emulator(projects={project or PROBE_PROJECT}, concurrency_limit=1, **options)


@dataclass
class Result:
    """One assumption's outcome for one model (``None``: a service-wide assumption)."""

    assumption: Assumption
    model: str | None
    verdict: str
    observed: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None
    cassette: str | None = None


@dataclass
class ProbeRun:
    """A whole probe: where it went, what it found, what it spent, what it recorded."""

    base_url: str
    on_emulator: bool
    models: tuple[str, ...]
    budget_usd: float
    started: datetime.datetime
    scrubber: Scrubber
    results: list[Result] = field(default_factory=list)
    cassettes: dict[str, str] = field(default_factory=dict)
    """Relative path -> cassette YAML, already scrubbed."""
    finished: datetime.datetime | None = None
    spent_usd: float = 0.0
    requests: int = 0


def run(
    service: Service,
    models: Sequence[str] = DEFAULT_MODELS,
    budget_usd: float = DEFAULT_BUDGET_USD,
    *,
    progress: Callable[[str], None] = lambda line: None,
) -> ProbeRun:
    """Observe every assumption on ``service`` within ``budget_usd`` (see the module doc)."""
    # A password in the base URL (a proxy's, say) is a credential too.
    password = urllib.parse.urlsplit(service.base_url).password
    credentials = [service.api_key, *([password] if password else [])]
    scrubber = Scrubber(credentials, [service.project] if service.project else ())
    started = datetime.datetime.now(datetime.timezone.utc)
    probe = ProbeRun(
        service.base_url, service.emulator is not None, tuple(models), budget_usd, started, scrubber
    )
    budget = Budget(budget_usd, warn_at=None)
    recorder = _Recorder(scrubber)
    runner = _Runner(Context(Wire(service, budget), service, budget), recorder, progress)
    try:
        for step in STEPS:
            for model in models if step.per_model else models[:1]:  # service steps: the first
                probe.results += runner.take(step, model)
    finally:
        runner.context.wire.close()
    probe.finished = datetime.datetime.now(datetime.timezone.utc)
    probe.spent_usd, probe.cassettes = budget.spent_usd, runner.recorder.files
    probe.requests = sum(runner.recorder.exchanges.values())
    return probe


class _Runner:
    """Takes the steps in turn; once the budget guard refuses, sends nothing more."""

    def __init__(
        self, context: Context, recorder: _Recorder, progress: Callable[[str], None]
    ) -> None:
        self.context, self.recorder, self.progress = context, recorder, progress
        self.scrubber = recorder.scrubber
        self.stopped: str | None = None
        """The budget refusal, once there was one."""

    def take(self, step: Step, model: str) -> list[Result]:
        """The results of one step for one model (none if no assumption concerns it)."""
        info, shown = model_info(model), model if step.per_model else None
        wanted = [BY_NAME[n] for n in step.observes]
        wanted = [a for a in wanted if not step.per_model or a.applies_to(info)]
        if self.stopped is not None:
            return [Result(a, shown, BUDGET, note=self.stopped) for a in wanted]
        if self.context.service.emulator is not None and all(a.offline for a in wanted):
            return [Result(a, shown, OFFLINE, note=a.offline) for a in wanted]
        if not wanted:
            return []
        self.progress(f"probing {step.name}" + (f" [{model}]" if shown else ""))
        self.context.wanted = frozenset(a.name for a in wanted)
        path = f"cassettes/{step.name}{'__' + model.replace('/', '--') if shown else ''}.yaml"
        try:
            with self.recorder.cassette(path):
                seen = step.run(self.context, model)
        except errors.WBBudgetExceededError as exc:
            self.stopped = self.scrubber.text(str(exc))
            return [Result(a, shown, BUDGET, note=self.stopped) for a in wanted]
        except Exception as exc:  # this observation failed; the next ones may not
            failure = self.scrubber.text(f"{type(exc).__name__}: {exc}")
            cassette = path if path in self.recorder.files else None
            return [Result(a, shown, FAILED, note=failure, cassette=cassette) for a in wanted]
        cassette = path if path in self.recorder.files else None
        return [self._judged(a, shown, seen.get(a.name), cassette) for a in wanted]

    def _judged(
        self, assumption: Assumption, model: str | None, seen: Seen | None, cassette: str | None
    ) -> Result:
        if seen is None or seen.observed is None:
            note = seen.note if seen is not None else "the step made no observation"
            return Result(assumption, model, SKIPPED, note=note, cassette=cassette)
        observed = self.scrubber.text(seen.observed)
        evidence = self.scrubber.value(dict(seen.evidence))
        return Result(
            assumption, model, assumption.judge(observed), observed, evidence, cassette=cassette
        )


class _Recorder:
    """vcrpy cassettes held in memory (``files``), every exchange scrubbed on record."""

    _SERIALIZER = "wb-probe-yaml"

    def __init__(self, scrubber: Scrubber) -> None:
        import vcr  # optional: the ``probe`` extra

        self.scrubber = scrubber
        self.files: dict[str, str] = {}
        self.exchanges: dict[str, int] = {}
        """Exchanges per cassette: every request the probe (and ChatWBInference) sent."""
        self.vcr = vcr.VCR(
            record_mode="all",
            serializer=self._SERIALIZER,
            decode_compressed_response=True,
            before_record_request=self._request,
            before_record_response=self._response,
        )
        # The provenance line comes from the URLs recorded, as in every cassette.
        self.vcr.register_serializer(self._SERIALIZER, ProvenanceSerializer())
        self.vcr.register_persister(self)

    def cassette(self, path: str) -> AbstractContextManager[Any]:
        """Record every HTTP exchange made inside the ``with`` block under ``path``."""
        recording: AbstractContextManager[Any] = self.vcr.use_cassette(path)
        return recording

    @staticmethod
    def load_cassette(path: str, serializer: Any) -> Any:
        """Nothing is ever replayed: every cassette starts empty."""
        from vcr.persisters.filesystem import CassetteNotFoundError

        raise CassetteNotFoundError(path)

    def save_cassette(self, path: str, cassette: dict[str, Any], serializer: Any) -> None:
        """Keep the cassette's YAML in memory, for the scan before writing."""
        from vcr.serialize import serialize

        self.files[str(path)] = serialize(cassette, serializer)
        self.exchanges[str(path)] = len(cassette["requests"])

    def _request(self, request: Any) -> Any:
        for name in list(request.headers):
            if name.lower() == "user-agent" or name.lower().startswith("x-stainless-"):
                del request.headers[name]
        self.scrubber.headers(request.headers)
        request.uri = self.scrubber.text(request.uri)
        request.body = self.scrubber.value(request.body)
        return request

    def _response(self, response: dict[str, Any]) -> dict[str, Any]:
        kept: dict[str, list[str]] = {}
        for name, values in (response.get("headers") or {}).items():
            lowered = name.lower()
            if lowered not in ("set-cookie", "cookie"):
                kept[name] = values if lowered in STANDARD_HEADERS else [shape(v) for v in values]
        response["headers"] = kept
        body = response.get("body") or {}
        if "string" in body:
            body["string"] = self.scrubber.value(body["string"])
        return response


def on_emulator(models: Sequence[str]) -> ProbeRun:
    """The probe against a fresh probe emulator: what the emulator does today (``learn``)."""
    with emulator() as emu:
        return run(Service(emu.base_url, emu.api_key, PROBE_PROJECT, emulator=emu), models, 1.0)
