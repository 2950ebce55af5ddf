"""Property-based fuzz of the dialect sockets and HTTP routes, over real sockets.

Sockets (AgentBox, MyAgent, LangBot): hypothesis generates frames for each
dialect, its own envelope with wrong types and values, other JSON, cut text,
bytes. For each frame the gateway must answer with that dialect's typed error,
the very one its sans-I/O decoder names for a frame it cannot read (AgentBox
``error`` with ``code``, MyAgent ``system.error``, LangBot ``error``), or act
on a frame that happens to be valid.

HTTP (AgentBox REST, LangBot REST, hooks): hypothesis generates bodies and
content types; each answer is the status the route's own rules give (415 for
a body not declared JSON, 400 with the dialect's JSON error for a body its
model refuses, 201/200 when it happens to be valid), never a 5xx.

Never "internal error", never an unclean close, never a traceback in the log
(the harness checks that); a well-behaved client of each dialect, and a native
one, keep getting answers on their own sockets throughout.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from agenthub.dialects import agentbox as ab
from agenthub.dialects import langbot as lb
from agenthub.dialects import myagent as ma
from agenthub.dialects.agentbox import frames as ab_frames
from agenthub.protocol import _json

from ..conftest import GatewayProc, connect_params
from ..dialects.test_fuzz_decoders import AGENTBOX, LANGBOT, MYAGENT
from ._util import free_port

TOKEN = "fuzz-token"
HOOK_TOKEN = "fuzz-hook-token"
EXAMPLES = 40
FRAMES_PER_EXAMPLE = 10
JSON_TYPE = {"Content-Type": "application/json"}
ANSWER_TIMEOUT_S = 30  # generous: a shared, loaded CI box can stall a process for seconds
CLEAN_CLOSES = {1000, 1008, 1009}
AGENTBOX_CODES = {c.value for c in ab.Code} - {ab.Code.INTERNAL.value}
DIALECTS = ("native", "agentbox", "myagent", "langbot")
SENTINEL = json.dumps({"event": "fuzz.sentinel"})  # MyAgent answers an unknown event, always
SENTINEL_REPLY = "unknown event: fuzz.sentinel"

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: it replays examples for minutes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def cli(data_dir: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "agenthub", args[0], "--data-dir", str(data_dir), "--json", *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data: dict[str, Any] = json.loads(out.stdout.splitlines()[0])
    return data


@dataclass
class Edges:
    gw: GatewayProc
    agentbox: str
    myagent: str
    langbot: str  # the public pipeline's socket URL
    fuzzer_key: str
    watcher_key: str
    pipeline: str


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edges]:
    d = tmp_path_factory.mktemp("fuzz-dialects")
    fuzzer = cli(d, "keys", "create", "--user", "fuzzer")["key"]
    watcher = cli(d, "keys", "create", "--user", "watcher")["key"]
    pipeline = cli(d, "pipelines", "create", "--name", "fuzz", "--public")["uuid"]
    ab_port, ma_port = free_port(), free_port()
    args = ["--token", TOKEN, "--agentbox-port", str(ab_port), "--myagent-port", str(ma_port)]
    args += ["--myagent-secret", "fuzz-secret", "--log-level", "WARNING"]
    # Fuzzed auth frames are wrong on purpose: the limiter would lock the test's own address out.
    config = {
        "demo": {"word_delay_ms": 0},
        "security": {"auth_max_failures": 1_000_000},
        "hooks": {
            "enabled": True,
            "mappings": [
                {"name": "templated", "message_template": "got {{payload.text}} {{payload.a.b[0]}} {{headers.x-k}}"},
                {"name": "waker", "action": "wake", "text_template": "{{payload.text}}"},
            ],
        },
    }
    gw = GatewayProc(d, args, env={"AGENTHUB_HOOKS_TOKEN": HOOK_TOKEN}, config=config).start()
    try:
        yield Edges(
            gw,
            f"ws://127.0.0.1:{ab_port}/api/v1/gateway/ws",
            f"ws://127.0.0.1:{ma_port}/?token={TOKEN}",
            f"{gw.url}/api/v1/pipelines/{pipeline}/ws/connect?session_type=person",
            fuzzer,
            watcher,
            pipeline,
        )
    finally:
        gw.stop()


def _open(stack: contextlib.ExitStack, url: str) -> ClientConnection:
    # No keepalive pings: their payload comes from the global `random`, which Hypothesis guards.
    return stack.enter_context(connect(url, max_size=None, open_timeout=ANSWER_TIMEOUT_S, ping_interval=None))


def _recv(ws: ClientConnection) -> dict[str, Any]:
    frame = json.loads(ws.recv(timeout=ANSWER_TIMEOUT_S))
    assert isinstance(frame, dict), frame
    return frame


def _closed_cleanly(exc: ConnectionClosed, frame: str | bytes) -> None:
    code = exc.rcvd.code if exc.rcvd else None
    assert code in CLEAN_CLOSES, f"unclean close {code} after {frame!r}"


class Watcher(threading.Thread):
    """A well-behaved client of every dialect (and a native one), each answering in turn throughout."""

    def __init__(self, e: Edges) -> None:
        super().__init__(daemon=True)
        self.e = e
        self.stop = threading.Event()
        self.ok: dict[str, int] = {}
        self.failures: list[str] = []

    def run(self) -> None:
        try:
            with contextlib.ExitStack() as stack:
                checks = self._open_all(stack)
                while not self.stop.is_set():
                    for name, check in checks.items():
                        check()
                        self.ok[name] = self.ok.get(name, 0) + 1
                    time.sleep(0.05)
        except Exception as exc:  # recorded, and asserted on by the test
            self.failures.append(repr(exc))

    def _open_all(self, stack: contextlib.ExitStack) -> dict[str, Callable[[], None]]:
        native = _open(stack, self.e.gw.url)
        _recv(native)  # challenge
        params = connect_params(scopes=["operator.read"], auth={"token": TOKEN})
        native.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}))
        assert _until(native, lambda f: f.get("id") == "c")["ok"]
        box = _open(stack, self.e.agentbox)
        box.send(json.dumps({"id": "a", "type": "auth", "payload": {"token": self.e.watcher_key}}))
        assert _recv(box)["type"] == "auth.result"
        agent = _open(stack, self.e.myagent)
        assert _recv(agent)["event"] == "system.connected"
        bot = _open(stack, self.e.langbot.replace("person", "group"))
        assert _recv(bot)["type"] == "connected"

        def health() -> None:
            native.send(json.dumps({"type": "req", "id": "h", "method": "health", "params": {}}))
            assert _until(native, lambda f: f.get("id") == "h")["ok"]

        def ping() -> None:
            box.send(json.dumps({"id": "p", "type": "ping", "payload": {}}))
            assert _until(box, lambda f: f.get("id") == "p")["type"] == "pong"

        def myagent() -> None:
            agent.send(SENTINEL)
            _until(agent, lambda f: f.get("content") == SENTINEL_REPLY)

        def langbot() -> None:
            bot.send(json.dumps({"type": "ping"}))
            _until(bot, lambda f: f.get("type") == "pong")

        return {"native": health, "agentbox": ping, "myagent": myagent, "langbot": langbot}


def _until(ws: ClientConnection, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    while True:
        frame = _recv(ws)
        if pred(frame):
            return frame


@contextlib.contextmanager
def watched(e: Edges) -> Iterator[Watcher]:
    watcher = Watcher(e)
    watcher.start()
    try:
        yield watcher
        # Every honest client answers once more after the fuzz, on the socket it had all along.
        before = dict(watcher.ok)
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while watcher.is_alive() and time.monotonic() < deadline:
            if all(watcher.ok.get(k, 0) > before.get(k, 0) for k in DIALECTS):
                break
            time.sleep(0.05)
        after = dict(watcher.ok)
    finally:
        watcher.stop.set()
        watcher.join(timeout=ANSWER_TIMEOUT_S)
    assert watcher.failures == [], watcher.failures
    assert all(after.get(k, 0) > before.get(k, 0) for k in DIALECTS), (before, after)
    assert e.gw.proc is not None and e.gw.proc.poll() is None


# -- AgentBox ---------------------------------------------------------------------------------


def _agentbox_expected(frame: str | bytes) -> ab.AgentBoxError | ab.Envelope:
    try:
        return ab.decode(frame)
    except ab.AgentBoxError as exc:
        return exc


def _agentbox_open(stack: contextlib.ExitStack, e: Edges, auth: bool) -> ClientConnection:
    ws = _open(stack, e.agentbox)
    if auth:
        ws.send(json.dumps({"id": "a", "type": "auth", "payload": {"token": e.fuzzer_key}}))
        assert _recv(ws)["type"] == "auth.result"
    return ws


def test_fuzz_agentbox_socket(edges: Edges) -> None:
    answered: dict[str, int] = {}

    @FUZZ
    @given(auth=st.booleans(), frames=st.lists(AGENTBOX, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE))
    def example(auth: bool, frames: list[str | bytes]) -> None:
        with contextlib.ExitStack() as stack:
            ws = _agentbox_open(stack, edges, auth)
            for frame in frames:
                expected = _agentbox_expected(frame)
                try:
                    ws.send(frame)
                    reply = _until(ws, lambda f: f.get("type") != "event")
                except ConnectionClosed as exc:  # three failed auths close the socket
                    _closed_cleanly(exc, frame)
                    ws = _agentbox_open(stack, edges, auth)
                    continue
                payload = reply.get("payload") or {}
                answered[str(reply.get("type"))] = answered.get(str(reply.get("type")), 0) + 1
                if isinstance(expected, ab.AgentBoxError):
                    assert reply["type"] == "error", (frame, reply)
                    assert (payload["code"], payload["message"]) == (expected.code.value, expected.message)
                    assert reply.get("id") == (expected.request_id or None)  # an empty id is not echoed
                    continue
                if reply["type"] == "error":
                    assert payload["code"] in AGENTBOX_CODES and payload["message"] != "internal error", (frame, reply)
                assert reply.get("id") == expected.id, (frame, reply)

    with watched(edges):
        example()
    assert answered.get("error", 0) > 0 and sum(answered.values()) >= EXAMPLES * FRAMES_PER_EXAMPLE // 2, answered


# -- MyAgent ----------------------------------------------------------------------------------


def test_fuzz_myagent_socket(edges: Edges) -> None:
    errors = {"expected": 0, "other": 0}

    @FUZZ
    @given(frames=st.lists(MYAGENT, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE))
    def example(frames: list[str | bytes]) -> None:
        with contextlib.ExitStack() as stack:
            ws = _open(stack, edges.myagent)
            assert _recv(ws)["event"] == "system.connected"
            for frame in frames:
                try:
                    ma.decode(frame)
                    expected = None
                except ma.MyAgentInputError as exc:
                    expected = str(exc)
                ws.send(frame)
                ws.send(SENTINEL)  # a frame that acts may answer nothing: the sentinel's error ends the answers
                answers = []
                while (reply := _recv(ws)).get("content") != SENTINEL_REPLY:
                    answers.append(reply)
                errors_seen = [a["content"] for a in answers if a.get("event") == "system.error"]
                assert all("internal error" not in str(c) for c in errors_seen), (frame, answers)
                if expected is not None:
                    assert expected in errors_seen, (frame, expected, answers)
                    errors["expected"] += 1
                else:
                    errors["other"] += len(errors_seen)

    with watched(edges):
        example()
    assert errors["expected"] >= EXAMPLES, errors


# -- LangBot ----------------------------------------------------------------------------------


def test_fuzz_langbot_socket(edges: Edges) -> None:
    errors = {"expected": 0, "runs": 0}

    @FUZZ
    @given(frames=st.lists(LANGBOT, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE))
    def example(frames: list[str | bytes]) -> None:
        with contextlib.ExitStack() as stack:
            ws = _open(stack, edges.langbot)
            assert _recv(ws)["type"] == "connected"
            for frame in frames:
                try:
                    command = lb.decode(frame)
                    expected = None
                except lb.LangBotInputError as exc:
                    command, expected = None, str(exc)
                ws.send(frame)
                ws.send(json.dumps({"type": "ping"}))  # the pong ends the answers to `frame`
                answers = []
                pongs = 2 if isinstance(command, lb.Ping) else 1  # a ping among the frames has its own pong
                while pongs:
                    reply = _recv(ws)
                    if reply.get("type") == "pong":
                        pongs -= 1
                    elif reply.get("type") != "response":  # a valid message's run streams on, in between
                        answers.append(reply)
                messages = [str((a.get("data") or {}).get("message")) for a in answers if a.get("type") == "error"]
                assert all("internal error" not in m for m in messages), (frame, answers)
                if expected is not None:
                    assert messages == [expected], (frame, expected, answers)
                    errors["expected"] += 1
                elif isinstance(command, lb.UserMessage):
                    errors["runs"] += 1

    with watched(edges):
        example()
    assert errors["expected"] >= EXAMPLES, errors


# -- HTTP routes ------------------------------------------------------------------------------

CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-8", "application/x+json", "text/plain", ""]
json_values_small = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)
fields = st.sampled_from(["prompt", "session_id", "title", "name", "prompts", "message", "level"])
bodies = st.one_of(
    st.dictionaries(
        fields,
        st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3), json_values_small),
        max_size=4,
    ).map(lambda d: json.dumps(d).encode()),
    json_values_small.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=80),
    st.just(b""),
)
AGENTBOX_ROUTES = {
    "/api/v1/tasks": (ab_frames.CreateTask, 201),
    "/api/v1/sessions": (ab_frames.CreateSession, 201),
    "/api/v1/agents": (ab_frames.CreateAgent, 201),
    "/api/v1/batches": (ab_frames.CreateBatch, 201),
    "/api/v1/alerts": (ab_frames.CreateAlert, 403),  # a valid alert needs the admin scope, which the fuzzer lacks
}


def _refused_type(ctype: str | None, body: bytes) -> bool:
    """What the listener answers 415 (web/origin.py): a body not declared JSON."""
    if ctype is None:
        return bool(body)
    media = ctype.split(";", 1)[0].strip().lower()
    return not (media == "application/json" or (media.startswith("application/") and media.endswith("+json")))


def _parsed(body: bytes) -> tuple[bool, Any]:
    try:
        return True, _json.loads(body)
    except _json.JSONDecodeError:
        return False, None


def _post(http: httpx.Client, url: str, body: bytes, ctype: str | None, headers: dict[str, str]) -> httpx.Response:
    hdrs = dict(headers) | ({"Content-Type": ctype} if ctype is not None else {})
    return http.post(url, content=body, headers=hdrs)


def _agentbox_status(route: str, ctype: str | None, body: bytes) -> int:
    """The status AgentBox's REST rules give this body (web/agentbox.py)."""
    if _refused_type(ctype, body):
        return 415
    ok, data = _parsed(body)
    model, success = AGENTBOX_ROUTES[route]
    if not ok:
        return 400
    try:
        parsed = model.model_validate(data)
    except ValueError:
        return 400
    if isinstance(parsed, ab_frames.CreateTask) and parsed.session_id is not None:
        return 404  # a session the fuzzer never created
    return success


