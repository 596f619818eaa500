"""The daemon's OpenAI-compatible endpoints, on the session daemon with the real model."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from nearcode.daemon.canary import EXPECTED, PROBE_PREFIX, PROBE_SUFFIX
from tests.support import NEARCODE, daemon_http, daemon_status


def sse_payloads(lines: list[str]) -> list[Any]:
    data = [line[len("data: "):] for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def test_models_and_auth(daemon_env: dict[str, str]) -> None:
    with daemon_http(daemon_env) as client:
        model = client.get("/api/model").json()["model"]
        listed = client.get("/v1/models").json()
        assert listed["object"] == "list" and listed["data"][0]["id"] == model
        bad = client.post("/v1/completions", json={"prompt": "x", "n": 2})
        assert bad.status_code == 400 and "n" in bad.json()["error"]["message"]
    with daemon_http(daemon_env, token="wrong") as client:
        assert client.get("/v1/models").status_code == 401
        assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 401


def test_completion_with_suffix_is_fim_and_streaming_matches(daemon_env: dict[str, str]) -> None:
    body = {"model": "anything", "prompt": PROBE_PREFIX, "suffix": PROBE_SUFFIX, "max_tokens": 12, "stop": ["\n"]}
    with daemon_http(daemon_env) as client:
        whole = client.post("/v1/completions", json=body).json()
        assert whole["object"] == "text_completion" and EXPECTED in whole["choices"][0]["text"]
        assert whole["choices"][0]["finish_reason"] == "stop" and whole["usage"]["completion_tokens"] > 0
        with client.stream("POST", "/v1/completions", json={
                **body, "stream": True, "stream_options": {"include_usage": True}}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_payloads(list(response.iter_lines()))
    text = "".join(e["choices"][0]["text"] for e in events if e["choices"])
    assert text == whole["choices"][0]["text"]  # greedy: the same answer, streamed
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] > 0


def test_raw_prompt_completion(daemon_env: dict[str, str]) -> None:
    prompt = f"<|fim_prefix|>{PROBE_PREFIX}<|fim_suffix|>{PROBE_SUFFIX}<|fim_middle|>"
    with daemon_http(daemon_env) as client:
        answer = client.post("/v1/completions", json={"prompt": [prompt], "max_tokens": 12, "stop": "\n"}).json()
    assert EXPECTED in answer["choices"][0]["text"]


def test_chat_completion_streaming_and_not(daemon_env: dict[str, str]) -> None:
    messages = [{"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": [{"type": "text", "text": "Is Python a programming language?"}]}]
    with daemon_http(daemon_env) as client:
        whole = client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 4}).json()
        assert whole["object"] == "chat.completion"
        message = whole["choices"][0]["message"]
        assert message["role"] == "assistant" and message["content"].strip()
        assert "<|im_end|>" not in message["content"]  # the chat template's stop ended it
        with client.stream("POST", "/v1/chat/completions",
                           json={"messages": messages, "max_tokens": 4, "stream": True}) as response:
            events = sse_payloads(list(response.iter_lines()))
    assert events[0]["object"] == "chat.completion.chunk" and events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert streamed == message["content"]


def test_disconnect_cancels_the_generation(daemon_env: dict[str, str]) -> None:
    before = daemon_status(daemon_env)["cancelled_in_engine"]
    body = {"messages": [{"role": "user", "content": "Write a very long story about a robot."}],
            "max_tokens": 400, "stream": True}
    with daemon_http(daemon_env) as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and '"content": "' in line and '"content": ""' not in line:
                break  # one real token arrived: hang up
    give_up = time.monotonic() + 10
    while daemon_status(daemon_env)["cancelled_in_engine"] <= before and time.monotonic() < give_up:
        time.sleep(0.1)
    assert daemon_status(daemon_env)["cancelled_in_engine"] > before


def test_canary_reports_the_template_works(daemon_env: dict[str, str]) -> None:
    give_up = time.monotonic() + 90
    with daemon_http(daemon_env) as client:
        while True:
            canary = client.get("/api/model").json()["canary"]
            if canary["status"] != "pending" or time.monotonic() > give_up:
                break
            time.sleep(0.5)
    assert canary["status"] == "ok", canary
    assert EXPECTED.replace(" ", "") in canary["answer"].replace(" ", "")
    doctor = subprocess.run([*NEARCODE, "doctor"], env=daemon_env, capture_output=True, text=True, timeout=60)
    assert "canary:    ok from the running daemon (llamacpp" in doctor.stdout
