"""The assembled app: routes under /api/v1, OpenAPI and docs, routing errors in the common error shape."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Api, assert_error

OPERATIONS = {
    ("get", "/api/v1/users/me"),
    ("post", "/api/v1/projects"),
    ("get", "/api/v1/projects"),
    ("get", "/api/v1/projects/{project_id}"),
    ("patch", "/api/v1/projects/{project_id}"),
    ("delete", "/api/v1/projects/{project_id}"),
    ("post", "/api/v1/experiments"),
    ("get", "/api/v1/projects/{project_id}/experiments"),
    ("get", "/api/v1/projects/{project_id}/tree"),
    ("get", "/api/v1/experiments/{experiment_id}"),
    ("patch", "/api/v1/experiments/{experiment_id}"),
    ("delete", "/api/v1/experiments/{experiment_id}"),
    ("post", "/api/v1/experiments/{experiment_id}/fork"),
    ("put", "/api/v1/experiments/{experiment_id}/datasets/{dataset_id}"),
    ("delete", "/api/v1/experiments/{experiment_id}/datasets/{dataset_id}"),
    ("post", "/api/v1/experiments/{experiment_id}/iterations"),
    ("get", "/api/v1/experiments/{experiment_id}/iterations"),
    ("get", "/api/v1/experiments/{experiment_id}/iterations/{index}"),
    ("get", "/api/v1/iterations/{iteration_id}"),
    ("patch", "/api/v1/iterations/{iteration_id}/notes"),
    ("delete", "/api/v1/iterations/{iteration_id}"),
    ("post", "/api/v1/assets"),
    ("get", "/api/v1/assets"),
    ("get", "/api/v1/assets/{asset_id}"),
    ("get", "/api/v1/assets/{asset_id}/download"),
    ("post", "/api/v1/assets/{asset_id}/tags"),
    ("delete", "/api/v1/assets/{asset_id}/tags/{tag}"),
    ("delete", "/api/v1/assets/{asset_id}"),
    ("get", "/api/v1/templates"),
    ("get", "/api/v1/templates/{template_id}"),
    ("get", "/api/v1/lineage/{object_id}"),
    *(("post", f"/api/v1/datasets{p}") for p in ("", "/upload", "/compact-due", "/{dataset}/append",
                                                  "/{dataset}/record", "/{dataset}/episodes/delete",
                                                  "/{dataset}/episodes/undelete",
                                                  "/{dataset}/episodes/{episode_index}/trim", "/{dataset}/compact",
                                                  "/{dataset}/export")),
    *(("get", f"/api/v1/datasets{p}") for p in ("", "/{dataset}", "/{dataset}/episodes",
                                                 "/{dataset}/episodes/{episode_index}",
                                                 "/{dataset}/episodes/{episode_index}/render", "/{dataset}/verify",
                                                 "/{dataset}/stats")),
    ("patch", "/api/v1/datasets/{dataset}"),
    ("delete", "/api/v1/datasets/{dataset}"),
    ("put", "/api/v1/datasets/{dataset}/episodes/{episode_index}/success"),
}


def test_openapi_documents_every_operation_with_bearer_auth(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    operations = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert operations >= OPERATIONS, f"undocumented: {sorted(OPERATIONS - operations)}"
    assert schema["components"]["securitySchemes"]["APIKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["APIKey"]["description"],
    }
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert op["security"] == [{"APIKey": []}], f"{method} {path} is not behind the API key"
            assert {"401", "404", "422"} <= set(op["responses"]), f"{method} {path} lacks its error answers"
    upload = schema["paths"]["/api/v1/assets"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/octet-stream"}
    assert {p["name"] for p in upload["parameters"]} == {"experiment_id", "name", "iteration_id", "tags"}


def test_docs_are_served(client: TestClient) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and "/api/v1/openapi.json" in response.text


def test_routing_errors_use_the_common_error_shape(api: Api) -> None:
    assert_error(api.get("/no-such-thing"), 404)
    response = api.request("PUT", "/projects")
    assert_error(response, 405)
    assert "allow" in response.headers, "the routing error keeps its headers"
