"""The template registry: every training recipe by id, config parsing, and syncing to the database.

Add a template by writing a module in this folder (a :class:`~flywheel.training.base.Template` subclass
with its config model) and adding one line to :data:`TEMPLATES`. Importing this package is light: template
modules import torch and Stable-Baselines3 inside ``run``, so listing templates and validating configs is fast.

Recipes that learn from data reuse the same pieces, so their outputs are interchangeable with PPO's:

- ``bc``: build the network with :func:`flywheel.training.templates.ppo.make_model` (a ``PPO`` whose
  ``ActorCriticPolicy`` is the actor), check each dataset with ``envs.features_for(env)``, fit
  ``model.policy`` by regression on the demonstrations (MSE on the Gaussian mean for Box actions,
  cross-entropy on the logits for Discrete), then :func:`runtime.finish(model, …, algorithm="PPO")
  <flywheel.training.templates.runtime.finish>`: the ``model.zip`` loads with ``PPO.load``.
- ``dagger``: the same network; roll out the learner with ``envs.make_env``, label each visited state with
  ``envs.expert_for(env)`` (once per step, before ``env.step``), aggregate, refit.
- ``bc_ppo``: BC as above, then ``model.learn`` with :class:`~flywheel.training.templates.runtime.RunCallback`
  (or start the ``ppo`` template from the BC ``model.zip`` via ``RunInputs.init_checkpoint``).

Example:
    >>> sorted(TEMPLATES)
    ['bc', 'bc_ppo', 'dagger', 'dqn', 'ppo', 'sac']
    >>> parse_config("ppo", {"learning_rate": 1e-3}).learning_rate
    0.001
    >>> parse_config("ppo", {"learning_rat": 1e-3})
    Traceback (most recent call last):
    ...
    flywheel.errors.InvalidInput: config.learning_rat: unknown config key for template ppo (allowed: [...])
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from flywheel.errors import InvalidInput
from flywheel.training.base import Template, TemplateConfig
from flywheel.training.templates.bc import BCTemplate
from flywheel.training.templates.bc_ppo import BCPPOTemplate
from flywheel.training.templates.common import code_version
from flywheel.training.templates.dagger import DAggerTemplate
from flywheel.training.templates.dqn import DQNTemplate
from flywheel.training.templates.ppo import PPOTemplate
from flywheel.training.templates.sac import SACTemplate

#: Template id -> template. Keep it a plain dict: new recipes add one entry each.
TEMPLATES: dict[str, Template] = {
    t.id: t for t in (PPOTemplate(), DQNTemplate(), SACTemplate(), BCTemplate(), DAggerTemplate(), BCPPOTemplate())
}


def get_template_impl(template_id: str) -> Template:
    """The template with this id, or InvalidInput listing the ids that exist.

    Example:
        >>> get_template_impl("ppo").config_model.__name__
        'PPOConfig'
    """
    template = TEMPLATES.get(template_id) if isinstance(template_id, str) else None
    if template is None:
        raise InvalidInput(f"unknown template {template_id!r}", field="template", allowed=sorted(TEMPLATES))
    return template


def parse_config(template_id: str, overrides: dict[str, Any] | None = None) -> TemplateConfig:
    """Validate ``overrides`` against the template's config model and return the full config.

    The env id is checked too, so a run is refused before any work starts.

    Raises:
        InvalidInput: unknown template (``template``), unknown key or bad value (``config.<key>``, with the
            allowed keys or the constraint pydantic reports), unknown env (``config.env_id``).
    """
    from flywheel.training.envs import check_env_id

    template = get_template_impl(template_id)
    model = template.config_model
    overrides = dict(overrides or {})
    allowed = sorted(model.model_fields)
    for key in overrides:
        if key not in model.model_fields:
            raise InvalidInput(f"unknown config key for template {template.id}", field=f"config.{key}",
                               allowed=allowed)
    try:
        config = model.model_validate(overrides)
    except ValidationError as exc:
        raise _invalid(exc, model) from None
    check_env_id(config.env_id, field="config.env_id")
    return config


def _invalid(exc: ValidationError, model: type[TemplateConfig]) -> InvalidInput:
    """The first pydantic error as InvalidInput naming ``config.<key>`` and the field's allowed range."""
    error = exc.errors()[0]
    loc = list(error.get("loc", ()))
    key = str(loc[0]) if loc else ""
    field = "config" + (f".{key}" if key else "") + "".join(f".{p}" for p in loc[1:] if isinstance(p, int))
    info = model.model_fields.get(key)
    message = error.get("msg", "invalid value").removeprefix("Value error, ")
    if key and "input" in error:
        message += f", got {error['input']!r}"
    allowed = _allowed(info) if info is not None else None
    return InvalidInput(message, field=field, allowed=allowed)


_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "length ≥"), ("max_length", "length ≤"))


def _allowed(info: Any) -> str:
    """A field's constraints as text (``"> 0, ≤ 1"``), else its type and description."""
    parts = [f"{sign} {getattr(m, name)}" for m in info.metadata for name, sign in _BOUNDS if hasattr(m, name)]
    if parts:
        return ", ".join(parts)
    kind = info.annotation
    annotation = kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")
    return f"{annotation}: {info.description}" if info.description else annotation


def sync_registry(session: Any) -> list[str]:
    """Register every template (schema, defaults, version, code commit) in the database; return the ids.

    The commit is ``git rev-parse HEAD`` of the code when it runs from a checkout, else the package version.
    """
    from flywheel.platform.templates import register_template

    commit = code_version()
    for template in TEMPLATES.values():
        register_template(session, template_id=template.id, description=template.description,
                          config_model=template.config_model, git_commit=commit, version=template.version)
    return list(TEMPLATES)
