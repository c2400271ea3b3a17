"""The one error mapping: every domain exception answers its status and body; validation answers 422 naming fields."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from flywheel.api.errors import install_error_handlers
from flywheel.errors import Conflict, FlywheelError, IntegrityError, InvalidInput, NotFound, Unauthorized


class Inner(BaseModel):
    size: int = Field(ge=0)


class Outer(BaseModel):
    items: list[Inner]


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    raised = {
        "invalid": InvalidInput("must be 1..5", field="n_steer", allowed="1..5"),
        "missing": NotFound("project", "prj_1", hint="list them"),
        "conflict": Conflict("a cycle"),
        "unauthorized": Unauthorized("no key"),
        "damaged": IntegrityError("blob damaged"),
        "generic": FlywheelError("plain"),
    }

    @app.get("/raise/{kind}")
    def raise_(kind: str) -> None:
        raise raised[kind]

    @app.post("/validate")
    def validate(body: Outer) -> None:
        return None

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("invalid", 422, InvalidInput),
        ("missing", 404, NotFound),
        ("conflict", 409, Conflict),
        ("unauthorized", 401, Unauthorized),
        ("damaged", 500, IntegrityError),
        ("generic", 400, FlywheelError),
    ],
)
def test_domain_errors_answer_their_status_and_body(
    client: TestClient, kind: str, status: int, error: type[FlywheelError]
) -> None:
    response = client.get(f"/raise/{kind}")
    assert response.status_code == status == error.status_code
    assert response.json()["error"] == error.__name__
    if kind == "invalid":
        assert response.json() == {
            "error": "InvalidInput",
            "message": "n_steer: must be 1..5 (allowed: 1..5)",
            "field": "n_steer",
            "allowed": "1..5",
        }
    if kind == "missing":
        assert response.json()["hint"] == "list them"


def test_validation_errors_name_nested_fields_and_constraints(client: TestClient) -> None:
    response = client.post("/validate", json={"items": [{"size": 1}, {"size": -1}]})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "items.1.size"
    assert body["errors"] == [
        {
            "field": "items.1.size",
            "in": "body",
            "message": "Input should be greater than or equal to 0",
            "allowed": "ge=0",
        }
    ]
    assert body["message"].startswith("items.1.size: ")


def test_invalid_json_names_the_body(client: TestClient) -> None:
    response = client.post("/validate", content=b'{"items": [', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["field"] == "body"
