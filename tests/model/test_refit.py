"""The refit after early stopping: on a small log the booster is refit on train + valid
with the rounds early stopping chose; above ``REFIT_MAX_ROWS`` training rows the
early-stopped booster is kept, read only up to those rounds."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from nba.policy import booster as booster_module
from nba.policy.booster import booster_params, fit_booster
from nba.policy.design import MODEL_COLUMNS


def _slices(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3 * n, len(MODEL_COLUMNS)))
    for c in ("ctx_channel", "ctx_reason", "ctx_action", "ctx_family"):
        x[:, MODEL_COLUMNS.index(c)] = rng.integers(0, 3, size=3 * n)
    y = (x[:, 0] + rng.normal(size=3 * n) > 0.5).astype(float)
    return x[:n], y[:n], x[n : 2 * n], y[n : 2 * n], x[2 * n :], y[2 * n :]


@pytest.mark.parametrize("limit", [10**9, 0], ids=["refit", "kept"])
def test_the_refit_follows_the_log_s_size(limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(booster_module, "REFIT_MAX_ROWS", limit)
    fits: list[int] = []  # the rows of every LightGBM fit
    train = lgb.train

    def counted(params: dict[str, Any], data: lgb.Dataset, **kw: Any) -> lgb.Booster:
        fits.append(len(data.get_label()) if data.get_label() is not None else -1)
        return train(params, data, **kw)

    monkeypatch.setattr(booster_module.lgb, "train", counted)
    slices = _slices(3000, 4)
    params = booster_params("binary", 0.1, 7, 20, 1, 1)
    model = fit_booster(params, slices, n_estimators=400, early_stopping_rounds=10, refit=True)
    assert model is not None
    # Early stopping on train; then, on a small log only, a refit on train + valid.
    assert fits == ([3000, 6000] if limit else [3000])
    assert model.booster.num_trees() == model.rounds
    x = slices[4][:200]
    raw = model.booster.predict(x, raw_score=True, num_iteration=model.rounds)
    np.testing.assert_allclose(model.forest().raw(x), raw, rtol=0, atol=1e-9)
