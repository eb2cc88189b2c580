"""PyMC 5 models whose log-probability contains a ``scan``, compiled in
PyTensor's NUMBA mode stock and through numba_loopopt.

Run it from a checkout, with the ``pymc`` extra installed
(``pip install -e ".[pymc]"``)::

    python examples/pymc_scan_model.py               # 100,000 observations
    python examples/pymc_scan_model.py --steps 1000 --repeat 20

Two models, written as PyMC users write them:

* ``garch``: a GARCH(1,1) volatility model.  The conditional variance
  ``sigma2[t] = omega + alpha * r[t-1]**2 + beta * sigma2[t-1]`` is a
  ``pytensor.scan`` over the returns, and the returns are observed
  ``Normal(0, sqrt(sigma2))``: the log-probability runs the scan forward, its
  gradient runs a second scan backward.
* ``ar``: an AR(1) process as a ``pm.CustomDist(..., dist=...)`` whose ``dist``
  builds the series with ``pytensor.scan`` (the pattern of PyMC's time-series
  examples); PyMC derives the log-probability of the scan itself.

For each model, ``model.compile_logp()`` and ``model.compile_dlogp()`` are
compiled with ``mode="NUMBA"``, first stock, then with
``numba_loopopt.pytensor.enable()`` (a PyTensor function keeps the pipeline
it was compiled with, so both live in this process).  The script prints the
values at the model's initial point, which must be bit-identical, the compile
times (``compile_*`` plus the first call) and the call times, and exits
non-zero if any value differs.  PyTensor's disk cache is off, so every compile
is a compile.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings

import numpy as np

MODELS = ("garch", "ar")


def garch_model(steps: int, seed: int = 0):
    """A GARCH(1,1) model of ``steps + 1`` simulated returns."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(seed)
    omega_, alpha_, beta_ = 0.05, 0.1, 0.85
    r = np.empty(steps + 1)
    s2 = omega_ / (1 - alpha_ - beta_)
    for t in range(steps + 1):
        r[t] = rng.normal(0.0, np.sqrt(s2))
        s2 = omega_ + alpha_ * r[t] ** 2 + beta_ * s2

    with pm.Model() as model:
        omega = pm.HalfNormal("omega", 0.2)
        alpha = pm.Beta("alpha", 2.0, 8.0)
        beta = pm.Beta("beta", 8.0, 2.0)
        returns = pt.as_tensor_variable(r, name="returns")

        def step(r_prev, sigma2_prev, omega, alpha, beta):
            return omega + alpha * r_prev**2 + beta * sigma2_prev

        sigma2 = pytensor.scan(step, sequences=[returns[:-1]],
                               outputs_info=[pt.as_tensor_variable(np.var(r))],
                               non_sequences=[omega, alpha, beta], return_updates=False)
        pm.Normal("obs", 0.0, pt.sqrt(sigma2), observed=r[1:])
    return model


def ar_model(steps: int, seed: int = 0):
    """An AR(1) model of ``steps`` observations after one initial value,
    written with ``pm.CustomDist(..., dist=...)`` over a scan."""
    import pymc as pm
    import pytensor
    from pymc.pytensorf import collect_default_updates

    rng = np.random.default_rng(seed)
    x = np.empty(steps + 1)
    x[0] = rng.normal()
    for t in range(1, steps + 1):
        x[t] = 0.7 * x[t - 1] + 0.5 * rng.normal()

    def ar_dist(x0, rho, sigma, size):
        def ar_step(x_prev, rho, sigma):
            x_next = pm.Normal.dist(mu=rho * x_prev, sigma=sigma)
            return x_next, collect_default_updates([x_next])

        with warnings.catch_warnings():  # the (outputs, updates) return is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            xs, _ = pytensor.scan(ar_step, outputs_info=[x0], non_sequences=[rho, sigma],
                                  n_steps=steps, strict=True)
        return xs

    with pm.Model() as model:
        x0 = pm.Normal("x0", 0.0, 1.0, observed=x[0])
        rho = pm.Uniform("rho", -1.0, 1.0)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.CustomDist("x", x0, rho, sigma, dist=ar_dist, observed=x[1:])
    return model


BUILDERS = {"garch": garch_model, "ar": ar_model}


