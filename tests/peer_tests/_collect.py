"""Import langchain-openai's own unit tests with ``ChatWBInference`` in place of ``ChatOpenAI``.

pytest collects the fetched directory like any other (upstream's conftests, fixtures and
``__snapshots__`` work as written); only the import of each test module is ours, for two
reasons:

* The swap.  While a module executes, ``langchain_openai.ChatOpenAI`` (and the
  ``chat_models`` / ``chat_models.base`` attributes) name ``ChatWBInference``, so every
  ``from langchain_openai import ChatOpenAI`` binds the real, unmodified class under test
  -- including in ``parametrize`` lists and helper subclasses evaluated at import.
  langchain-openai itself is fully imported beforehand, so none of its own modules can
  pick up the swap.
* The name.  The sdist's tests are the package ``tests`` -- this repo's test package's
  name -- and import each other as ``tests.unit_tests.chat_models.test_base``.  Each is
  imported under exactly that upstream name; :class:`UpstreamImports` resolves
  ``tests.unit_tests.<x>`` into the fetched tree when this repo has no ``<x>`` of its own.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import cache
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from unittest import mock

import langchain_openai
import langchain_openai.chat_models
import langchain_openai.chat_models.base
import pytest

from langchain_wandb_inference import ChatWBInference

HERE = Path(__file__).resolve().parent
OURS = HERE.parent / "unit_tests"
FETCHED = HERE / "_fetched"
FETCH_COMMAND = "bash .ci/fetch-peer-tests"
# What of upstream's tests/unit_tests is collected: the chat-model tests, and the
# top-level modules that construct ChatOpenAI (secrets, serialization, token counts,
# custom tools).  The rest tests other classes (embeddings, LLMs, middleware...).
SCOPE = ("chat_models", "test_secrets.py", "test_load.py", "test_token_counts.py", "test_tools.py")

# Filled at collection by conftest.py: node id -> expected-difference category, and the
# expected.py patterns that matched no upstream test (set only when all were collected).
CATEGORIES = pytest.StashKey[dict[str, str]]()
UNMATCHED = pytest.StashKey[list[str]]()


def peer_root() -> Path:
    """The fetched ``tests`` directory of the *installed* langchain-openai's sdist."""
    return FETCHED / f"langchain-openai-{version('langchain-openai')}"


def fetched() -> bool:
    """Whether ``.ci/fetch-peer-tests`` completed for the installed version."""
    return (peer_root() / ".complete").is_file()


def upstream_name(path: Path) -> str:
    """``tests.unit_tests.chat_models.test_base``: the module's name in upstream's tree."""
    return ".".join(("tests", *path.relative_to(peer_root()).with_suffix("").parts))


def _find_spec(name: str, path: Path) -> ModuleSpec | None:
    """A spec for ``path`` under ``name`` from the first other meta-path finder that has it.

    As pytest's ``importlib`` import mode does: its assertion-rewriting finder comes
    first, so upstream's bare ``assert``s report their values.
    """
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if isinstance(finder, UpstreamImports) or find_spec is None:
            continue
        spec: ModuleSpec | None = find_spec(name, [str(path.parent)])
        if spec is not None and spec.origin == str(path):
            return spec
    return importlib.util.spec_from_file_location(name, path)


class UpstreamImports(MetaPathFinder):
    """Resolve ``tests.unit_tests.<x>`` into the fetched tree unless this repo has ``<x>``."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """Upstream's top-level test packages and modules; deeper names follow ``__path__``."""
        parts = name.split(".")
        if parts[:2] != ["tests", "unit_tests"] or len(parts) != 3:
            return None
        if (OURS / parts[2]).exists() or (OURS / f"{parts[2]}.py").exists():
            return None
        location = peer_root() / "unit_tests" / parts[2]
        if (location / "__init__.py").is_file():
            return importlib.util.spec_from_file_location(
                name, location / "__init__.py", submodule_search_locations=[str(location)]
            )
        if location.with_suffix(".py").is_file():
            return _find_spec(name, location.with_suffix(".py"))
        return None


@cache
def _import_langchain_openai() -> None:
    """Import every langchain-openai module now, so none first runs under the swap."""
    for info in pkgutil.walk_packages(langchain_openai.__path__, "langchain_openai."):
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional dependency missing: that module can't be swapped into
            continue


@contextmanager
def _chat_openai_is_wb() -> Iterator[None]:
    """``ChatOpenAI``, wherever upstream's tests import it from, is ``ChatWBInference``."""
    _import_langchain_openai()
    with ExitStack() as stack:
        for module in (
            langchain_openai,
            langchain_openai.chat_models,
            langchain_openai.chat_models.base,
        ):
            stack.enter_context(mock.patch.object(module, "ChatOpenAI", ChatWBInference))
        yield


class PeerModule(pytest.Module):
    """A fetched test module, imported under its upstream name with the swap in force."""

    def _getobj(self) -> ModuleType:
        name = upstream_name(self.path)
        existing = sys.modules.get(name)
        where = getattr(existing, "__file__", None)
        if existing is not None and (not where or Path(where).resolve() != self.path.resolve()):
            raise pytest.UsageError(f"peer tests: {name!r} is already {existing!r}")
        if not any(isinstance(f, UpstreamImports) for f in sys.meta_path):
            sys.meta_path.insert(0, UpstreamImports())
        with _chat_openai_is_wb():
            module = importlib.import_module(name)
        self.config.pluginmanager.consider_module(module)  # as pytest's importer does
        return module
