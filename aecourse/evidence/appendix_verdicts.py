"""The evidence of the appendix "How the book decides a comparison" (book/appendix_verdicts.ipynb): the book's
verdict rule (`report.compare`) run on synthetic seeds, where the truth is known, to measure how often it decides
when there is no effect and when there is one."""

from __future__ import annotations

import numpy as np

from aecourse.evidence.report import ALPHA, Table, claim, compare, glue, table

DRAWS = 20_000  # sets of three seeds per simulation: a share to within about 0.15% (one standard error)
EFFECT = 4.0  # a large effect, in standard deviations of the seed noise: the rule should decide it
SMALL_EFFECT = 1.0  # a real but small one, which three seeds should mostly leave undecided


def share_decided(differences: np.ndarray) -> float:
    """The share of rows of `differences` (each row one comparison's paired differences, one per seed) that the
    book's rule calls decided against "no difference"."""
    return float(np.mean([compare(list(row), [0.0]).decided for row in differences]))


def simulation_se(share: float, draws: int) -> float:
    """The standard error of a share measured on `draws` independent comparisons (a binomial proportion)."""
    return (share * (1 - share) / draws) ** 0.5


def simulate_rule(
    draws: int = DRAWS, seeds: int = 3, effect: float = EFFECT, small: float = SMALL_EFFECT, rng_seed: int = 0
) -> Table:
    """Run the rule on `draws` synthetic comparisons of `seeds` paired differences each: no effect with normal
    noise, no effect with heavy-tailed noise (Student's t, 3 degrees of freedom), and effects of `effect` and `small`
    standard deviations with normal noise. Glues the shares the page quotes and claims what it says of them: the
    first two within 5% plus 3 simulation standard errors, the large effect decided in most draws, the small one
    in few. Returns their table."""
    rng = np.random.default_rng(rng_seed)  # the draws in this order: the stored page's numbers
    no_effect = share_decided(rng.standard_normal((draws, seeds)))
    heavy_tailed = share_decided(rng.standard_t(3, (draws, seeds)))
    large = share_decided(rng.standard_normal((draws, seeds)) + effect)
    small_share = share_decided(rng.standard_normal((draws, seeds)) + small)
    se = simulation_se(ALPHA, draws)  # the shares' standard error if the rule decides exactly 5%
    bound = ALPHA + 3 * se
    claim(
        no_effect <= bound and heavy_tailed <= bound,
        "the rule decides about 5% or fewer of no-effect comparisons "
        "(within 3 simulation standard errors), normal or heavy-tailed",
    )
    # Bars: 91% and 17% in the stored run, less or plus 3 simulation standard errors (under 0.3% each), rounded
    # away from the stored shares.
    claim(large > 0.9, "the rule decides most comparisons with a 4 sd effect")
    claim(small_share < 0.2, "the rule decides fewer than one in five comparisons with a 1 sd effect")
    glue("rule_draws", f"{draws:,}")
    glue("rule_fpr_normal", no_effect, ".1%")
    glue("rule_fpr_heavy", heavy_tailed, ".1%")
    glue("rule_power", large, ".0%")
    glue("rule_power_small", small_share, ".0%")
    glue("rule_fpr_se", se, ".2%")
    glue("rule_fpr_bound", bound, ".1%")
    allowed = f"at most {bound:.1%}"

    def row(noise: str, true_effect: float, share: float, spec: str, limit: str) -> dict[str, str]:
        shown = f"{true_effect:g} sd" if true_effect else "none"
        return {"seed noise": noise, "true effect": shown, "share decided": f"{share:{spec}}", "allowed": limit}

    return table(
        [
            row("normal", 0.0, no_effect, ".1%", allowed),
            row("Student's t, 3 degrees of freedom", 0.0, heavy_tailed, ".1%", allowed),
            row("normal", effect, large, ".0%", ""),
            row("normal", small, small_share, ".0%", ""),
        ]
    )
