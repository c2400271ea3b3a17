"""Property-based: schemathesis fires generated requests at every operation; none may answer 5xx.

About half the generated ids are swapped for ids of the user's real objects (see `REAL_IDS`), so requests
get past "not found" into the services' deeper checks. SQLite only: the PostgreSQL half of the other API
tests covers what differs between the backends (NUL characters, integer bounds) explicitly.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from schemathesis.checks import not_a_server_error
from sqlalchemy.orm import Session

from flywheel.api.app import create_app
from flywheel.platform.templates import register_template
from tests.api.conftest import Api, World

schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app())

REAL_IDS: dict[str, str] = {}
"""Parameter or body field name -> the id of a real object of the test's user (set per operation)."""


class PPOConfig(BaseModel):
    learning_rate: float = 3e-4
    gamma: float = 0.99


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLite only (overrides the two-backend fixture for this module)."""
    path = tmp_path / "flywheel.db"
    shutil.copy(request.getfixturevalue("_sqlite_template"), path)
    yield f"sqlite:///{path}"


@pytest.fixture
def real_ids(world: World, session: Session) -> Iterator[dict[str, str]]:
    """A fresh world per operation, its ids offered to the generated requests."""
    register_template(session, template_id="ppo", description="PPO", config_model=PPOConfig)
    session.commit()
    REAL_IDS.update(
        project_id=world.project["id"],
        experiment_id=world.experiment["id"],
        parent_id=world.experiment["id"],
        iteration_id=world.iteration["id"],
        asset_id=world.asset["id"],
        dataset_id=world.dataset_id,
        object_id=world.eval_id,
        template_id="ppo",
        tag="best",
    )
    yield REAL_IDS
    REAL_IDS.clear()


def _with_real_ids(values: Any) -> st.SearchStrategy[Any]:
    if not isinstance(values, dict) or not values.keys() & REAL_IDS.keys():
        return st.just(values)
    return st.sampled_from([values, {key: REAL_IDS.get(key, value) for key, value in values.items()}])


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy:
    return _with_real_ids(path_parameters)


@schema.hook
def flatmap_query(context: Any, query: dict[str, Any]) -> st.SearchStrategy:
    return _with_real_ids(query)


@schema.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
    return _with_real_ids(body)


@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx(case: schemathesis.Case, api: Api, real_ids: dict[str, str]) -> None:
    case.call_and_validate(headers=api.headers, checks=[not_a_server_error])
