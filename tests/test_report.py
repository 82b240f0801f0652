"""aecourse.report: tables, mean ± sd over seeds, the 'not decided' rule, claims that guard sentences, and the
chapter 4 verdicts computed from measurements."""

from __future__ import annotations

import math

import pytest

from aecourse.report import ClaimError, claim, compare, mean_sd, pm, table
from aecourse.runtime import BUDGET_ENV


def test_table_renders_html_and_aligned_text():
    t = table([{"name": "a<b", "value": 1.23456}, {"name": "c", "value": float("nan")}], formats={"value": ".2f"})
    assert "<td>a&lt;b</td>" in t._repr_html_() and "<td>1.23</td>" in t._repr_html_()
    lines = repr(t).splitlines()
    assert lines[0].split() == ["name", "value"] and lines[2].split() == ["c", "–"]
    assert len({len(line) for line in lines}) == 1  # aligned


def test_mean_sd_and_pm():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, sd = mean_sd([5.0])
    assert mean == 5.0 and math.isnan(sd)
    assert pm([1.0, 2.0, 3.0]) == "2.00 ± 1.00" and pm([5.0], ".1f") == "5.0"
    with pytest.raises(ValueError):
        mean_sd([])


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ([2.0, 2.1, 1.9], [1.0, 1.1, 1.0], "higher"),  # every seed higher, well outside the spread
        ([1.0, 1.1, 1.0], [2.0], "lower"),  # against a fixed reference
        ([2.0, 2.0, 0.9], [1.0, 1.0, 1.0], "not decided"),  # one seed disagrees
        ([1.5, 1.0, 1.02], [1.0, 1.01, 1.0], "not decided"),  # one seed lower
        ([1.1, 1.5, 1.9], [1.0], "not decided"),  # all higher, but the t-test does not reject (t = 2.2 < 4.3)
        ([1.5, 1.5, 1.5], [1.0], "higher"),  # identical seeds: no spread, the difference is exact
        ([2.0], [1.0], "not decided"),  # one seed decides nothing
    ],
)
def test_compare_decides_only_outside_the_seed_noise(a, b, verdict):
    assert compare(a, b).verdict == verdict


@pytest.mark.parametrize("n", [3, 5])
def test_the_verdict_rule_decides_at_most_5_percent_of_no_effect_comparisons(n):
    """The book's rule on synthetic seeds with no effect (normal noise, and heavy-tailed), then with a large one.
    The rule's rate is 5% by construction; the bound allows three standard errors of the simulation."""
    import numpy as np

    rng = np.random.default_rng(0)
    draws = 40_000
    bound = 0.05 + 3 * math.sqrt(0.05 * 0.95 / draws)  # 0.053
    for noise in (rng.standard_normal, lambda size: rng.standard_t(3, size)):
        verdicts = [compare(list(d), [0.0]).verdict for d in noise((draws, n))]
        decided = 1 - verdicts.count("not decided") / draws
        assert decided <= bound, f"no effect, {n} seeds: {decided:.2%} decided"
        assert verdicts.count("higher") / draws <= bound / 2, "one direction alone must stay near 2.5%"
    effect = rng.standard_normal((1000, n)) + 4.0  # four standard deviations of seed noise
    assert np.mean([compare(list(d), [0.0]).decided for d in effect]) > 0.8


def test_compare_refuses_unpaired_values():
    with pytest.raises(ValueError, match="paired"):
        compare([1.0, 2.0], [1.0, 2.0, 3.0])


def test_claim_stops_the_full_budget_and_only_reports_otherwise(monkeypatch, capsys):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.delenv("AECOURSE_RETRAIN", raising=False)
    claim(True, "fine")
    with pytest.raises(ClaimError, match="the AE beats PCA"):
        claim(False, "the AE beats PCA")
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    claim(False, "the AE beats PCA")
    assert "does not support 'the AE beats PCA'" in capsys.readouterr().out
