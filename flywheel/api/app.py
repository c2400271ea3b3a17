"""The FastAPI app: every resource router under `/api/v1`, OpenAPI at `/api/v1/openapi.json`.

Serve it with `flywheel serve`, or directly:

    uvicorn flywheel.api.app:create_app --factory --host 127.0.0.1 --port 8000

Example:
    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app())
    >>> client.get("/api/v1/projects").status_code  # no API key
    401
"""

from __future__ import annotations

from fastapi import FastAPI

import flywheel
from flywheel.api.errors import ERROR_RESPONSES, install_error_handlers
from flywheel.datasets import routes as datasets
from flywheel.jobs import routes as jobs
from flywheel.platform.routes import aliases, assets, experiments, iterations, lineage, projects, templates, users
from flywheel.safety import routes as emergency_stop

API_PREFIX = "/api/v1"

ROUTERS = (users, projects, aliases, experiments, iterations, assets, templates, lineage, datasets, emergency_stop,
           jobs)
"""The resource modules; each exposes a `router`."""


def create_app() -> FastAPI:
    """Assemble the API: the routers, the error handlers, the docs at `/api/v1/docs`.

    The app holds no database state: each request opens a session on the database the settings name then.
    """
    app = FastAPI(
        title="Flywheel",
        summary="A self-improving robot-learning loop: projects, experiment trees, iterations and assets.",
        version=flywheel.__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    return app
