"""aecourse.evidence.report: tables, mean ± sd over seeds, the 'not decided' rule, claims that guard sentences, and the
chapter 4 verdicts computed from measurements."""

from __future__ import annotations

import math
import re

import pytest
import torch

from aecourse.evidence.report import (
    ClaimError,
    claim,
    compare,
    comparison_rows,
    glue,
    glued_text,
    mean_sd,
    pm,
    round_outward,
    says,
    table,
)
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
    assert pm([1.0, 2.0, 3.0]) == "2.0 ± 1.0" and pm([5.0], ".1f") == "5.0"
    with pytest.raises(ValueError):
        mean_sd([])


@pytest.mark.parametrize(
    ("values", "spec", "shown"),
    [
        ([0.0150, 0.01502, 0.01498], ".4f", "0.015000 ± 0.000020"),  # was "0.0150 ± 0.0000"
        ([20.4, 20.5, 20.6], ".2f", "20.50 ± 0.10"),  # sd begins with 1: two significant digits
        ([20.0, 20.5, 21.0], ".2f", "20.5 ± 0.5"),  # else one
        ([0.40, 0.42, 0.45], ".3g", "0.423 ± 0.025"),  # was "0.423 ± 0.0252"
        ([300.0, 500.0, 740.0], ".1f", "513 ± 220"),  # no decimals for a spread in the hundreds
        ([10.0, 10.0, 10.0], ".1f", "10.0 ± 0"),  # seeds that agree exactly: spec's decimals, and "± 0"
        ([0.00789], ".3f", "0.008"),  # one seed: spec
        ([0.00789], ".3g", "0.00789"),
    ],
)
def test_pm_shows_the_digits_the_spread_supports(values, spec, shown):
    assert pm(values, spec) == shown and f"{pm(values, spec)}" == shown
    assert not re.search(r"± 0\.0+\b", pm(values, spec))


def test_a_comparison_shows_the_digits_its_spread_supports():
    assert str(compare([20.4, 20.5, 20.6], [15.9])) == "+4.60 ± 0.10 over 3 seeds: higher"
    assert str(compare([1.0], [0.5])) == "+0.500 over 1 seed: not decided"


def test_a_table_column_shares_one_number_of_decimals_and_a_spread_keeps_its_own():
    rows = [
        {"model": "a", "test loss": 0.007894, "PSNR": pm([20.4, 20.5, 20.6]), "count": 3},
        {"model": "b", "test loss": 0.008, "PSNR": pm([15.0, 15.5, 16.0]), "count": 4},
        {"model": "c", "test loss": 45.0, "PSNR": 15.93, "count": 5},
    ]
    lines = repr(table(rows, formats={"test loss": ".4g", "PSNR": ".2f"})).splitlines()
    assert [line.split()[1] for line in lines[1:]] == ["0.007894", "0.008000", "45.000000"]
    assert [" ".join(line.split()[2:-1]) for line in lines[1:]] == ["20.50 ± 0.10", "15.5 ± 0.5", "15.93"]
    spreads = repr(table([{"FD": pm([320.0, 335.0, 350.0])}, {"FD": pm([66.6, 68.6, 70.6])}])).splitlines()
    assert [line.strip() for line in spreads[1:]] == ["335 ± 15", "68.6 ± 2.0"]
    assert [line.split()[-1] for line in lines[1:]] == ["3", "4", "5"]  # integers stay integers
    fixed = repr(table([{"x": 1.5}, {"x": 12.25}], formats={"x": ".1f"})).splitlines()
    assert [line.strip() for line in fixed[1:]] == ["1.5", "12.2"]
    grouped = repr(table([{"n": 1234567.0}], formats={"n": ","})).splitlines()
    assert grouped[1].strip() == "1,234,567.0"  # a spec without decimals is left as it is


def test_a_table_leaves_out_a_column_with_no_value():
    t = table([{"model": "a", "test loss": math.nan, "note": ""}, {"model": "b", "test loss": math.nan}])
    assert repr(t).splitlines()[0].split() == ["model"] and "test loss" not in t._repr_html_()
    kept = table([{"model": "a", "loss": math.nan}, {"model": "b", "loss": 1.0}], formats={"loss": ".2f"})
    assert repr(kept).splitlines()[1].split() == ["a", "–"]


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


@pytest.mark.parametrize(
    ("a", "b", "sentence"),
    [
        ([2.0, 2.1, 1.9], [1.0, 1.1, 1.0], "A is higher than B."),
        ([1.1, 1.5, 1.9], [1.0], "A is higher than B on every seed, but not clearly enough to tell them apart."),
        ([2.0, 2.0, 0.9], [1.0], "A and B are not told apart."),
        ([2.0], [1.0], "A and B are not told apart."),
    ],
)
def test_says_writes_the_verdict_as_a_sentence_and_names_signs_that_agree(a, b, sentence):
    """A not-decided comparison whose seeds all point one way says so, so that the reader is not left to wonder."""
    assert says(compare(a, b), "A", "B") == sentence


def test_says_names_rounds_where_the_pairs_are_rounds():
    sentence = says(compare([1.1, 1.5, 1.9], [1.0]), "A", "B", higher="longer", unit="round")
    assert sentence == "A is longer than B on every round, but not clearly enough to tell them apart."


def test_the_evidence_of_a_verdict_is_a_table_row_and_renders_as_markdown():
    rows = comparison_rows({"A - B": compare([2.0, 2.1, 1.9], [1.0, 1.1, 1.0]), "C - D": compare([1.0, 2.0], [1.5])})
    assert rows[0] == {
        "comparison": "A - B",
        "difference (mean ± sd)": "+0.967 ± 0.058",
        "pairs": "3 seeds",
        "verdict": "decided: higher",
    }
    assert rows[1]["verdict"] == "not decided" and rows[1]["pairs"] == "2 seeds"
    lines = table(rows).markdown().splitlines()
    assert (
        lines[0] == "| comparison | difference (mean ± sd) | pairs | verdict |"
        and lines[1] == "| --- | --- | --- | --- |"
    )
    assert lines[2] == "| A - B | +0.967 ± 0.058 | 3 seeds | decided: higher |"


def test_glue_stores_the_text_a_reader_reads(capsys):
    assert glued_text(0.4814790346918773, ".2f") == "0.48" and glued_text(12) == "12" and glued_text("a b") == "a b"
    assert glued_text(1234.5, ",.0f") == "1,234"
    with pytest.raises(TypeError, match="needs the format the page shows it in"):
        glued_text(0.5)
    with pytest.raises(TypeError, match="needs the format"):
        glued_text(torch.tensor(0.5, dtype=torch.float32))
    glue("late_slope", 0.48147903, ".1f")  # outside a kernel: printed, as a notebook's output would show it
    assert capsys.readouterr().out == "late_slope: 0.5\n"


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


def test_round_outward_keeps_a_bound_true():
    assert round_outward(10.91, 0, up=False) == 10 and round_outward(0.9576, 2, up=False) == 0.95
    assert round_outward(1.0144, 2, up=True) == 1.02 and round_outward(0.00195, 4, up=True) == 0.002
    assert math.isnan(round_outward(float("nan"), 2, up=True))