def test_fuzz_agentbox_rest(edges: Edges) -> None:
    seen: dict[int, int] = {}
    base = edges.agentbox.replace("ws://", "http://").replace("/api/v1/gateway/ws", "")

    with httpx.Client(base_url=base, timeout=ANSWER_TIMEOUT_S) as http:

        @FUZZ
        @given(route=st.sampled_from(sorted(AGENTBOX_ROUTES)), ctype=st.sampled_from(CONTENT_TYPES), body=bodies)
        def example(route: str, ctype: str | None, body: bytes) -> None:
            res = _post(http, route, body, ctype, {"Authorization": f"Bearer {edges.fuzzer_key}"})
            expected = _agentbox_status(route, ctype, body)
            assert res.status_code == expected, (route, ctype, body, res.status_code, res.text)
            seen[expected] = seen.get(expected, 0) + 1
            if expected in (400, 403, 404):
                error = res.json()
                assert error["code"] in AGENTBOX_CODES and error["message"], error

        with watched(edges):
            example()
            res = http.get(f"/api/v1/tasks/task-{'0' * 16}", headers={"Authorization": f"Bearer {edges.fuzzer_key}"})
            assert res.status_code == 404 and res.json()["code"] == "not_found"
    assert seen.get(400, 0) > 0 and seen.get(415, 0) > 0, seen


