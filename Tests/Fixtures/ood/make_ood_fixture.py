#!/usr/bin/env python3
"""The out-of-distribution guard's reference numbers, computed by numpy, scipy and scikit-learn.

Writes train.csv, test.csv and expected.json beside this file:
- 400 training rows of 6 correlated Gaussian features, 15% of the values missing at random;
- 60 test rows: 40 from the same distribution (same missingness), 20 shifted by 4 to 6 standard
  deviations along two features, and one row with nothing observed;
- expected.json: the per-feature means and population sds of the observed values, the shrinkage
  and the lower Cholesky factor of sklearn.covariance.ledoit_wolf(Z, assume_centered=True) on the
  standardised values (0 where missing), each test row's Mahalanobis distance squared over its
  observed features divided by their count (scipy.linalg.cho_factor/cho_solve on the observed
  block), and numpy.quantile(training scores, 0.995).
Pinned versions: Tests/Fixtures/requirements.txt (numpy 2.4.6, scikit-learn 1.7.2) and scipy 1.17.1.
Run from the repository root: python3 Tests/Fixtures/ood/make_ood_fixture.py
"""
import json
from pathlib import Path

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from sklearn.covariance import ledoit_wolf

OUT = Path(__file__).resolve().parent
NAMES = ["a", "b", "c", "d", "e", "f"]
rng = np.random.default_rng(20261204)
A = rng.normal(size=(6, 6))
cov = A @ A.T + np.eye(6)
mean = np.array([1.0, -2.0, 0.5, 10.0, 3.0, -0.25])
train = rng.multivariate_normal(mean, cov, size=400)
train[rng.random(train.shape) < 0.15] = np.nan
test = rng.multivariate_normal(mean, cov, size=60)
test[:40][rng.random((40, 6)) < 0.15] = np.nan
sd = np.sqrt(np.diag(cov))
test[40:, 0] += 6 * sd[0]
test[40:, 3] -= 4 * sd[3]
test[59, :] = np.nan

mu = np.nanmean(train, axis=0)
scale = np.nanstd(train, axis=0)          # population sd (ddof 0)
Z = np.where(np.isnan(train), 0.0, (train - mu) / scale)
sigma, shrinkage = ledoit_wolf(Z, assume_centered=True)
L = np.linalg.cholesky(sigma)


def score(x):
    o = ~np.isnan(x)
    if not o.any():
        return None
    z = (x[o] - mu[o]) / scale[o]
    c = cho_factor(sigma[np.ix_(o, o)], lower=True)
    return float(z @ cho_solve(c, z)) / int(o.sum())


train_scores = [s for s in (score(x) for x in train) if s is not None]
threshold = float(np.quantile(train_scores, 0.995))


def write(path, rows):
    with open(path, "w") as f:
        f.write("id," + ",".join(NAMES) + "\n")
        for i, r in enumerate(rows):
            f.write(f"{i}," + ",".join("" if np.isnan(v) else repr(float(v)) for v in r) + "\n")


write(OUT / "train.csv", train)
write(OUT / "test.csv", test)
json.dump({"mean": mu.tolist(), "scale": scale.tolist(), "shrinkage": float(shrinkage),
           "cholesky": [L[i, :i + 1].tolist() for i in range(6)], "threshold": threshold, "quantile": 0.995,
           "test_scores": [score(x) for x in test]}, open(OUT / "expected.json", "w"), indent=1)
flagged = sum(1 for s in (score(x) for x in test) if s is not None and s > threshold)
print(f"shrinkage {shrinkage:.6f}, threshold {threshold:.6f}, {flagged} of 60 test rows above it")
