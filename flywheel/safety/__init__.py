"""Safety: action limits, out-of-distribution detection and the emergency stop (runtime), formal verification.

The runtime part, by module:

- :mod:`flywheel.safety.limits`: :class:`~flywheel.safety.limits.SafetyLayer`, per-dimension ranges from the
  robot description (narrowed by a project's :class:`~flywheel.safety.config.SafetyConfig`), rate limits,
  ``validate``/``clip``, violation counters.
- :mod:`flywheel.safety.wrapper`: :class:`~flywheel.safety.wrapper.SafetyWrapper`, the layer around a
  Gymnasium env for training (``r_safety`` penalty) and evaluation (``info["safety_violation"]``).
- :mod:`flywheel.safety.counting`: the same violation counts for a whole vec env in numpy batches, for
  training runs that only report safety (no clipping, no penalty), at a fraction of the per-step cost.
- :mod:`flywheel.safety.ood`: :class:`~flywheel.safety.ood.OODDetector`, z-scores and Mahalanobis distance
  fitted from a dataset, states flagged for review, ``ood_rate``.
- :mod:`flywheel.safety.estop`: the emergency-stop latch in the database (``trigger``, ``reset``,
  ``is_latched``) and :class:`~flywheel.safety.estop.EstopGuard`, polled by a control loop every tick.
- :mod:`flywheel.safety.control`: :class:`~flywheel.safety.control.ControlLoop`, a fixed-rate loop that
  runs a policy on an env through the guard.

Submodules are imported on use, so ``import flywheel.safety`` stays light.
"""
