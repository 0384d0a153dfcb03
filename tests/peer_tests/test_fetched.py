"""Checks on the peer gate itself: the upstream tests are there, and expected.py is current."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tests.peer_tests._collect import FETCH_COMMAND, UNMATCHED, fetched


def test_langchain_openai_unit_tests_fetched() -> None:
    """Skipped, naming the command, until the installed version's tests are fetched."""
    if not fetched():
        pytest.skip(
            f"langchain-openai {version('langchain-openai')}'s own unit tests are not "
            f"fetched: run `{FETCH_COMMAND}` (PYTHON=<this environment's python>)"
        )


def test_every_expected_difference_matches_a_test(request: pytest.FixtureRequest) -> None:
    """An entry matching nothing (upstream renamed or dropped a test) must be updated."""
    unmatched = request.config.stash.get(UNMATCHED, None)
    if unmatched is None:
        pytest.skip("checked only when every upstream module in scope is collected")
    assert not unmatched, f"expected.py entries that match no upstream test: {unmatched}"
