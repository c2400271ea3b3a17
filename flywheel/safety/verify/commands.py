"""`flywheel verify`: prove (or refute) a safety spec on an ONNX policy.

Usage:
    flywheel verify --model policy.onnx --spec safety.yaml
    flywheel verify --model policy.onnx --spec safety.yaml --time-limit 30 --json
    flywheel verify --model policy.onnx --spec safety.yaml --vnnlib-out vnnlib/

Prints a table of properties and verdicts, where the certificate was written (``policy.certificate.json``
next to the model), and the counterexample of every refuted property. Exit code 0 when every property is
proved, 1 otherwise (with `error:`/`hint:` lines, like every command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from flywheel.cli_output import JsonOpt, err_console, print_json, show, table
from flywheel.errors import Conflict


def verify_command(
    model: Annotated[Path, typer.Option("--model", help="The policy as ONNX (from `flywheel train`).")],
    spec: Annotated[Path, typer.Option("--spec", help="The safety spec (YAML).")],
    time_limit: Annotated[float, typer.Option("--time-limit", min=1.0,
                                              help="Seconds per query (bounds, B&B, then Marabou).")] = 60.0,
    vnnlib_out: Annotated[Path | None, typer.Option("--vnnlib-out", help="Also write every query as VNN-LIB here.",
                                                    show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a policy against a safety spec; write its certificate; exit 1 unless every property is proved."""
    from flywheel.safety.verify.certificate import certificate_path, save_certificates
    from flywheel.safety.verify.engine import verify
    from flywheel.safety.verify.gate import require_proved
    from flywheel.safety.verify.network import load_network
    from flywheel.safety.verify.spec import load_spec, queries
    from flywheel.safety.verify.vnnlib import export_queries

    parsed = load_spec(spec)
    if vnnlib_out is not None:
        network = load_network(model)
        pairs = [(p.name, q) for i, p in enumerate(parsed.properties) for q in queries(p, i, network)]
        written = export_queries(pairs, model, vnnlib_out)
        err_console().print(Text(f"Wrote {len(written)} VNN-LIB queries to {vnnlib_out}/"))
    status = err_console().status("verifying…") if not as_json else None
    if status:
        status.start()
    try:
        certificates = verify(model, parsed, time_limit_per_query=time_limit,
                              progress=(lambda m: status.update(f"verifying {m}")) if status else None)
    finally:
        if status:
            status.stop()
    path = save_certificates(certificates, certificate_path(model))
    if as_json:
        print_json({"certificate": str(path), "certificates": certificates})
    else:
        colour = {"proved": "green", "refuted": "red", "unknown": "yellow"}
        rows = []
        for cert in certificates:
            worst = max(cert.queries, key=lambda q: q.bound if q.bound is not None else float("-inf"), default=None)
            rows.append([cert.property_name, Text(cert.result, style=colour[cert.result]),
                         f"{len(cert.queries)}", ", ".join(cert.methods), f"{cert.seconds:.1f}s",
                         "—" if worst is None or worst.bound is None else f"{worst.bound:+.4g}"])
        show(table(f"Verification of {model.name} ({certificates[0].model_sha256[:12]})",
                   ["property", "result", "queries", "methods", "time", "max bound"], rows))
        show(Text(f"Certificate: {path}"))
        for cert in certificates:
            for q in cert.queries:
                if q.result == "refuted" and q.counterexample:
                    ce = q.counterexample
                    show(Text(f"Counterexample for {cert.property_name} ({q.name}), replayed in onnxruntime: "
                              f"measured {ce['measured']:.6g} vs limit {ce['limit']:.6g}", style="red"),
                         Text(f"  input: {[round(v, 6) for v in ce['input']]}"))
                elif q.result == "unknown" and q.note:
                    show(Text(f"{cert.property_name} ({q.name}): unknown — {q.note}", style="yellow"))
    try:
        require_proved(certificates, [c.property_name for c in certificates])
    except Conflict as exc:
        raise Conflict(exc.message, hint="A counterexample shows how the policy breaks the property; retrain or "
                       "relax the spec. For unknown, raise --time-limit.") from None
