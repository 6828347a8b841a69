"""The mirror-schedule choice of docs/workspace.md: the rule applied to made-up stored accuracies."""

from __future__ import annotations

import pytest
from helpers import script

from plasticity.rules import make_config


@pytest.fixture(scope="module")
def mirror():
    with script("benchmarks/workspace_mirror.py") as module:
        yield module


def suites(shift: dict[str, float], seeds: range) -> tuple[dict, dict]:
    """Made-up accuracies: each schedule the former default's plus its shift, seed by seed."""
    options = {
        "ws-e4-n64": {"mirror_every": 4, "mirror_rate": 0.04},
        "ws-e8-n64": {"mirror_every": 8, "mirror_rate": 0.08},
        "ws-e16-n64-slow": {"mirror_every": 16},
        "ws-e8-n16": {"mirror_every": 8, "mirror_samples": 16, "mirror_rate": 0.08},
        "dfa-e4-n64": {"mirror_every": 4, "mirror_rate": 0.04},
        "dfa-e8-n16": {"mirror_every": 8, "mirror_samples": 16, "mirror_rate": 0.08},
    }
    found = {(label, "mnist1d"): {s: 60.0 + (s % 3) * 0.1 + shift.get(label, 0.0) for s in seeds} for label in options}
    return found, {label: make_config("dfa" if label.startswith("dfa") else "workspace", o) for label, o in options.items()}


def test_the_least_work_within_the_tolerance_is_chosen(mirror, monkeypatch):
    table = ({("workspace", "mnist1d"): {0: 61.0, 1: 60.0, 2: 60.5}, ("ws-mirror4", "mnist1d"): {0: 62.0, 1: 61.0, 2: 61.0}}, {})
    found = suites({"ws-e8-n64": -0.1, "ws-e16-n64-slow": 0.2, "ws-e8-n16": -0.5, "dfa-e8-n16": -0.7}, range(10, 25))
    monkeypatch.setattr(mirror, "accuracies", lambda folders: table if folders == ["ablation"] else found)
    measured = mirror.measure(["a", "b"], "ablation")
    works = {row["schedule"]: row["work"] for row in measured["rows"]}
    assert works == {"ws-e16-n64-slow": 4.0, "ws-e8-n16": 2.0, "ws-e8-n64": 8.0}
    assert measured["chosen"] == "ws-e16-n64-slow"  # e8-n16 does less work but is 0.5 below
    assert measured["tables_seeds"]["mean"] == pytest.approx((61 + 60 + 60.5 - 62 - 61 - 61) / 3)
    assert measured["pooled"]["n"] == 18 and measured["dfa"]["mean"] < 0
    text = mirror.markdown(measured)
    row = next(line for line in text.splitlines() if line.startswith("| ws-e8-n16 | 2 | -0.5"))
    assert row.endswith("| no |") and "Chosen: **ws-e16-n64-slow**" in text


def test_a_choice_that_is_not_the_default_is_refused(mirror, monkeypatch):
    found = suites({"ws-e8-n64": 0.3, "ws-e16-n64-slow": -0.5}, range(10, 25))  # e8-n64 would be chosen
    monkeypatch.setattr(mirror, "accuracies", lambda folders: found)
    with pytest.raises(SystemExit, match="not the workspace's default"):
        mirror.measure(["a"], "ablation")
