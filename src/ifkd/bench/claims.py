"""The paper's claims, one short paragraph each, written from the benchmark's numbers.

Only the claim and the pair of methods that test it are fixed here; whether it holds is decided by
:func:`ifkd.bench.stats.compare` from the measured means and seed spreads (never typed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ifkd.bench.stats import aggregate, compare, fmt_stat, mean_std, paired_gaps


@dataclass(frozen=True)
class Claim:
    statement: str
    protocol: str
    a: str
    """the method the claim says is better"""
    b: str
    source: str = "table"
    """'table' (equal optimiser steps), 'equal_time' (equal wall time) or 'gap' (seen - unseen IoU)"""


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "Knowledge distillation improves the student (paper Table 2: +0.006 IoU)", "seen", "ifkd", "ifkd-nokd"
    ),
    Claim(
        "The IF-Net teacher distils better than a simple 3D CNN teacher (paper Table 2)",
        "seen",
        "ifkd",
        "ifkd-simple-teacher",
    ),
    Claim(
        "Plain skip connections beat skips through a 5-layer CNN (paper Table 4)", "seen", "ifkd", "ifkd-cnn5"
    ),
    Claim(
        "Plain skip connections beat spatial transformers on the skips (paper Table 4)",
        "seen",
        "ifkd",
        "ifkd-stn",
    ),
    Claim(
        "Camera-free pixel-aligned local features beat a global code (IM-NET-style, paper Table 1)",
        "seen",
        "ifkd",
        "global",
    ),
    Claim(
        "Camera-free projection beats an estimated camera (DISN-style, paper Table 1)",
        "seen",
        "ifkd",
        "camera",
    ),
    Claim(
        "At equal training wall time, local features still beat a global code",
        "seen",
        "ifkd",
        "global",
        "equal_time",
    ),
    Claim(
        "Local features beat a global code on categories never seen in training", "unseen", "ifkd", "global"
    ),
    Claim(
        "Local features lose less IoU than a global code from seen to unseen categories",
        "unseen",
        "ifkd",
        "global",
        "gap",
    ),
    Claim("Local features beat a global code on real meshes", "real", "ifkd", "global"),
)

VERDICTS = {
    "holds": "larger than one std of the difference ({spread:.3f}): **holds** on this benchmark",
    "reversed": "larger than one std of the difference ({spread:.3f}) the other way: "
    "**does not hold** on this benchmark",
    "within": "within one std of the difference ({spread:.3f}): **not shown** on this benchmark",
}


def _gap_table(seen: Mapping, unseen: Mapping) -> dict:
    """A stats-table-like dict of per-seed paired gaps (seen IoU - unseen IoU) under the key 'gap'."""
    out = {}
    for method, gaps in paired_gaps(seen, unseen).items():
        mean, std, n = mean_std(list(gaps.values()))
        out[method] = {"n_seeds": n, "mean": {"gap": mean}, "std": {"gap": std}}
    return out


def _claim_table(claim: Claim, by_protocol: Mapping[str, Mapping]) -> tuple[dict | None, str, str]:
    """(stats table the claim is read from, metric label, why it is missing)."""
    results = by_protocol.get(claim.protocol)
    if results is None:
        return None, "", f"the `{claim.protocol}` protocol has not been run for this budget"
    if claim.source == "gap":
        if "seen" not in by_protocol:
            return None, "", "the `seen` protocol has not been run for this budget"
        return _gap_table(by_protocol["seen"], results), "IoU gap seen − unseen, lower is better", ""
    if claim.source == "equal_time":
        table = results.get("equal_time") or {}
        return (
            table or None,
            "IoU at equal wall time",
            "the equal-wall-time runs were not made (`--equal-time`)",
        )
    return results.get("table") or aggregate(results.get("runs", [])), "IoU", ""


def _chamfer_note(claim: Claim, table: Mapping) -> str:
    """Whether Chamfer-L1 agrees with the IoU verdict (equal-steps claims only)."""
    c = compare(table, claim.a, claim.b, "chamfer_l1_x10") if claim.source == "table" else None
    if c is None:
        return ""
    agree = "agrees" if c["gain"] > 0 else "disagrees" if c["gain"] < 0 else "ties"
    return f" Chamfer-L1 ×10 {c['a']:.3f} vs {c['b']:.3f}: {agree}."


EMPTY_FLAG = 0.10
"""A method whose meshes are empty more often than this (class mean) is flagged in every claim it
enters: its IoU and Chamfer are then mostly a count of empty meshes, not a measure of shape."""


def _empty_note(claim: Claim, by_protocol: Mapping[str, Mapping]) -> str:
    """A warning for each side of the claim with more than EMPTY_FLAG empty meshes (equal-steps table)."""
    results = by_protocol.get(claim.protocol) or {}
    table = results.get("table") or {}
    notes = []
    for m in (claim.a, claim.b):
        share = table.get(m, {}).get("mean", {}).get("empty")
        if share is not None and share > EMPTY_FLAG:
            notes.append(f"{m} leaves {share:.0%} of its meshes empty")
    if not notes:
        return ""
    return (
        f" **Flagged**: {' and '.join(notes)} (> {EMPTY_FLAG:.0%}): that side has not learnt enough "
        "to test the claim."
    )


def claim_paragraph(claim: Claim, by_protocol: Mapping[str, Mapping]) -> str:
    """One paragraph: the claim, both numbers with their spread, the difference and the verdict."""
    table, label, missing = _claim_table(claim, by_protocol)
    key = "gap" if claim.source == "gap" else "iou"
    c = compare(table, claim.a, claim.b, key, lower=key == "gap") if table else None
    if c is None:
        why = missing if table is None else f"`{claim.a}` or `{claim.b}` is missing from these results"
        return f"**{claim.statement}**: not measured: {why}."
    sa, sb = (
        fmt_stat(table[m]["mean"][key], table[m]["std"][key], table[m]["n_seeds"]) for m in (claim.a, claim.b)
    )
    if c["verdict"] == "single":
        way = "points the claim's way" if c["gain"] > 0 else "points against it" if c["gain"] < 0 else "a tie"
        verdict = f"one seed, no spread estimate: {way}, not established"
    else:
        verdict = VERDICTS[c["verdict"]].format(spread=c["spread"])
    seeds = f"{c['n']} seed{'s' if c['n'] != 1 else ''}"
    return (
        f"**{claim.statement}** ({claim.protocol}, {label}): {claim.a} {sa} vs {claim.b} {sb} over {seeds}: "
        f"difference {c['gain']:+.3f} in the claim's favour, {verdict}.{_chamfer_note(claim, table)}"
        f"{_empty_note(claim, by_protocol)}"
    )


def claims_section(results: Mapping) -> str:
    """One paragraph per claim of the paper (and of issue 9), from a results.json dict or from a mapping
    {protocol: results.json dict} of one budget."""
    by_protocol = {results["protocol"]: results} if "protocol" in results else dict(results)
    return "\n\n".join(claim_paragraph(c, by_protocol) for c in CLAIMS) + "\n"
