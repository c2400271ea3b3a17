"""Shared path and query parameter types: ids are checked at the door (no control characters, bounded).

Example:
    >>> from fastapi import APIRouter
    >>> router = APIRouter()
    >>> @router.get("/things/{thing_id}")
    ... def show(thing_id: Annotated[str, ident_path("The thing's id.")]) -> str:
    ...     return thing_id
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

IDENT_PATTERN = r"^[^\x00-\x1f]+$"
"""Ids and names never hold control characters (a NUL would even be refused by PostgreSQL)."""

IDENT_MAX = 200

INDEX_MAX = 2**31 - 1
"""Iteration indexes are 32-bit integers in the store."""


def ident_path(description: str) -> Any:
    """A path parameter naming an object by id (or name, where the description says so)."""
    return Path(description=description, min_length=1, max_length=IDENT_MAX, pattern=IDENT_PATTERN)


def ident_query(description: str) -> Any:
    """An optional query parameter naming an object by id."""
    return Query(description=description, min_length=1, max_length=IDENT_MAX, pattern=IDENT_PATTERN)


ProjectIdent = Annotated[str, ident_path("The project's id (`prj_…`) or name.")]
ExperimentId = Annotated[str, ident_path("The experiment's id (`exp_…`).")]
IterationId = Annotated[str, ident_path("The iteration's id (`itr_…`).")]
AssetId = Annotated[str, ident_path("The asset's id (`ast_…`).")]
DatasetIdent = Annotated[str, ident_path("The dataset's id (`dst_…`) or name.")]
TemplateId = Annotated[str, ident_path("The template's id, e.g. `ppo` or `ppo@2`.")]
