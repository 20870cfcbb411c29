"""A chat completions client for Agentry's tests, written on the official `openai` Python SDK.

Takes one JSON spec as its argument and prints one JSON line with what the SDK handed back, so
the Rust suite asserts on the SDK's own reading of the runtime's answers:

    python openai_client.py '{"base_url": "http://127.0.0.1:8080/v1", "call": "create",
                              "kwargs": {"model": "radio", "messages": [...]}}'

`call` is `create` (a chat.completion), `stream` (the same with stream=True: the deltas
joined, the chunks counted, the usage chunk) or `models`. An SDK exception is printed as
{"exception": <class name>, ...} with its status, code, param, type and message. The SDK's
retries are off, and its timeout is 30 s, so every run ends on its own.
"""

import json
import sys

import openai
from openai import OpenAI


def run(spec):
    client = OpenAI(base_url=spec["base_url"], api_key="unused", max_retries=0, timeout=30)
    kwargs = spec.get("kwargs", {})
    if spec["call"] == "models":
        return {"ids": [m.id for m in client.models.list()],
                "owned_by": [m.owned_by for m in client.models.list()]}
    if spec["call"] == "create":
        r = client.chat.completions.create(**kwargs)
        return {"id": r.id, "object": r.object, "model": r.model, "created": r.created,
                "choices": len(r.choices), "role": r.choices[0].message.role,
                "content": r.choices[0].message.content,
                "finish_reason": r.choices[0].finish_reason,
                "usage": r.usage.model_dump() if r.usage else None}
    text, chunks, roles, finish, usage, ids, usage_chunks = "", 0, [], [], None, set(), 0
    for ch in client.chat.completions.create(stream=True, **kwargs):
        chunks += 1
        ids.add(ch.id)
        if ch.usage:
            usage, usage_chunks = ch.usage.model_dump(), usage_chunks + 1
            assert ch.choices == [], "the usage chunk has no choices"
        if not ch.choices:
            continue
        delta = ch.choices[0].delta
        if delta.role:
            roles.append(delta.role)
        if delta.content:
            text += delta.content
        if ch.choices[0].finish_reason:
            finish.append(ch.choices[0].finish_reason)
    return {"text": text, "chunks": chunks, "roles": roles, "finish_reasons": finish,
            "usage": usage, "usage_chunks": usage_chunks, "ids": sorted(ids)}


def main():
    spec = json.loads(sys.argv[1])
    try:
        out = run(spec)
    except openai.APIStatusError as e:
        out = {"exception": type(e).__name__, "status": e.status_code, "code": e.code,
               "param": e.param, "type": e.type, "message": e.message,
               "retry_after": e.response.headers.get("retry-after")}
    except openai.APIError as e:  # an error event inside a stream
        out = {"exception": type(e).__name__, "message": e.message, "body": e.body}
    print(json.dumps(out), flush=True)


main()
