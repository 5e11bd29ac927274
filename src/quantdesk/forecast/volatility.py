"""Volatility forecasts: HAR on the range-based variance, and GARCH(1,1) through ``arch``.

Both forecast the target's annualised volatility over the next ``h`` sessions (``h`` = 1
for ``vol_1d``, 5 for ``vol_5d``) and are fitted per symbol on the training window only.

:class:`HARVol`
    Corsi's heterogeneous autoregression: ``mean(q[t+1..t+h]) = b0 + bd q[t] + bw
    mean(q[t-4..t]) + bm mean(q[t-21..t])`` on the per-bar variance ``q`` of
    :func:`~quantdesk.forecast.targets.bar_variance` (range-based where open, high and low
    exist), by ordinary least squares (``numpy.linalg.lstsq``).  A negative fitted value is
    floored at the smallest training target.
:class:`GARCHVol`
    GARCH(1,1) with a constant mean and normal errors on the close-to-close log returns
    (in percent), estimated by ``arch``; the conditional variance is then run forward with
    the fitted parameters from the first bar (started at the training sample variance), so
    a forecast as of ``t`` uses returns up to ``t`` only.  The ``h``-session forecast is the
    mean of the ``k``-step forecasts ``v + (a+b)**(k-1) (s[t+1] - v)``, ``v`` the
    unconditional variance.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from quantdesk.forecast.base import ForecastModel, Panels
from quantdesk.forecast.baselines import annualised_vol
from quantdesk.forecast.targets import bar_variance, log_returns, target_horizon

__all__ = ["GARCHVol", "HARVol", "har_design"]

logger = logging.getLogger(__name__)

_HAR_LAGS = (1, 5, 22)


def har_design(variance: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return the HAR regressors: the daily, weekly (5) and monthly (22) mean variance."""
    return {f"rv_{lag}": variance.rolling(lag, min_periods=lag).mean() for lag in _HAR_LAGS}


