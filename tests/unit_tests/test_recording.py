"""The VCR configuration through vcrpy itself: a cassette appended, scrubbed and written.

No HTTP here: requests and responses are handed to a real ``vcr`` cassette the way
vcrpy's stubs hand them over (``Cassette.append``), so what is tested is the order
vcrpy filters in, the scrubbing, and the file it writes.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import vcr
from vcr.request import Request

from langchain_wandb_inference._redact import KEY_PATTERNS, REDACTED
from langchain_wandb_inference.testing.recording import (
    EMULATOR_PROVENANCE,
    match_body,
    provenance,
    provenance_of,
    register,
    vcr_config,
)

KEY = "key-0123456789-SECRET-abcdef"  # not key-shaped: only reading the header finds it
PROJECT = "acme-team/secret-project"
ENTITY = "acme-team"
URL = "http://127.0.0.1:8000/v1/chat/completions"


def request(uri: str, body: str = "{}") -> Request:
    headers = {
        "Authorization": f"Bearer {KEY}",
        "OpenAI-Project": PROJECT,
        "User-Agent": "OpenAI/Python 3.57.0",
        "X-Stainless-Lang": "python",
        "Content-Type": "application/json",
    }
    return Request("POST", uri, body.encode(), headers)


def response(body: str, **headers: str) -> dict[str, Any]:
    return {
        "status": {"code": 200, "message": "OK"},
        "headers": {name.replace("_", "-"): [value] for name, value in headers.items()},
        "body": {"string": body.encode()},
    }


def record(tmp_path: Path, *pairs: tuple[Request, dict[str, Any]]) -> str:
    """Append ``pairs`` to a cassette through vcrpy, save it, and return the file's text."""
    config = vcr_config()
    recorder = vcr.VCR(record_mode="all")
    register(recorder)
    path = tmp_path / "cassette.yaml"
    with recorder.use_cassette(str(path), **config) as cassette:
        for req, resp in pairs:
            cassette.append(req, resp)
    return path.read_text()


def test_a_response_is_scrubbed_of_what_its_own_request_carried(tmp_path: Path) -> None:
    """vcrpy filters the request before its response: the key is known when it echoes."""
    echo = f'{{"content": "you are {PROJECT} with {KEY}; my team {ENTITY}"}}'
    text = record(
        tmp_path,
        (
            request(f"https://api.inference.wandb.ai/v1/chat/completions?api_key={KEY}"),
            response(
                echo,
                x_echo_authorization=f"Bearer {KEY}",
                x_echo_project=PROJECT,
                www_authenticate=f'Bearer realm="{PROJECT}", error="{KEY}"',
                set_cookie=f"session={KEY}; Path=/",
            ),
        ),
    )
    assert KEY not in text
    assert PROJECT not in text
    assert "set-cookie" not in text.lower()
    assert "authorization:" not in text.lower().replace("x-echo-authorization", "")
    assert "x-stainless" not in text.lower() and "user-agent" not in text.lower()
    assert f"my team {ENTITY}" in text  # the project is replaced whole, never its parts
    assert f"you are {REDACTED} with {REDACTED}" in text
    assert f'realm="{REDACTED}", error="{REDACTED}"' in text
    assert f"api_key={REDACTED}" in text
    assert not [m for p in KEY_PATTERNS for m in p.finditer(text)]


def test_a_secret_seen_once_is_scrubbed_from_later_interactions(tmp_path: Path) -> None:
    later = request("http://127.0.0.1:9/v1/models")
    later.headers = {"Accept": "application/json"}  # carries no secret of its own
    text = record(
        tmp_path,
        (request("http://127.0.0.1:9/v1/chat/completions"), response("{}")),
        (later, response(f'{{"owner": "{PROJECT}", "k": "{KEY}"}}')),
    )
    assert KEY not in text and PROJECT not in text


def test_key_shaped_strings_are_scrubbed_though_nobody_sent_them(tmp_path: Path) -> None:
    leaked = "0123456789abcdef0123456789abcdef01234567"
    text = record(
        tmp_path,
        (request("http://127.0.0.1:9/v1/chat/completions"), response(f'{{"k": "{leaked}"}}')),
    )
    assert leaked not in text


def test_a_deep_copy_of_the_configuration_shares_its_secrets() -> None:
    """pytest-recording deep-copies the configuration before handing it to vcrpy."""
    config = vcr_config()
    copied = copy.deepcopy(config)
    copied["before_record_request"](request("http://127.0.0.1:9/v1/chat/completions"))
    scrubbed = config["before_record_response"](response(KEY))
    assert scrubbed["body"]["string"] == REDACTED.encode()


def test_credentials_given_up_front_are_scrubbed() -> None:
    config = vcr_config(credentials=["env-key-0123456789"])
    scrubbed = config["before_record_response"](response("env-key-0123456789"))
    assert scrubbed["body"]["string"] == REDACTED.encode()


@pytest.mark.parametrize(
    ("uris", "expected"),
    [
        (["http://127.0.0.1:5000/v1/chat/completions"], EMULATOR_PROVENANCE),
        (["http://localhost:5000/v1/models", "http://[::1]:1/v1/models"], EMULATOR_PROVENANCE),
        (
            ["https://api.inference.wandb.ai/v1/chat/completions"],
            "Recorded against the live W&B Inference API (https://api.inference.wandb.ai/v1).",
        ),
        (
            ["http://127.0.0.1:1/v1/models", "https://proxy.example/wb/v1/models"],
            "Recorded against the live W&B Inference API (https://proxy.example/wb/v1).",
        ),
        ([], "Nothing was recorded."),
    ],
)
def test_provenance_comes_from_the_recorded_urls(uris: list[str], expected: str) -> None:
    assert provenance({"interactions": [{"request": {"uri": u}} for u in uris]}) == expected


def test_provenance_is_the_first_line_written(tmp_path: Path) -> None:
    text = record(
        tmp_path,
        (request("https://api.inference.wandb.ai/v1/chat/completions"), response("{}")),
    )
    assert text.startswith("provenance: Recorded against the live W&B Inference API")
    assert provenance_of(text) == (
        "Recorded against the live W&B Inference API (https://api.inference.wandb.ai/v1)."
    )


def tool_body(description: str, call_id: str) -> str:
    tool = {"type": "function", "function": {"name": "add", "description": description}}
    messages = [
        {"role": "user", "content": "1 + 2?"},
        {"role": "assistant", "tool_calls": [{"id": call_id, "type": "function"}]},
        {"role": "tool", "tool_call_id": call_id, "content": "3"},
    ]
    return json.dumps({"messages": messages, "tools": [tool]})


def test_a_replay_matches_across_docstring_indentation_and_tool_call_ids() -> None:
    # Python 3.11 keeps a docstring's indentation, 3.13 removes it: the same tool, the
    # same request, recorded on one and replayed on the other.
    recorded = tool_body("Adds two integers.\n\n        Takes a and b.", "call_abc")
    live = tool_body("Adds two integers.\n\nTakes a and b.", "call_7f3e")
    match_body(request(URL, recorded), request(URL, live))
    with pytest.raises(AssertionError, match="request bodies differ"):
        match_body(request(URL, recorded), request(URL, tool_body("Subtracts.", "call_abc")))
