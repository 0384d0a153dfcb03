"""Every committed cassette is safe to publish and says where its answers came from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from langchain_wandb_inference._redact import Scrubber
from langchain_wandb_inference.testing.recording import (
    EMULATOR_PROVENANCE,
    REQUEST_HEADERS_SCRUBBED,
    provenance_of,
)

SCAN = Scrubber()
"""The package's one scrubber, knowing no secret: it finds key-shaped strings."""

CASSETTES = sorted((Path(__file__).parents[2] / "cassettes").rglob("*.yaml"))


def test_there_are_cassettes() -> None:
    assert len(CASSETTES) >= 50


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_cassette_holds_no_secret_and_names_its_source(path: Path) -> None:
    text = path.read_text()
    assert SCAN.find(text) == []
    provenance = provenance_of(text)
    assert provenance is not None
    assert provenance == EMULATOR_PROVENANCE or provenance.startswith(
        "Recorded against the live W&B Inference API"
    )
    data = yaml.safe_load(text)
    for interaction in data["interactions"]:
        headers = {name.lower() for name in interaction["request"]["headers"]}
        assert not headers & set(REQUEST_HEADERS_SCRUBBED), headers
        assert not any(name.startswith("x-stainless-") for name in headers)
        response_headers = {name.lower() for name in interaction["response"]["headers"]}
        assert "set-cookie" not in response_headers


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abcdefgh12345678",
        "key 0123456789abcdef0123456789abcdef01234567 here",
        "sk-proj-abcdefghijklmnop1234",
        "wandb_v1-abcdefghijklmnopqrstuvwxyz",
    ],
)
def test_scanner_finds_key_like_strings(text: str) -> None:
    assert SCAN.find(text)


def test_scanner_ignores_ordinary_ids() -> None:
    assert (
        SCAN.find(
            '{"id": "chatcmpl-229ac4e3b86d14372ed14dc0", "tool": "call_93a3b5620f8ea7e49e55ca23"}'
        )
        == []
    )
