"""aecourse.evidence.appendix_verdicts: the simulation of the book's verdict rule, checked against what the rule is
built to do (no effect: at most 5% decided; a large effect: mostly decided) and against a hand count."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aecourse.evidence import appendix_verdicts as av
from aecourse.evidence.report import ClaimError, t_critical


def test_share_decided_counts_the_rows_the_rule_decides():
    rows = np.array(
        [
            [1.0, 1.1, 0.9],  # tight, one side: decided
            [1.0, -1.0, 0.5],  # both signs: never decided
            [0.12, 0.03, 0.11],  # one side, but t = 3.0 < 4.3: not decided
            [0.0, 0.0, 0.0],  # no difference at all
        ]
    )
    assert av.share_decided(rows) == 0.25


def test_share_decided_matches_the_t_test_where_every_row_is_on_one_side():
    """With three seeds a t-test beyond the bound implies one side, so the rule is the two-sided t-test."""
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((400, 3)) + 1.5
    t = rows.mean(1) / (rows.std(1, ddof=1) / np.sqrt(3))
    by_scipy = stats.ttest_1samp(rows, 0.0, axis=1).pvalue < 0.05
    assert np.array_equal(np.abs(t) > t_critical(3), by_scipy)
    assert av.share_decided(rows) == pytest.approx(by_scipy.mean())


def test_simulation_se_is_the_binomial_standard_error():
    assert av.simulation_se(0.05, 20_000) == pytest.approx(0.0015411, rel=1e-4)
    assert av.simulation_se(0.5, 100) == pytest.approx(0.05)


def test_simulate_rule_keeps_the_false_positive_rate_and_decides_a_large_effect(capsys):
    shown = repr(av.simulate_rule(draws=2_000))
    lines = shown.splitlines()
    assert len(lines) == 5 and "Student's t, 3 degrees of freedom" in shown and "4 sd" in shown and "1 sd" in shown
    glued = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert glued["rule_draws"] == "2,000" and glued["rule_fpr_se"] == "0.49%"
    assert float(glued["rule_fpr_normal"].rstrip("%")) <= 6.5 and float(glued["rule_power"].rstrip("%")) > 90


def test_a_claim_fails_when_its_comparison_stops_holding(monkeypatch):
    monkeypatch.setenv("AECOURSE_BUDGET", "full")
    with pytest.raises(ClaimError, match="4 sd effect"):
        av.simulate_rule(draws=500, effect=0.0)  # no effect where the page says four sd
    with pytest.raises(ClaimError, match="1 sd effect"):
        av.simulate_rule(draws=500, effect=8.0, small=4.0)  # a large effect where the page says a small one
