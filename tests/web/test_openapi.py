"""OpenAPI at /openapi.json and the /docs page, against the routes a real gateway serves and what they answer."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from agenthub.app import Gateway
from agenthub.dialects.agentbox import frames as agentbox
from agenthub.web import hooks, langbot
from agenthub.web.openapi import OPERATIONS, openapi_document
from tests.conftest import GatewayProc

HOOK_TOKEN = "openapi-test-hook-token-0123456789"


def answer_validator(doc: dict[str, Any], path: str, method: str, status: int) -> jsonschema.Validator:
    """A validator for the JSON answer the document promises for (path, method, status)."""
    schema = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    root = {**schema, "components": doc["components"]}
    return jsonschema.Draft202012Validator(root)


@pytest.fixture
def doc(gateway: GatewayProc) -> dict[str, Any]:
    res = httpx.get(gateway.http + "/openapi.json", timeout=10)
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = res.json()
    return document


def test_the_served_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    validate(doc)  # openapi-spec-validator: raises on any error
    assert doc["openapi"].startswith("3.1")
    assert doc == openapi_document()  # what is served is what the code generates


def test_request_bodies_come_from_the_models_that_validate_them(doc: dict[str, Any]) -> None:
    bodies = {(op.method, op.path): op.body for op in OPERATIONS if op.body is not None}
    assert bodies[("POST", "/api/v1/tasks")] is agentbox.CreateTask
    assert bodies[("POST", "/hooks/agent")] is hooks.HookAgentBody
    assert bodies[("POST", "/api/v1/pipelines/{uuid}/ws/broadcast")] is langbot.BroadcastBody
    schema = doc["paths"]["/api/v1/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/CreateTask"}
    task = doc["components"]["schemas"]["CreateTask"]
    assert task["required"] == ["prompt"] and task["properties"]["prompt"]["maxLength"] == 100_000


async def test_every_route_of_the_gateway_is_documented(tmp_path: Path) -> None:
    """Routes registered by a gateway with every optional HTTP surface on, against ``OPERATIONS``."""
    config = {
        "data_dir": str(tmp_path),
        "port": 0,
        "hooks": {"enabled": True, "token": HOOK_TOKEN},
        "agentbox": {"port": 0},
    }
    documented = {(op.method, op.path) for op in OPERATIONS}
    async with Gateway(config) as gw:
        assert gw.app is not None
        served: set[tuple[str, str]] = set()
        for route in gw.app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path") or info.get("formatter") or info.get("prefix")
            if route.method == "HEAD" or path in ("/assets", "/apidocs"):
                continue  # HEAD mirrors GET; the static file trees are the UI's and the docs page's
            method = "POST" if route.method == "*" else route.method
            served.add((method, str(path)))
    assert served - documented == set(), "routes without an OpenAPI operation"

    def served_by(method: str, path: str) -> bool:  # /hooks/agent is served by the /hooks/{name} route
        return any(
            m == method and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) for m, template in served
        )

    assert {op for op in documented if not served_by(*op)} == set(), "operations the gateway does not serve"


def test_answers_match_the_documented_schemas(gateway: GatewayProc, doc: dict[str, Any]) -> None:
    http = httpx.Client(base_url=gateway.http, timeout=10)
    answer_validator(doc, "/healthz", "get", 200).validate(http.get("/healthz").json())
    keys = [sys.executable, "-m", "agenthub", "keys", "create", "--user", "ann", "--data-dir", str(gateway.data_dir)]
    key = subprocess.run(keys, capture_output=True, text=True, check=True).stdout.split()[0]
    auth = {"Authorization": f"Bearer {key}"}
    created = http.post("/api/v1/tasks", json={"prompt": "what is 1+1"}, headers=auth)
    assert created.status_code == 201
    answer_validator(doc, "/api/v1/tasks", "post", 201).validate(created.json())
    task = http.get(f"/api/v1/tasks/{created.json()['task_id']}", headers=auth)
    answer_validator(doc, "/api/v1/tasks/{task_id}", "get", 200).validate(task.json())
    refused = http.post("/api/v1/tasks", json={"agent": "x"}, headers=auth)  # no prompt: the model refuses it
    assert refused.status_code == 400
    answer_validator(doc, "/api/v1/tasks", "post", 400).validate(refused.json())
    lb = "/api/v1/pipelines/default/ws"
    answer_validator(doc, "/api/v1/pipelines/{uuid}/ws/messages/{type}", "get", 200).validate(
        http.get(f"{lb}/messages/person").json()
    )
    answer_validator(doc, "/api/v1/pipelines/{uuid}/ws/connections", "get", 200).validate(
        http.get(f"{lb}/connections").json()
    )
    sent = http.post(f"{lb}/broadcast", json={"message": "hello"})
    answer_validator(doc, "/api/v1/pipelines/{uuid}/ws/broadcast", "post", 200).validate(sent.json())
    bad = http.post(f"{lb}/broadcast", json={"text": "no message field"})
    assert bad.status_code == 400
    answer_validator(doc, "/api/v1/pipelines/{uuid}/ws/broadcast", "post", 400).validate(bad.json())


def test_hook_bodies_are_validated_by_their_model(make_gateway: Any) -> None:
    gw = make_gateway(config={"hooks": {"enabled": True, "token": HOOK_TOKEN}})
    doc = openapi_document()
    http = httpx.Client(base_url=gw.http, timeout=10, headers={"Authorization": f"Bearer {HOOK_TOKEN}"})
    bad = http.post("/hooks/agent", json={"message": "hi", "timeoutSeconds": -1})
    assert bad.status_code == 400 and "timeoutSeconds" in bad.json()["error"]
    answer_validator(doc, "/hooks/agent", "post", 400).validate(bad.json())
    assert http.post("/hooks/wake", json={"text": "x", "mode": "later"}).status_code == 400
    ok = http.post("/hooks/agent", json={"message": "what is 2+2"})
    assert ok.status_code == 200
    answer_validator(doc, "/hooks/agent", "post", 200).validate(ok.json())


def test_docs_page_is_served_from_the_package(gateway: GatewayProc) -> None:
    page = httpx.get(gateway.http + "/docs", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert not re.search(r"(src|href)=\"https?://", page.text), "the page must load nothing from a CDN"
    assets = re.findall(r'(?:src|href)="(/apidocs/[^"]+)"', page.text)
    assert {"/apidocs/swagger-ui-bundle.js", "/apidocs/swagger-ui.css", "/apidocs/docs.js"} <= set(assets)
    for asset in assets:
        res = httpx.get(gateway.http + asset, timeout=10)
        assert res.status_code == 200 and res.content
    script = httpx.get(gateway.http + "/apidocs/docs.js", timeout=10).text
    assert 'url: "/openapi.json"' in script and "validatorUrl: null" in script