LANGBOT_TYPES = st.one_of(
    st.sampled_from(["person", "group"]), st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8)
)


def test_fuzz_langbot_rest(edges: Edges) -> None:
    seen: dict[int, int] = {}
    prefix = f"/api/v1/pipelines/{edges.pipeline}/ws"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    with httpx.Client(base_url=edges.gw.http, timeout=ANSWER_TIMEOUT_S) as http:

        @FUZZ
        @given(
            route=st.sampled_from(["broadcast", "reset", "messages"]),
            kind=LANGBOT_TYPES,
            ctype=st.sampled_from(CONTENT_TYPES),
            body=bodies,
        )
        def example(route: str, kind: str, ctype: str | None, body: bytes) -> None:
            if route == "messages":
                res = http.get(f"{prefix}/messages/{kind}", headers=auth)
                expected = 200 if kind in ("person", "group") else 400
            elif _refused_type(ctype, body):
                res, expected = (
                    _post(http, f"{prefix}/{route}{'/' + kind if route == 'reset' else ''}", body, ctype, auth),
                    415,
                )
            elif route == "reset":
                res = _post(http, f"{prefix}/reset/{kind}", body, ctype, auth)
                expected = 200 if kind in ("person", "group") else 400
            else:
                res = _post(http, f"{prefix}/broadcast", body, ctype, auth)
                ok, data = _parsed(body)
                expected = 200 if ok and isinstance(data, dict) and "message" in data else 400
            assert res.status_code == expected, (route, kind, ctype, body, res.status_code, res.text)
            seen[expected] = seen.get(expected, 0) + 1
            if expected == 400:
                assert isinstance(res.json()["error"], str)

        with watched(edges):
            example()
    assert seen.get(200, 0) > 0 and seen.get(400, 0) > 0, seen


