"""The safety gate: THE function promotion and deployment call before a policy may ship.

Example:
    >>> require_proved([], ["actions-in-limits"])
    Traceback (most recent call last):
    ...
    flywheel.errors.Conflict: not proved: actions-in-limits (no certificate)
"""

from __future__ import annotations

from collections.abc import Iterable

from flywheel.errors import Conflict
from flywheel.safety.verify.certificate import Certificate


def require_proved(certificates: Iterable[Certificate], required_properties: Iterable[str], *,
                   model_sha256: str | None = None) -> None:
    """Refuse unless every required property has a ``proved`` certificate (for this model, if given).

    Args:
        certificates: the certificates at hand (any order; several per property allowed: one proof suffices).
        required_properties: property names that must be proved.
        model_sha256: when given, certificates of other models do not count.

    Raises:
        Conflict: naming each required property that is not proved, and why (refuted, unknown, missing).
    """
    best: dict[str, str] = {}
    rank = {"refuted": 4, "proved": 3, "unknown": 1}  # a reproduced counterexample outweighs any proof
    for cert in certificates:
        if model_sha256 is not None and cert.model_sha256 != model_sha256:
            continue
        if rank[cert.result] > rank.get(best.get(cert.property_name, ""), 0):
            best[cert.property_name] = cert.result
    missing = []
    for name in dict.fromkeys(required_properties):
        result = best.get(name)
        if result != "proved":
            missing.append(f"{name} ({result or 'no certificate'})")
    if missing:
        raise Conflict("not proved: " + ", ".join(missing),
                       hint="Run `flywheel verify --model policy.onnx --spec safety.yaml`; only a policy whose "
                            "required properties are all proved can be promoted or deployed.")
