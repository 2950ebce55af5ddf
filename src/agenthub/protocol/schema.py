"""The JSON Schema of the protocol, generated from the frame, params, result and event payload models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .frames import ErrorShape, EventFrame, RequestFrame, ResponseFrame
from .methods import EVENT_SCOPES, METHODS, ConnectParams
from .results import EVENT_PAYLOADS, RESULTS, AgentAccepted

__all__ = ["protocol_schema", "schema_models"]


def schema_models() -> list[type[BaseModel]]:
    """Every model the document defines: frames, params, results and event payloads (sorted, unique)."""
    models: set[type[BaseModel]] = {RequestFrame, ResponseFrame, EventFrame, ErrorShape, ConnectParams, AgentAccepted}
    models |= {spec.params for spec in METHODS.values()}
    models |= set(RESULTS.values()) | set(EVENT_PAYLOADS.values())
    frames: list[type[BaseModel]] = [RequestFrame, ResponseFrame, EventFrame, ErrorShape]
    return frames + sorted(models - set(frames), key=lambda m: m.__name__)


def protocol_schema() -> dict[str, Any]:
    """One document: the frame union, ``definitions`` for every model, and the method and event tables.

    ``methods[name]`` gives the params, the result (where the gateway documents it; ``agent`` also its
    first, ``accepted`` response), the scope and the role; ``events[name]`` the payload and the scope.
    """
    models = schema_models()
    _, doc = models_json_schema([(m, "validation") for m in models], ref_template="#/definitions/{model}")
    definitions = doc.get("$defs", {})

    def ref(model: type[BaseModel]) -> str:
        return f"#/definitions/{model.__name__}"

    methods: dict[str, Any] = {}
    for name, spec in sorted(METHODS.items()):
        entry: dict[str, Any] = {"params": ref(spec.params)}
        if name in RESULTS:
            entry["result"] = ref(RESULTS[name])
        if name == "agent":
            entry["accepted"] = ref(AgentAccepted)
        entry.update(scope=spec.scope, role=spec.role, summary=spec.summary)
        methods[name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://agenthub.dev/protocol.schema.json",
        "title": "agenthub gateway protocol",
        "oneOf": [{"$ref": f"#/definitions/{n}"} for n in ("RequestFrame", "ResponseFrame", "EventFrame")],
        "discriminator": {"propertyName": "type"},
        "definitions": definitions,
        "connect": {"params": ref(ConnectParams), "result": ref(RESULTS["connect"])},
        "methods": methods,
        "events": {
            name: {"payload": ref(EVENT_PAYLOADS[name]), "scope": scope} for name, scope in sorted(EVENT_SCOPES.items())
        },
    }
