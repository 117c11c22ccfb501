"""Streamed column sums give the bits of the finished column's own sum: numpy's ``sum`` (what
``Series.sum`` and ``Series.mean`` use) and pandas' ``groupby().mean()``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lastwatt.replica_sums import KahanSums, PairwiseSums


@pytest.mark.parametrize("n", [1, 5, 8, 9, 127, 128, 129, 300, 8760])
def test_pairwise_sums_of_a_stream_equal_numpy_sums_of_the_whole_column(n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, 2, 3)) * rng.uniform(0, 1e5, (n, 2, 3))
    a[rng.uniform(size=a.shape) < 0.2] = 0.0
    acc = PairwiseSums(n, (2, 3))
    for row in a:
        acc.add(row)
    expected = np.array([[np.ascontiguousarray(a[:, i, j]).sum() for j in range(3)]
                         for i in range(2)])
    assert acc.total().tobytes() == expected.tobytes()
    assert acc.total().tobytes() != np.cumsum(a, axis=0)[-1].tobytes() or n < 9


def test_an_all_negative_zero_column_sums_to_positive_zero_as_numpy() -> None:
    acc = PairwiseSums(3, ())
    for _ in range(3):
        acc.add(np.array(-0.0))
    assert np.signbit(acc.total()) == np.signbit(np.full(3, -0.0).sum())


def test_kahan_sums_give_pandas_groupby_means_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    perf = 1.0 + rng.standard_normal((2000, 7)) * 1e-3
    table = pd.DataFrame({"business": np.tile(np.arange(7), 2000), "performance": perf.ravel()})
    expected = table.groupby("business", sort=False)["performance"].mean().to_numpy()
    acc = KahanSums((7,))
    for row in perf:
        acc.add(row)
    assert acc.mean().tobytes() == expected.tobytes()
    assert acc.mean().tobytes() != (perf.sum(axis=0) / 2000).tobytes()