def _best(fn, point, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(point)
        best = min(best, time.perf_counter() - t0)
    return best


def compile_and_run(model, repeat: int = 5) -> dict:
    """``compile_logp`` and ``compile_dlogp`` in NUMBA mode under the current
    integration state: values at the initial point, compile and call times,
    and how many of the numba functions behind each compiled through the
    passes."""
    import pytensor

    import numba_loopopt.pytensor as integration
    from numba_loopopt.dispatcher import LoopOptDispatcher

    point = model.initial_point()
    out = {}
    with pytensor.config.change_flags(numba__cache=False), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, compile_ in (("logp", model.compile_logp), ("dlogp", model.compile_dlogp)):
            t0 = time.perf_counter()
            fn = compile_(mode="NUMBA")
            value = np.asarray(fn(point))
            compile_s = time.perf_counter() - t0
            disps = integration.dispatchers(fn.f)
            out[name] = {
                "value": value, "compile_s": compile_s, "call_s": _best(fn, point, repeat),
                "dispatchers": len(disps),
                "through_loopopt": sum(isinstance(d, LoopOptDispatcher) for d in disps),
            }
    return out


def _warm_up() -> None:
    """Compile a small scan stock and enabled, so that the first model's
    compile times do not include numba's and the passes' one-time set-up."""
    import pytensor
    import pytensor.tensor as pt

    import numba_loopopt.pytensor as integration

    x0 = pt.dscalar("x0")
    xs = pytensor.scan(lambda x: x * 0.5 + 1.0, outputs_info=[x0], n_steps=3,
                       return_updates=False)
    with pytensor.config.change_flags(numba__cache=False):
        for on in (False, True):
            with integration.enabled() if on else contextlib.nullcontext():
                pytensor.function([x0], xs[-1], mode="NUMBA")(1.0)


_WARM = []


def compare(name: str, steps: int, repeat: int = 5, seed: int = 0) -> dict:
    """Build model ``name``, compile it stock and then enabled; returns both
    runs' results and whether the values are bit-identical."""
    import numba_loopopt.pytensor as integration

    model = BUILDERS[name](steps, seed)
    was = integration.active_options()
    integration.disable()
    try:
        if not _WARM:
            _warm_up()
            _WARM.append(True)
        stock = compile_and_run(model, repeat)
        with integration.enabled():
            ours = compile_and_run(model, repeat)
    finally:
        if was is not None:
            integration.enable(was)
    identical = {k: stock[k]["value"].dtype == ours[k]["value"].dtype
                 and stock[k]["value"].tobytes() == ours[k]["value"].tobytes()
                 for k in stock}
    return {"stock": stock, "loopopt": ours, "identical": identical}


def _fmt(value: np.ndarray) -> str:
    return np.array2string(value, precision=17, floatmode="unique", separator=", ")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="scan length")
    parser.add_argument("--repeat", type=int, default=5,
                        help="calls timed per function (the best is shown)")
    parser.add_argument("--model", choices=MODELS, action="append",
                        help="the model(s) to run (default: both)")
    args = parser.parse_args(argv)
    import numba
    import pymc
    import pytensor

    print(f"pymc {pymc.__version__}, pytensor {pytensor.__version__}, "
          f"numba {numba.__version__}; {args.steps} steps, best of {args.repeat} calls")
    ok = True
    for name in args.model or MODELS:
        res = compare(name, args.steps, args.repeat)
        print(f"\n{name}:")
        for fn in ("logp", "dlogp"):
            s, o = res["stock"][fn], res["loopopt"][fn]
            print(f"  {fn:5s} stock   {_fmt(s['value'])}")
            print(f"  {fn:5s} loopopt {_fmt(o['value'])}  identical: {res['identical'][fn]}")
            print(f"  {fn:5s} call    stock {s['call_s'] * 1e3:9.3f} ms, loopopt "
                  f"{o['call_s'] * 1e3:9.3f} ms: {s['call_s'] / o['call_s']:.2f}x")
            print(f"  {fn:5s} compile stock {s['compile_s']:6.2f} s,  loopopt "
                  f"{o['compile_s']:6.2f} s ({o['through_loopopt']} of "
                  f"{o['dispatchers']} numba functions through the passes)")
        ok &= all(res["identical"].values())
    print("\nall values identical" if ok else "\nVALUES DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
