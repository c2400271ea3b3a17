"""Aliases: a project's named pointers to iterations (``champion`` is the one autoresearch keeps).

An alias is one row per (project, name); setting it again moves it. Deleting the iteration it points at
deletes the alias with it (nothing points nowhere).

Example:
    >>> set_alias(session, user, "drive", "champion", "itr_0123456789ab").iteration_id  # doctest: +SKIP
    'itr_0123456789ab'
    >>> get_alias(session, user, "drive", "champion").iteration_id  # doctest: +SKIP
    'itr_0123456789ab'
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from flywheel.errors import InvalidInput, NotFound
from flywheel.platform import access
from flywheel.platform.models import Experiment, User
from flywheel.store.base import Base, UTCDateTime, utcnow

#: What an alias name may look like.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class Alias(Base):
    """A project's named pointer to one of its iterations."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    iteration_id: Mapped[str] = mapped_column(ForeignKey("iterations.id", ondelete="CASCADE"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AliasPublic(BaseModel):
    """An alias as the API and ``--json`` show it."""

    model_config = ConfigDict(from_attributes=True)

    project_id: str
    name: str
    iteration_id: str
    updated_at: datetime


def _check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(f"bad alias name {name!r}", field="name",
                           allowed="1-63 characters: lowercase letters, digits, '_', '.', '-' (starting with a "
                                   "letter or digit)")
    return name


def set_alias(session: Session, user: User, project: str, name: str, iteration_id: str) -> Alias:
    """Point ``name`` of the user's ``project`` at ``iteration_id`` (an iteration of that project).

    Raises:
        InvalidInput: a bad name, or the iteration belongs to another project.
        NotFound: the project or the iteration is not the user's.
    """
    _check_name(name)
    found = access.project(session, user, project)
    iteration = access.iteration(session, user, iteration_id)
    experiment = session.get(Experiment, iteration.experiment_id)
    if experiment is None or experiment.project_id != found.id:
        raise InvalidInput(f"iteration {iteration_id} is not in project {found.name}", field="iteration",
                           hint=f"`flywheel tree {found.name}` shows the project's experiments.")
    alias = session.scalars(select(Alias).where(Alias.project_id == found.id, Alias.name == name)).first()
    if alias is None:
        alias = Alias(project_id=found.id, name=name, iteration_id=iteration.id, updated_at=utcnow())
        session.add(alias)
    else:
        alias.iteration_id = iteration.id
        alias.updated_at = utcnow()
    session.flush()
    return alias


def get_alias(session: Session, user: User, project: str, name: str) -> Alias:
    """The alias ``name`` of the user's ``project``.

    Raises:
        NotFound: no such project, or the project has no alias of that name.
    """
    found = access.project(session, user, project)
    alias = session.scalars(select(Alias).where(Alias.project_id == found.id, Alias.name == name)).first()
    if alias is None:
        raise NotFound("alias", name, hint=f"`flywheel project alias {found.name}` lists the project's aliases.")
    return alias


def list_aliases(session: Session, user: User, project: str) -> list[Alias]:
    """Every alias of the user's ``project``, by name."""
    found = access.project(session, user, project)
    return list(session.scalars(select(Alias).where(Alias.project_id == found.id).order_by(Alias.name)))
