"""Provenance: where an eval, asset, iteration or experiment came from.

Example:
    curl -H "Authorization: Bearer $FLYWHEEL_API_KEY" http://127.0.0.1:8000/api/v1/lineage/dst_…
    # {"chain": [{"kind": "eval", …}, {"kind": "iteration", …}, {"kind": "experiment", …}, {"kind": "project", …}],
    #  "produced_by": [{"kind": "job", …}, {"kind": "template", …}]}
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.params import ident_path
from flywheel.platform import lineage as provenance
from flywheel.platform.schemas import Lineage

router = APIRouter(prefix="/lineage", tags=["lineage"])


@router.get("/{object_id}")
def read_lineage(
    session: SessionDep,
    user: CurrentUser,
    object_id: Annotated[str, ident_path("An id: `dst_…`, `ast_…`, `itr_…`, `exp_…` or `prj_…`.")],
) -> Lineage:
    """The object's chain up to its project, and for evals the job and template that produced it."""
    return provenance.lineage(session, user, object_id)