class HARVol(ForecastModel):
    """HAR-RV volatility forecast, one OLS per symbol (see the module docstring)."""

    name: ClassVar[str] = "har"

    def __init__(self, target: str = "vol_1d", min_obs: int = 250) -> None:
        super().__init__(target)
        self.horizon = target_horizon(target)
        self.min_obs = int(min_obs)
        self.coef_: dict[str, np.ndarray] = {}

    def params(self) -> dict[str, Any]:
        """Return the least training rows per symbol."""
        return {"min_obs": self.min_obs, "lags": list(_HAR_LAGS)}

    def _fit(self, panels: Panels) -> None:
        h = self.horizon
        variance = bar_variance(panels)
        design = har_design(variance)
        target = variance.rolling(h, min_periods=h).mean().shift(-h)
        self.coef_ = {}
        for symbol in variance.columns:
            x = np.column_stack([d[symbol].to_numpy() for d in design.values()])
            y = target[symbol].to_numpy()
            ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
            if ok.sum() < self.min_obs:
                logger.info(
                    "har: %s has %d training rows (< %d): no fit", symbol, ok.sum(), self.min_obs
                )
                continue
            a = np.column_stack([np.ones(ok.sum()), x[ok]])
            beta = np.linalg.lstsq(a, y[ok], rcond=None)[0]
            self.coef_[str(symbol)] = np.append(beta, y[ok].min())

    def predict_many(self, panels: Panels, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return the HAR forecast of the annualised volatility as of each session."""
        self._require_fitted()
        variance = bar_variance(panels)
        design = [d.to_numpy(dtype=np.float64) for d in har_design(variance).values()]
        out = np.full(variance.shape, np.nan)
        for j, symbol in enumerate(variance.columns):
            coef = self.coef_.get(str(symbol))
            if coef is None:
                continue
            x = np.column_stack([d[:, j] for d in design])
            fitted = coef[0] + x @ coef[1:4]
            out[:, j] = np.maximum(fitted, coef[4])
        wide = pd.DataFrame(out, index=variance.index, columns=variance.columns)
        return self._long(annualised_vol(wide, panels), sessions)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        symbols = sorted(self.coef_)
        coef = np.array([self.coef_[s] for s in symbols]).reshape(len(symbols), 5)
        return {"coef": coef}, {"symbols": symbols, "horizon": self.horizon}

    def _load_state(self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
        self.coef_ = dict(zip(state["symbols"], np.asarray(arrays["coef"]), strict=True))


class GARCHVol(ForecastModel):
    """GARCH(1,1) volatility forecast through ``arch``, one fit per symbol."""

    name: ClassVar[str] = "garch"

    def __init__(self, target: str = "vol_1d", min_obs: int = 500) -> None:
        super().__init__(target)
        self.horizon = target_horizon(target)
        self.min_obs = int(min_obs)
        # symbol -> (mu, omega, alpha, beta, start variance), returns in percent
        self.params_: dict[str, np.ndarray] = {}

    def params(self) -> dict[str, Any]:
        """Return the least training returns per symbol."""
        return {"min_obs": self.min_obs, "mean": "constant", "dist": "normal"}

    def _fit(self, panels: Panels) -> None:
        from arch import arch_model

        returns = log_returns(panels["close"]) * 100.0
        self.params_ = {}
        for symbol in returns.columns:
            y = returns[symbol].dropna().to_numpy()
            if len(y) < self.min_obs:
                logger.info("garch: %s has %d returns (< %d): no fit", symbol, len(y), self.min_obs)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1).fit(
                    disp="off", show_warning=False
                )
            p = res.params
            self.params_[str(symbol)] = np.array(
                [p["mu"], p["omega"], p["alpha[1]"], p["beta[1]"], float(np.var(y))]
            )

    def conditional_variance(self, panels: Panels) -> pd.DataFrame:
        """Return the one-step-ahead variance ``s[t+1]`` (percent squared) known at each ``t``.

        Missing returns leave the variance to evolve on its expectation.
        """
        self._require_fitted()
        returns = log_returns(panels["close"]) * 100.0
        out = pd.DataFrame(np.nan, index=returns.index, columns=returns.columns)
        symbols = [s for s in returns.columns if str(s) in self.params_]
        if not symbols:
            return out
        par = np.array([self.params_[str(s)] for s in symbols])
        mu, omega, alpha, beta, start = par.T
        y = returns[symbols].to_numpy()
        sigma2 = start.copy()
        result = np.empty_like(y)
        for t in range(len(y)):
            eps2 = (y[t] - mu) ** 2
            eps2 = np.where(np.isfinite(eps2), eps2, sigma2)
            sigma2 = omega + alpha * eps2 + beta * sigma2
            result[t] = sigma2
        out[symbols] = result
        return out

    def predict_many(self, panels: Panels, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return the GARCH forecast of the annualised volatility as of each session."""
        next_var = self.conditional_variance(panels)
        h = self.horizon
        if h > 1:
            symbols = [s for s in next_var.columns if str(s) in self.params_]
            par = np.array([self.params_[str(s)] for s in symbols]).reshape(len(symbols), 5)
            persistence = par[:, 2] + par[:, 3]
            with np.errstate(divide="ignore", invalid="ignore"):
                uncond = np.where(persistence < 1, par[:, 1] / (1 - persistence), np.nan)
            steps = np.array([persistence**k for k in range(h)]).mean(axis=0)
            s1 = next_var[symbols].to_numpy()
            mean_var = np.where(np.isfinite(uncond), uncond + steps * (s1 - uncond), s1)
            next_var.loc[:, symbols] = mean_var
        # arch works on returns in percent: back to per-bar variance in log-return units.
        return self._long(annualised_vol(next_var / 1e4, panels), sessions)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        symbols = sorted(self.params_)
        arr = np.array([self.params_[s] for s in symbols]).reshape(len(symbols), 5)
        return {"params": arr}, {"symbols": symbols, "horizon": self.horizon}

    def _load_state(self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
        self.params_ = dict(zip(state["symbols"], np.asarray(arrays["params"]), strict=True))
