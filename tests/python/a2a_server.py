"""An A2A agent built with the official a2a-sdk server side, for the `a2a` tool's tests.

With a2a-sdk 1.3.x it serves A2A 1.0 and 0.3 on one URL (like a current a2a-sdk agent); with
0.3.x only 0.3 (like a kagent 0.10 agent). It listens on a free loopback port it binds itself
(no other process can take it between a choice and the bind) and says `LISTENING <port>` on
stderr first. It answers "echo: <text>" as an
artifact of a completed task, and fails the task (with a reason in its status message) when
the text contains "fail". Each request's method and x-agentry-call-depth header are logged to
stderr as `REQ <method> depth=<n>`.
"""

import json
import socket
import sys

import uvicorn
from importlib.metadata import version

SOCK = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
SOCK.bind(("127.0.0.1", 0))
PORT = SOCK.getsockname()[1]
BASE = f"http://127.0.0.1:{PORT}/"
V1 = not version("a2a-sdk").startswith("0.")

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater

if V1:
    from starlette.applications import Starlette
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.types import AgentCard, AgentCapabilities, AgentInterface, AgentSkill, Part
    from a2a.helpers import new_task_from_user_message, get_message_text

    def text_part(t):
        return Part(text=t)
else:
    from a2a.server.apps import A2AStarletteApplication
    from a2a.types import AgentCard, AgentCapabilities, AgentSkill, Part, TextPart
    from a2a.utils import new_task

    def text_part(t):
        return Part(root=TextPart(text=t))


class Echo(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        if V1:
            task = context.current_task or new_task_from_user_message(context.message)
            text = get_message_text(context.message)
        else:
            task = context.current_task or new_task(context.message)
            text = context.get_user_input()
        await event_queue.enqueue_event(task)
        up = TaskUpdater(event_queue, task.id, task.context_id)
        await up.start_work()
        if "fail" in text:
            await up.failed(message=up.new_agent_message([text_part("the echo agent refuses: " + text)]))
            return
        await up.add_artifact([text_part("echo: " + text)], name="answer")
        await up.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


skills = [AgentSkill(id="echo", name="echo", description="Echoes its input", tags=["echo"])]
if V1:
    card = AgentCard(
        name="echo", description="Echoes its input", version="1.0.0",
        supported_interfaces=[
            AgentInterface(protocol_binding="JSONRPC", protocol_version="1.0", url=BASE),
            AgentInterface(protocol_binding="JSONRPC", protocol_version="0.3", url=BASE),
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"], default_output_modes=["text/plain"], skills=skills,
    )
    handler = DefaultRequestHandler(agent_executor=Echo(), task_store=InMemoryTaskStore(), agent_card=card)
    routes = create_agent_card_routes(card) + create_jsonrpc_routes(handler, rpc_url="/", enable_v0_3_compat=True)
    app = Starlette(routes=routes)
else:
    card = AgentCard(
        name="echo", description="Echoes its input", version="1.0.0", url=BASE,
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text"], default_output_modes=["text"], skills=skills,
    )
    handler = DefaultRequestHandler(agent_executor=Echo(), task_store=InMemoryTaskStore())
    app = A2AStarletteApplication(agent_card=card, http_handler=handler).build()


class Log:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            m = await receive()
            body += m.get("body", b"")
            more = m.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            method = json.loads(body).get("method")
        except ValueError:
            method = None
        print(f"REQ {method} depth={headers.get('x-agentry-call-depth')} version={headers.get('a2a-version')}",
              file=sys.stderr, flush=True)
        if "traceparent" in headers:
            print(f"TRACE {headers['traceparent']}", file=sys.stderr, flush=True)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


print(f"LISTENING {PORT}", file=sys.stderr, flush=True)
uvicorn.Server(uvicorn.Config(Log(app), log_level="warning")).run(sockets=[SOCK])
