"""The expected first cross-entropy of random logits: quadrature for large vocabularies."""

import math

import numpy as np
import pytest

from lossdoctor.checks.init_loss import expected_ce


@pytest.mark.parametrize(("k", "scale"), [(50257, 0.5), (50257, 1.0), (5000, 0.5)])
def test_large_vocabulary_quadrature_matches_sampling(k: int, scale: float) -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_normal((400, k)) * scale
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))  # E[CE] = E[lse]: E[z_y] = 0
    se = lse.std() / math.sqrt(len(lse))
    assert expected_ce(k, scale) == pytest.approx(lse.mean(), abs=4 * se + 1e-4)


def test_tiny_logits_give_log_k() -> None:
    assert expected_ce(50257, 1e-3) == pytest.approx(math.log(50257), rel=1e-6)
    assert expected_ce(10, 1e-3) == pytest.approx(math.log(10), rel=1e-3)  # sampled path
