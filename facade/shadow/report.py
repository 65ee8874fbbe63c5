"""The shadow report as people read it (text) and as tools read it (``--json``).

The figures come from ``facade.shadow.store.report``: the route's pairs compared,
matched, differing (a real difference: noise removed), copies dropped and failed; then
per endpoint (worst first) each differing field with its difference and noise rates,
its verdict, and example pairs — the request line, its safe headers, and both
answers' differing fragments.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from facade.shadow.store import Report

EXAMPLES_SHOWN = 2  # per field in the text report (--json has all that are kept)


def _pct(value: float) -> str:
    return f"{value * 100:.2f} %"


def as_json(report: Report) -> dict[str, Any]:
    return {
        "route": report.route,
        **asdict(report.summary),
        "matched": report.matched,
        "noise_compared": report.noise_compared,
        "noise_differing": report.noise_differing,
        "counters": dict(sorted(report.counters.items())),
        "thresholds": {"relative": report.relative, "absolute": report.absolute},
        "endpoints": [
            {
                "endpoint": e.endpoint,
                "compared": e.compared,
                "differing": e.differing,
                "noise_compared": e.noise_compared,
                "fields": [
                    {
                        "field": f.field,
                        "verdict": "differs" if f.real else "noise",
                        "difference_rate": f.rates.rate,
                        "noise_rate": f.rates.noise_rate,
                        **asdict(f.rates),
                        "examples": [
                            {
                                "request": x.request,
                                "headers": [list(h) for h in x.headers],
                                "where": x.where,
                                "primary": x.primary,
                                "shadow": x.shadow,
                            }
                            for x in f.examples
                        ],
                    }
                    for f in e.fields
                ],
            }
            for e in report.endpoints
        ],
    }


def as_text(report: Report) -> str:
    s = report.summary
    lines = [
        f"shadow report for route {report.route}: {s.compared} compared, {report.matched} "
        f"matched, {s.differing} differing ({_pct(s.difference_rate)}, noise removed), "
        f"{s.dropped} dropped, {s.errors} errors",
    ]
    if report.counters:
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in sorted(report.counters.items())))
    lines.append(
        f"  a field differs when its rate exceeds its noise rate by {_pct(report.absolute)} "
        f"and by {report.relative * 100:g} % of it"
    )
    for e in report.endpoints:
        lines += ["", f"{e.endpoint}: {e.compared} compared, {e.differing} differing, "
                  f"{e.noise_compared} noise pairs"]  # fmt: skip
        if not e.fields:
            continue
        width = max(len(f.field) for f in e.fields)
        lines.append(f"  {'field':<{width}}  {'differs in':>10}  {'noise':>8}  verdict")
        for f in e.fields:
            verdict = "DIFFERS" if f.real else "noise"
            lines.append(
                f"  {f.field:<{width}}  {_pct(f.rates.rate):>10}  "
                f"{_pct(f.rates.noise_rate):>8}  {verdict}"
            )
            if not f.real:
                continue
            for x in f.examples[:EXAMPLES_SHOWN]:
                lines.append(f"    {x.request}  ({x.where})")
                lines += [f"      {n}: {v}" for n, v in x.headers]
                lines.append(f"      primary: {x.primary}")
                lines.append(f"      shadow:  {x.shadow}")
    if not report.endpoints:
        lines.append("nothing compared yet: is the route shadowed and taking traffic?")
    return "\n".join(lines)


__all__ = ["as_json", "as_text"]
