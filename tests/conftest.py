"""Shared fixtures and helpers for the bayestune test suite."""

from __future__ import annotations

import os

# One BLAS thread per process keeps timings and numerics stable on small CI machines. This
# must happen before numpy is first imported, or OpenBLAS has already started its threads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

# numpy may already be imported (pytest imports bayestune to resolve the warning filters),
# so also cap the running thread pools.
threadpool_limits(1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


class FixedPosterior:
    """A posterior with a known mean/variance function, for analytic acquisition tests.

    ``mu(x) = a . x + b``, ``var(x) = c + |x|^2``; gradients are exact.
    """

    def __init__(self, a, b, c, X_train, z_train, noise=None):
        self.a, self.b, self.c = np.asarray(a, float), float(b), float(c)
        self.X_train = np.asarray(X_train, float)
        self.z_train = np.asarray(z_train, float)
        self.noise_train = np.zeros(len(z_train)) if noise is None else np.asarray(noise)

    def predict(self, X):
        X = np.atleast_2d(X)
        return X @ self.a + self.b, self.c + np.sum(X**2, axis=1)

    def predict_with_grad(self, X):
        X = np.atleast_2d(X)
        mu, var = self.predict(X)
        return mu, var, np.tile(self.a, (len(X), 1)), 2 * X

    def joint(self, X):
        mu, var = self.predict(X)
        return mu, np.diag(var)


@pytest.fixture
def fixed_posterior():
    return FixedPosterior


@pytest.fixture(scope="module")
def lep_dir():
    """The shared LEP reference folder (the test is skipped without it)."""
    from bayestune.hep import find_data_dir

    try:
        return find_data_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"LEP reference data not available: {exc}")
