"""Every native frame a test client receives, checked against OpenClaw's published protocol schema.

``tests/conftest.py`` records what ``RawClient`` (and so ``tests/e2e/_util.Client``)
receives during a test and calls ``check_frames`` at teardown, so drift from
OpenClaw's wire format fails whichever test happens to see it, not only the few
schema tests. The schema is ``protocol.schema.json`` of the npm package
``@openclaw/gateway-protocol`` (``make tests/npm/node_modules/.installed-stamp``,
part of ``make test``, installs it).

What is checked, per frame:

- every frame against ``GatewayFrame`` (the ``req``/``res``/``event`` envelope);
- a refused request's ``error`` against ``ErrorShape``;
- a response's ``payload`` against the schema's result definition for the
  request's method: ``connect`` -> ``HelloOk``, otherwise the definition named
  after the method (``device.token.rotate`` -> ``DeviceTokenRotateResult``)
  when the schema has one;
- an event's ``payload`` against the definition for its event name
  (``EVENT_DEFINITIONS``; ``presence`` is a list of ``PresenceEntry``).

Known, deliberate deviations are listed once, in ``KNOWN_DEVIATIONS``; anything
else fails the test that received the frame.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

__all__ = [
    "EVENT_DEFINITIONS",
    "KNOWN_DEVIATIONS",
    "SCHEMA_PATH",
    "Deviation",
    "check_frames",
    "load_schema",
    "result_definition",
]

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "tests/npm/node_modules/@openclaw/gateway-protocol/protocol.schema.json"
NPM_TARGET = "make tests/npm/node_modules/.installed-stamp"

# Event name -> schema definition of its payload. Events not listed have no definition in the schema
# (``connect.challenge``, ``health``, ``node.event``, ``exec.approval.*``): only their envelope is checked.
EVENT_DEFINITIONS: dict[str, str] = {
    "agent": "AgentEvent",
    "chat": "ChatEvent",
    "tick": "TickEvent",
    "shutdown": "ShutdownEvent",
    "device.pair.requested": "DevicePairRequestedEvent",
    "device.pair.resolved": "DevicePairResolvedEvent",
    "node.invoke.request": "NodeInvokeRequestEvent",
    "presence": "#presence",  # {"presence": [PresenceEntry, ...]}: see _schema_for
}
RESULT_DEFINITIONS: dict[str, str] = {"connect": "HelloOk"}


@dataclass(frozen=True)
class Deviation:
    """One accepted difference: an error of ``definition`` at ``path`` (a regex over the dotted path)
    whose message matches ``message``. ``why`` says why agenthub differs."""

    definition: str
    path: str
    message: str
    why: str

    def covers(self, definition: str, error: ValidationError) -> bool:
        dotted = ".".join(str(p) for p in error.absolute_path)
        return (
            definition == self.definition
            and re.fullmatch(self.path, dotted) is not None
            and re.search(self.message, error.message) is not None
        )


# The deliberate deviations from OpenClaw's schema, all in one place. The conformance work shrinks this
# list; a deviation that no longer occurs should be deleted (``check_frames`` does not complain about it).
KNOWN_DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "AgentEvent",
        "",
        r"\('agentId', 'sessionKey' were unexpected\)|'sessionKey' was unexpected|'agentId' was unexpected",
        "agent events carry sessionKey and agentId, as OpenClaw's own gateway adds them when it broadcasts "
        "(server-chat's agentPayload); the 2026.9.1 schema's AgentEvent does not list them",
    ),
    Deviation(
        "SessionsDeleteResult",
        "",
        r"'deleted' is a required property|'archived' is a required property|'abortedRunIds' was unexpected",
        "sessions.delete answers {ok, key, abortedRunIds} (the shape of sessions.reset); OpenClaw answers "
        "{ok, key, deleted, archived}",
    ),
    Deviation(
        "NodeEventResult",
        "",
        r"'event' is a required property|'handled' is a required property",
        "node.event answers {ok: true}; OpenClaw echoes the event name and whether a handler took it",
    ),
)


@cache
def load_schema() -> dict[str, Any]:
    """The published schema; a missing package is a failure that names the make target installing it."""
    if not SCHEMA_PATH.exists():
        raise FileNotFoundError(f"{SCHEMA_PATH} is missing: run `{NPM_TARGET}` (part of `make test`)")
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def _camel(method: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[.\-_]", method) if part)


def result_definition(method: str) -> str | None:
    """The schema's result definition for a method, or None when the schema has none."""
    if method in RESULT_DEFINITIONS:
        return RESULT_DEFINITIONS[method]
    name = _camel(method) + "Result"
    return name if name in load_schema()["definitions"] else None


@cache
def _validator(definition: str) -> Draft7Validator:
    defs = load_schema()["definitions"]
    if definition == "#presence":
        root: dict[str, Any] = {
            "type": "object",
            "required": ["presence"],
            "properties": {"presence": {"type": "array", "items": {"$ref": "#/definitions/PresenceEntry"}}},
        }
    else:
        root = {"$ref": f"#/definitions/{definition}"}
    return Draft7Validator({**root, "definitions": defs})


def _errors(definition: str, instance: Any) -> list[str]:
    out = []
    for error in _validator(definition).iter_errors(instance):
        if any(d.covers(definition, error) for d in KNOWN_DEVIATIONS):
            continue
        path = ".".join(str(p) for p in error.absolute_path) or "(root)"
        out.append(f"{definition} at {path}: {error.message[:300]}")
    return out


def check_frame(frame: Any, method: str | None) -> list[str]:
    """Schema violations of one received frame (``method``: the request a ``res`` answers, if known)."""
    problems = _errors("GatewayFrame", frame)
    if problems or not isinstance(frame, dict):
        return problems
    if frame.get("type") == "res":
        if frame.get("ok") is False and "error" in frame:
            problems += _errors("ErrorShape", frame["error"])
        elif frame.get("ok") and method is not None:
            definition = result_definition(method)
            # The second ``res`` of an ``agent`` call (its outcome) has no definition in the schema either.
            if definition is not None:
                problems += _errors(definition, frame.get("payload"))
    elif frame.get("type") == "event":
        definition = EVENT_DEFINITIONS.get(str(frame.get("event")))
        if definition is not None:
            problems += _errors(definition, frame.get("payload"))
    return problems


def check_frames(frames: Iterable[tuple[Any, str | None]], limit: int = 10) -> list[str]:
    """Violations over many ``(frame, method)`` pairs, each kind reported once with a sample frame."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for frame, method in frames:
        for problem in check_frame(frame, method):
            seen[problem] = seen.get(problem, 0) + 1
            if seen[problem] == 1 and len(out) < limit:
                sample = json.dumps(frame)[:400]
                out.append(f"{problem} (method {method or '-'}; frame {sample})")
    return out