def test_fuzz_hooks(edges: Edges) -> None:
    seen: dict[int, int] = {}
    auth = {"Authorization": f"Bearer {HOOK_TOKEN}"}

    with httpx.Client(base_url=edges.gw.http, timeout=ANSWER_TIMEOUT_S) as http:

        @settings(FUZZ, max_examples=2 * EXAMPLES)
        @given(
            name=st.sampled_from(["agent", "wake", "templated", "waker", "nope"]),
            ctype=st.sampled_from(["application/json"] * 6 + CONTENT_TYPES),  # mostly past the door
            body=st.one_of(
                bodies,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "message": st.one_of(st.text(max_size=20), json_values_small),
                        "text": st.one_of(st.text(max_size=20), json_values_small),
                        "mode": st.sampled_from(["now", "next-heartbeat", "later"]),
                        "sessionKey": json_values_small,
                        "deliver": json_values_small,
                        "timeoutSeconds": json_values_small,
                        "a": json_values_small,
                    },
                ).map(lambda d: json.dumps(d).encode()),
            ),
        )
        def example(name: str, ctype: str | None, body: bytes) -> None:
            res = _post(http, f"/hooks/{name}", body, ctype, auth | {"x-k": "v"})
            media = (ctype or "").split(";", 1)[0].strip().lower()
            if _refused_type(ctype, body) or (name != "nope" and media != "application/json"):
                expected: set[int] = {415}  # the listener's rule, then the hook's own: exactly application/json
            elif name == "nope":
                expected = {404}
            else:
                expected = {200, 400} if _parsed(body)[0] else {400}
            assert res.status_code in expected, (name, ctype, body, res.status_code, res.text)
            seen[res.status_code] = seen.get(res.status_code, 0) + 1
            if res.status_code in (400, 404) or (res.status_code == 415 and not _refused_type(ctype, body)):
                answer = res.json()
                assert answer["ok"] is False and isinstance(answer["error"], str), answer

        with watched(edges):
            example()
    assert seen.get(200, 0) > 0 and seen.get(400, 0) > 0, seen


