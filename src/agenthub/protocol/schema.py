"""The JSON Schema of the protocol, generated from the frame and params models."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from .frames import ErrorShape, EventFrame, RequestFrame, ResponseFrame
from .methods import EVENT_SCOPES, METHODS, ConnectParams

__all__ = ["protocol_schema"]


def protocol_schema() -> dict[str, Any]:
    """One document: the frame union, ``definitions`` for every model, and the method table."""
    models: list[type[Any]] = [RequestFrame, ResponseFrame, EventFrame, ErrorShape, ConnectParams]
    models += sorted({spec.params for spec in METHODS.values()}, key=lambda m: m.__name__)
    _, doc = models_json_schema([(m, "validation") for m in models], ref_template="#/definitions/{model}")
    definitions = doc.get("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://agenthub.dev/protocol.schema.json",
        "title": "agenthub gateway protocol",
        "oneOf": [{"$ref": f"#/definitions/{n}"} for n in ("RequestFrame", "ResponseFrame", "EventFrame")],
        "discriminator": {"propertyName": "type"},
        "definitions": definitions,
        "methods": {
            name: {
                "params": f"#/definitions/{spec.params.__name__}",
                "scope": spec.scope,
                "role": spec.role,
                "summary": spec.summary,
            }
            for name, spec in sorted(METHODS.items())
        },
        "events": {name: {"scope": scope} for name, scope in sorted(EVENT_SCOPES.items())},
    }
