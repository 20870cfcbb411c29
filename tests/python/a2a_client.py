"""The official a2a-sdk client (1.3.x or 0.3.x, whichever the venv has) against an A2A server.

Argument: a JSON spec {"url": base URL, "actions": [...]}; each action is one of
  {"do": "card"}                        the agent card, as the SDK's resolver reads it
  {"do": "send", "text": ...}           non-streaming send (SendMessage / message/send)
  {"do": "stream", "text": ...}         streaming send (SendStreamingMessage / message/stream)
                                        either with "context_id": an id, or "last" for the
                                        context of the last task; an SDK exception becomes
                                        {"error": class name, "message": ...}
  {"do": "get"}                         the task of the last send, fetched again
  {"do": "cancel_slow", "text": ...}    stream, cancel the task from a second client once it
                                        is working, read the stream to its end, cancel again
Prints one JSON object: the SDK version and one result per action. States and roles are
printed in the 0.3 spelling ("completed", "agent") for both SDKs, so tests compare them.
"""

import asyncio
import json
import sys
import uuid

import httpx
from importlib.metadata import version

SDK = version("a2a-sdk")
V1 = not SDK.startswith("0.")

if V1:
    from a2a.client import A2ACardResolver, ClientConfig, create_client
    from a2a.types import CancelTaskRequest, GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState
else:
    from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
    from a2a.client.errors import A2AClientJSONRPCError
    from a2a.types import Message, Part, Role, TaskIdParams, TaskQueryParams, TextPart, TaskStatusUpdateEvent, TaskArtifactUpdateEvent


def state_name(state):
    if V1:
        return TaskState.Name(state).removeprefix("TASK_STATE_").lower().replace("_", "-")
    return state.value


def texts(parts):
    out = []
    for p in parts:
        if V1:
            if p.HasField("text"):
                out.append(p.text)
        elif getattr(p.root, "text", None) is not None:
            out.append(p.root.text)
    return out


def task_json(t):
    return {
        "id": t.id,
        "context_id": t.context_id,
        "state": state_name(t.status.state),
        "status_text": texts(t.status.message.parts) if (t.status.HasField("message") if V1 else t.status.message) else [],
        "artifacts": [texts(a.parts) for a in (t.artifacts or [])],
        "history": [texts(m.parts) for m in (t.history or [])],
    }


def message(text, context_id=None):
    if V1:
        m = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=text)])
        if context_id:
            m.context_id = context_id
        return m
    return Message(message_id=uuid.uuid4().hex, role=Role.user, parts=[Part(root=TextPart(text=text))],
                   context_id=context_id)


async def client(url, hx, streaming):
    config = ClientConfig(streaming=streaming, httpx_client=hx)
    if V1:
        return await create_client(url, client_config=config)
    return await ClientFactory.connect(url, client_config=config)


async def send(c, text, context_id=None):
    """Events as dicts and the last task seen."""
    events, task = [], None
    m = message(text, context_id)
    stream = c.send_message(SendMessageRequest(message=m)) if V1 else c.send_message(m)
    async for ev in stream:
        if V1:
            kind = ev.WhichOneof("payload")
            if kind == "task":
                task = ev.task
                events.append({"kind": "task", "state": state_name(ev.task.status.state)})
            elif kind == "status_update":
                events.append({"kind": "status-update", "state": state_name(ev.status_update.status.state)})
            elif kind == "artifact_update":
                events.append({"kind": "artifact-update", "texts": texts(ev.artifact_update.artifact.parts)})
            else:
                events.append({"kind": "message", "texts": texts(ev.message.parts)})
        elif isinstance(ev, Message):
            events.append({"kind": "message", "texts": texts(ev.parts)})
        else:
            task, upd = ev
            if isinstance(upd, TaskStatusUpdateEvent):
                events.append({"kind": "status-update", "state": state_name(upd.status.state), "final": upd.final})
            elif isinstance(upd, TaskArtifactUpdateEvent):
                events.append({"kind": "artifact-update", "texts": texts(upd.artifact.parts)})
            else:
                events.append({"kind": "task", "state": state_name(task.status.state)})
        yield events[-1], task


async def get(c, task_id):
    return await c.get_task(GetTaskRequest(id=task_id) if V1 else TaskQueryParams(id=task_id))


async def cancel(c, task_id):
    try:
        t = await c.cancel_task(CancelTaskRequest(id=task_id) if V1 else TaskIdParams(id=task_id))
        return {"task": task_json(t)}
    except Exception as e:  # the SDKs raise their own error types for JSON-RPC errors
        code = e.error.code if not V1 and isinstance(e, A2AClientJSONRPCError) else None
        return {"error": type(e).__name__, "code": code, "message": str(e)}


async def main(spec):
    url, out, last = spec["url"], [], None
    async with httpx.AsyncClient(timeout=60) as hx:
        for action in spec["actions"]:
            do = action["do"]
            if do == "card":
                card = await A2ACardResolver(hx, url).get_agent_card()
                r = {"name": card.name, "description": card.description,
                     "streaming": card.capabilities.streaming,
                     "skills": [{"id": s.id, "description": s.description, "tags": list(s.tags)} for s in card.skills]}
                if V1:
                    r["interfaces"] = [[i.protocol_version, i.url] for i in card.supported_interfaces]
                else:
                    r["url"], r["protocol_version"] = card.url, card.protocol_version
                out.append(r)
            elif do in ("send", "stream"):
                c = await client(url, hx, do == "stream")
                context_id = action.get("context_id")
                if context_id == "last":
                    context_id = last.context_id
                events, task_seen = [], None
                try:
                    async for ev, task in send(c, action["text"], context_id):
                        events.append(ev)
                        task_seen = task or task_seen
                except Exception as e:  # the SDKs raise their own error types
                    out.append({"error": type(e).__name__, "message": str(e)})
                    continue
                last = task_seen or last
                out.append({"events": events, "task": task_json(last) if last else None})
            elif do == "get":
                out.append(task_json(await get(await client(url, hx, False), last.id)))
            elif do == "cancel_slow":
                c = await client(url, hx, True)
                other = await client(url, hx, False)
                events, cancelled = [], None
                async for ev, task in send(c, action["text"]):
                    events.append(ev)
                    if ev.get("state") == "working" and cancelled is None:
                        cancelled = await cancel(other, task.id)
                    last = task or last
                again = await cancel(other, last.id)
                out.append({"events": events, "cancelled": cancelled, "again": again,
                            "fetched": task_json(await get(other, last.id))})
    print(json.dumps({"sdk": SDK, "results": out}))


asyncio.run(main(json.loads(sys.argv[1])))
