"""`flywheel verify`: the table, the certificate next to the model, exit codes and error lines."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.safety.verify.examples import random_mlp_onnx

SPEC = """properties:
  - name: in-limits
    kind: output_bounds
    box: {low: [-1, -1], high: [1, 1]}
    actions: {low: [-0.21], high: [0.21]}
"""


def test_verify_proved_refuted_and_bad_input(tmp_path: Path) -> None:
    model = random_mlp_onnx(tmp_path / "policy.onnx", [2, 8, 1], seed=0, clip=([-0.2], [0.2]))
    spec = tmp_path / "safety.yaml"
    spec.write_text(SPEC)
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", "--model", str(model), "--spec", str(spec), "--time-limit", "10"])
    assert ok.exit_code == 0, ok.output
    assert "in-limits" in ok.output and "proved" in ok.output
    assert (tmp_path / "policy.certificate.json").is_file()
    spec.write_text(SPEC.replace("0.21", "0.01"))
    bad = runner.invoke(app, ["verify", "--model", str(model), "--spec", str(spec), "--json"])
    assert bad.exit_code == 1
    body = json.loads(bad.stdout[: bad.stdout.rindex("}") + 1])
    assert body["certificates"][0]["result"] == "refuted"
    assert "error: not proved: in-limits (refuted)" in bad.output
    spec.write_text(SPEC.replace("low: [-0.21]", "low: [-0.21, 0]").replace("high: [0.21]", "high: [0.21, 1]"))
    wrong = runner.invoke(app, ["verify", "--model", str(model), "--spec", str(spec)])
    assert wrong.exit_code == 1 and "spec.properties.0.actions.low" in wrong.output and "hint:" in wrong.output