# -- a client that hangs up mid-body ------------------------------------------------------------


def test_a_client_hanging_up_mid_body_is_no_server_error(edges: Edges) -> None:
    """Every route that reads a body: the client promises more than it sends and goes; no traceback.

    The soak found it: hooks logged aiohttp's "Error handling request" with a
    ConnectionResetError when a hostile client left mid-body.
    """
    ab_base = edges.agentbox.replace("ws://", "").replace("/api/v1/gateway/ws", "")
    gw_base = edges.gw.http.replace("http://", "")
    routes = [
        (ab_base, "/api/v1/tasks", f"Bearer {edges.fuzzer_key}"),
        (gw_base, f"/api/v1/pipelines/{edges.pipeline}/ws/broadcast", f"Bearer {TOKEN}"),
        (gw_base, "/hooks/agent", f"Bearer {HOOK_TOKEN}"),
    ]
    mark = len(edges.gw.log)
    for hostport, path, auth in routes:
        host, port = hostport.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=ANSWER_TIMEOUT_S) as sock:
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: {auth}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            )
            sock.sendall(head.encode() + b'{"message": "' + b"x" * 70_000)
            time.sleep(0.2)  # the handler is reading the body when the client goes
    with httpx.Client(timeout=ANSWER_TIMEOUT_S) as http, watched(edges):
        for hostport, path, auth in routes:  # each route still answers
            res = http.post(f"http://{hostport}{path}", content=b"[]", headers={"Authorization": auth} | JSON_TYPE)
            assert res.status_code == 400, (path, res.status_code, res.text)
    time.sleep(0.5)  # the log lines of the three hang-ups are written by now
    assert edges.gw.tracebacks(mark) == []
