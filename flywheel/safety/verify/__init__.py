"""Formal verification of policies: sound bounds, branch and bound, Marabou, certificates, the gate.

Heavy modules (torch, onnx, maraboupy) load lazily; import what you need from the submodules:

* :func:`flywheel.safety.verify.engine.verify` — verify a spec on an ONNX policy.
* :func:`flywheel.safety.verify.gate.require_proved` — the promotion / deployment gate.
* :func:`flywheel.safety.verify.spec.load_spec` — read a YAML spec.
"""
