"""The peer gate: langchain-openai's own unit tests, run on ``ChatWBInference``.

``_fetched/`` (filled by ``bash .ci/fetch-peer-tests``) is collected like any test
directory; :class:`~tests.peer_tests._collect.PeerModule` imports its modules with
``ChatOpenAI`` swapped for ``ChatWBInference``; ``expected.py`` lists the differences
that are meant, marked ``xfail(strict=True)`` or skipped here.  Any other failure fails.
"""

from __future__ import annotations

import os
import re
import socket
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

import pytest
from pytest_socket import SocketBlockedError
from syrupy.assertion import SnapshotAssertion
from syrupy.data import SnapshotCollections
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.location import PyTestLocation

from tests.peer_tests._collect import (
    CATEGORIES,
    FETCHED,
    SCOPE,
    UNMATCHED,
    PeerModule,
    fetched,
    peer_root,
)
from tests.peer_tests.expected import EXPECTED, Expected

# Upstream's unit tests get OPENAI_API_KEY from this fixture of theirs.
UPSTREAM_ENV_FIXTURE = "hermetic_env"


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Collect the installed version's complete tree only, and in it only ``SCOPE``."""
    if collection_path.parent == FETCHED:
        return collection_path != peer_root() or not fetched()
    if collection_path.parent == peer_root() / "unit_tests":
        return collection_path.name not in SCOPE
    return None


def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> pytest.Module | None:
    """Fetched test modules are imported by :class:`PeerModule`."""
    if peer_root() in module_path.parents:
        return PeerModule.from_parent(parent, path=module_path)
    return None


def peer_id(item: pytest.Item) -> str | None:
    """``chat_models/test_base.py::test_x`` for an upstream test, else ``None``."""
    if item.getparent(PeerModule) is None:
        return None
    where = item.path.relative_to(peer_root() / "unit_tests").as_posix()
    return f"{where}::{item.nodeid.split('::', 1)[1]}"


def _matches(pattern: str, text: str) -> bool:
    """``*`` matches anything; everything else (``[`` included) is literal."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), text) is not None


def _expected(item: pytest.Item, item_id: str) -> Expected | None:
    found = [e for e in EXPECTED if _matches(e.pattern, item_id)]
    if len(found) > 1:
        patterns = [e.pattern for e in found]
        raise pytest.UsageError(f"peer tests: {item_id} matches several entries: {patterns}")
    if found:
        return found[0]
    params = getattr(item, "callspec", None)
    others = [
        v.__name__
        for v in (params.params.values() if params else ())
        if isinstance(v, type) and v.__module__.startswith("langchain_openai")
    ]
    if others:  # e.g. test_secrets.py::...[OpenAIEmbeddings]: not the chat model
        reason = f"parametrized with {', '.join(others)}, not the chat model"
        return Expected(item_id, "not under test", reason, skip=True)
    return None


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so stale entries are judged on all
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each expected difference ``xfail(strict=True)``, or skip it, with its reason."""
    used: set[str] = set()
    modules: set[Path] = set()
    categories: dict[str, str] = {}
    for item in items:
        item_id = peer_id(item)
        expected = _expected(item, item_id) if item_id else None
        if item_id:
            modules.add(item.path)
        if expected is None:
            continue
        used.add(expected.pattern)
        categories[item.nodeid] = expected.category
        reason = f"[{expected.category}] {expected.reason}"
        mark = (
            pytest.mark.skip(reason=reason)
            if expected.skip
            else pytest.mark.xfail(reason=reason, strict=True, raises=expected.raises)
        )
        item.add_marker(mark, append=False)  # ahead of upstream's own (non-strict) xfails
    config.stash[CATEGORIES] = categories
    in_scope = {p for p in (peer_root() / "unit_tests").rglob("test_*.py") if _in_scope(p)}
    if fetched() and modules == in_scope:  # everything collected: every entry must match
        config.stash[UNMATCHED] = [e.pattern for e in EXPECTED if e.pattern not in used]


def _in_scope(path: Path) -> bool:
    return path.relative_to(peer_root() / "unit_tests").parts[0] in SCOPE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Upstream tests by outcome, and expected differences by category."""
    outcome_of: dict[str, str] = {}
    for outcome in ("passed", "xpassed", "xfailed", "skipped", "failed", "error"):  # worst wins
        for report in terminalreporter.stats.get(outcome, []):
            if "/_fetched/" in getattr(report, "nodeid", ""):
                outcome_of[report.nodeid] = outcome
    if not outcome_of:
        return
    categories = terminalreporter.config.stash.get(CATEGORIES, {})
    expected = Counter(
        categories[n] for n, o in outcome_of.items() if n in categories and o != "passed"
    )
    terminalreporter.section("peer gate: langchain-openai's own tests on ChatWBInference")
    outcomes = Counter(outcome_of.values())
    terminalreporter.line(", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())))
    for category, n in expected.most_common():
        terminalreporter.line(f"{n:5d} expected: {category}")


class ModuleSnapshots(AmberSnapshotExtension):
    """Amber snapshots, discovering only the test module's own ``.ambr`` file."""

    def discover_snapshots(
        self, *, test_location: PyTestLocation, ignore_extensions: list[str] | None = None
    ) -> SnapshotCollections:
        """The module's own file of ``__snapshots__``, not its neighbours'."""
        own = SnapshotCollections()
        found = super().discover_snapshots(
            test_location=test_location, ignore_extensions=ignore_extensions
        )
        for collection in found:
            if Path(collection.location).stem == test_location.basename:
                own.add(collection)
        return own


@pytest.fixture
def snapshot(request: pytest.FixtureRequest) -> SnapshotAssertion:
    """syrupy's ``snapshot``, blind to other modules' snapshot files, and read-only.

    syrupy reads every file in ``__snapshots__`` and fails the session over any that no
    test used: here those of upstream modules skipped (Azure) or failing before their
    snapshot assertion (Responses API) -- which says nothing about ChatWBInference.
    Upstream's snapshots are the reference: ``--snapshot-update`` never rewrites them.
    """
    return SnapshotAssertion(
        update_snapshots=False,
        update_new_snapshots_only=False,
        extension_class=ModuleSnapshots,
        test_location=PyTestLocation(request.node),
        session=request.config._syrupy,  # type: ignore[attr-defined]
    )


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection and no DNS: upstream's unit tests mock the API.

    Unlike ``tests/unit_tests`` (pytest-socket's ``disable_socket``), creating a socket
    is allowed: langchain-openai probes TCP keepalive options on an unconnected socket,
    and its tests of that probing must run for the keepalive settings to be compared.
    """
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family != socket.AF_UNIX:  # the event loop's self-pipe is AF_UNIX
            raise SocketBlockedError()
        real_connect(sock, address)

    def resolve(*args: Any, **kwargs: Any) -> NoReturn:
        raise SocketBlockedError()

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(socket, "gethostbyname", resolve)


@pytest.fixture(autouse=True)
def _wandb_key_as_openai_key(request: pytest.FixtureRequest) -> None:
    """Give ChatWBInference the key upstream's fixture gives ChatOpenAI, as WANDB_API_KEY.

    Only that fixture's key is mirrored: a test setting ``OPENAI_API_KEY`` itself finds
    that ChatWBInference ignores it (an expected difference).
    """
    if request.node.getparent(PeerModule) is None:
        return
    request.getfixturevalue(UPSTREAM_ENV_FIXTURE)
    request.getfixturevalue("monkeypatch").setenv("WANDB_API_KEY", os.environ["OPENAI_API_KEY"])
