"""Tests that catch real bugs: each one kills a mutant that survived the rest of the suite.

A hand-made mutation run (issue 22, item 9) found bugs nothing noticed: the step-size schedule
shifted by one epoch, L-BFGS's tolerance scaled tenfold, an L-BFGS iteration that returns its
start, ``classes_`` sorted as strings, the binary ``coef_`` with its sign flipped, signal handlers
left installed after the CLI trains, and ``partial_fit`` ignoring ``sample_weight``. Each test
states the behaviour through the public API and computes the expectation independently, with
:func:`softmax_xp.loss_and_grads` on the host.
"""

from __future__ import annotations

import signal
import warnings

import numpy as np
import pytest

from softmax_xp import SoftmaxXP, loss_and_grads, to_numpy


def tiny(n: int = 12, d: int = 4, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small problem with every class present."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    rng.shuffle(y)
    return rng.normal(size=(n, d)) + y[:, None], y


def separable(labels: np.ndarray, n: int = 60, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Well separated clusters, one per label, along the first feature."""
    rng = np.random.default_rng(seed)
    codes = np.arange(n) % len(labels)
    X = rng.normal(scale=0.3, size=(n, 3))
    X[:, 0] += 4.0 * codes
    X -= X.mean(axis=0)
    return X, labels[codes]


def host_objective(X, y, W, b, reg, sample_weight=None):
    """``(loss, dW, db)`` of the training objective, in float64 NumPy."""
    loss, dW, db = loss_and_grads(X, y, W, b, reg, sample_weight=sample_weight)
    return float(loss), np.asarray(dW), np.asarray(db)


def model_on(backend, d, k, **kwargs) -> SoftmaxXP:
    return SoftmaxXP(d, k, backend=backend.name, device=backend.device, dtype="float64", **kwargs)


# -- 1. the step-size schedule: epoch e steps with lr * lr_decay ** (e - 1) ---------------------
def full_batch_sgd(X, y, W, b, *, epochs, lr, lr_decay, momentum, reg):
    """The textbook schedule, one full-batch step per epoch: (W, b) and the loss of each epoch."""
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    losses = []
    for epoch in range(1, epochs + 1):
        step = lr * lr_decay ** (epoch - 1)
        loss, dW, db = host_objective(X, y, W, b, reg)
        vW, vb = momentum * vW - step * dW, momentum * vb - step * db
        W, b = W + vW, b + vb
        losses.append(loss)
    return W, b, losses


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_epochs_one_and_two_step_with_lr_then_lr_times_decay(backend, momentum):
    X, y = tiny()
    settings = dict(lr=0.5, lr_decay=0.25, momentum=momentum, reg=1e-2)
    start = model_on(backend, 4, 3, seed=3, **settings)
    W0, b0 = to_numpy(start.W), to_numpy(start.b)
    for epochs in (1, 2):
        model = model_on(backend, 4, 3, seed=3, **settings)
        history = model.train(X, y, epochs=epochs, batch_size=len(y), verbose=0)
        W, b, losses = full_batch_sgd(X, y, W0, b0, epochs=epochs, **settings)
        np.testing.assert_allclose(to_numpy(model.W), W, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_numpy(model.b), b, rtol=1e-10, atol=1e-12)
        assert model.epoch_ == epochs
        # one batch per epoch: the epoch's loss is the objective at the epoch's starting weights
        np.testing.assert_allclose(history.loss, losses, rtol=1e-10)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_partial_fit_calls_follow_the_schedule(backend, momentum):
    """Each partial_fit call is the next epoch: the 1st steps with lr, the 2nd with lr * decay."""
    pytest.importorskip("sklearn")
    from softmax_xp import SoftmaxClassifier

    X, y = tiny()
    settings = dict(lr=0.5, lr_decay=0.25, momentum=momentum, reg=1e-2)
    W0, b0 = np.zeros((4, 3)), np.zeros((1, 3))  # the estimator starts from zeros
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, dtype="float64",
                            batch_size=len(y), random_state=5, **settings)  # fmt: skip
    for calls in (1, 2):
        clf.partial_fit(X, y, classes=[0, 1, 2])
        W, b, losses = full_batch_sgd(X, y, W0, b0, epochs=calls, **settings)
        np.testing.assert_allclose(clf.coef_, W.T, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(clf.intercept_, b[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(clf.loss_curve_, losses, rtol=1e-10)


# -- 2, 3. L-BFGS: its stopping rule and its first iteration ------------------------------------
def lbfgs_problem() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, size=90)
    X = rng.normal(scale=1.5, size=(3, 5))[y] + rng.normal(size=(90, 5))
    return X, y


def max_abs_gradient(X, y, model: SoftmaxXP, reg: float) -> float:
    _, dW, db = host_objective(X, y, to_numpy(model.W), to_numpy(model.b), reg)
    return max(np.abs(dW).max(), np.abs(db).max())


@pytest.mark.parametrize("tol", [1e-2, 1e-3, 1e-4])
def test_lbfgs_stops_once_the_largest_gradient_entry_is_at_most_tol(backend, tol):
    pytest.importorskip("scipy")
    X, y = lbfgs_problem()
    reg = 1e-2
    model = model_on(backend, 5, 3, seed=0, reg=reg)
    start = max_abs_gradient(X, y, model, reg)
    model.train(X, y, epochs=500, solver="lbfgs", tol=tol, verbose=0)
    assert 0 < model.epoch_ < 500  # stopped by the rule, not by the iteration limit
    assert max_abs_gradient(X, y, model, reg) <= tol < start


def test_lbfgs_tol_against_the_starting_gradient(backend):
    """A tol above the start's largest gradient entry stops at once; one a fifth of it does not."""
    pytest.importorskip("scipy")
    X, y = lbfgs_problem()
    reg = 1e-2
    at_start = max_abs_gradient(X, y, model_on(backend, 5, 3, seed=0, reg=reg), reg)

    satisfied = model_on(backend, 5, 3, seed=0, reg=reg)
    W0 = to_numpy(satisfied.W)
    satisfied.train(X, y, epochs=50, solver="lbfgs", tol=1.01 * at_start, verbose=0)
    assert satisfied.epoch_ == 0 and len(satisfied.history_) == 0
    np.testing.assert_array_equal(to_numpy(satisfied.W), W0)

    unsatisfied = model_on(backend, 5, 3, seed=0, reg=reg)
    unsatisfied.train(X, y, epochs=50, solver="lbfgs", tol=0.2 * at_start, verbose=0)
    assert unsatisfied.epoch_ >= 1
    assert max_abs_gradient(X, y, unsatisfied, reg) <= 0.2 * at_start


def test_one_lbfgs_iteration_moves_the_weights_and_lowers_the_objective(backend):
    pytest.importorskip("scipy")
    X, y = lbfgs_problem()
    reg = 1e-2
    model = model_on(backend, 5, 3, seed=0, reg=reg)
    W0, b0 = to_numpy(model.W), to_numpy(model.b)
    history = model.train(X, y, epochs=1, solver="lbfgs", tol=1e-12, verbose=0)
    W1, b1 = to_numpy(model.W), to_numpy(model.b)
    assert model.epoch_ == 1 and len(history.loss) == 1
    assert np.abs(W1 - W0).max() > 1e-3
    before, _, _ = host_objective(X, y, W0, b0, reg)
    after, _, _ = host_objective(X, y, W1, b1, reg)
    assert after < before - 1e-3
    # the history records the objective at the accepted iterate
    np.testing.assert_allclose(history.loss[0], after, rtol=1e-10)


# -- 4, 5, 7. SoftmaxClassifier: classes_ order, the binary coef_, sample_weight -----------------
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_integer_classes_are_sorted_by_value(backend, solver):
    pytest.importorskip("sklearn")
    from softmax_xp import SoftmaxClassifier

    labels = np.array([2, 10, 1])
    X, y = separable(labels)
    kwargs = dict(backend=backend.name, device=backend.device, dtype="float64", batch_size=10,
                  random_state=0)  # fmt: skip
    fitted = SoftmaxClassifier(solver=solver, max_iter=50, **kwargs).fit(X, y)
    streamed = SoftmaxClassifier(max_iter=1, **kwargs)
    for _ in range(20):
        streamed.partial_fit(X, y, classes=labels)
    for clf in (fitted, streamed):
        np.testing.assert_array_equal(clf.classes_, [1, 2, 10])
        assert clf.classes_.dtype == labels.dtype
        predicted = clf.predict(X)
        np.testing.assert_array_equal(predicted, y)
        # the columns of predict_proba and decision_function follow classes_
        proba = clf.predict_proba(X)
        np.testing.assert_array_equal(clf.classes_[np.argmax(proba, axis=1)], y)
        np.testing.assert_array_equal(clf.classes_[np.argmax(clf.decision_function(X), axis=1)], y)
        assert clf.score(X, y) == 1.0


@pytest.mark.parametrize("labels", [np.array([7, 3]), np.array(["spam", "ham"])], ids=str)
def test_binary_coef_gives_the_log_odds_of_the_second_class(backend, labels):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    from softmax_xp import SoftmaxClassifier

    X, y = separable(labels, n=80)
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, dtype="float64",
                            solver="lbfgs", reg=1e-2, random_state=0).fit(X, y)  # fmt: skip
    assert clf.coef_.shape == (1, 3) and clf.intercept_.shape == (1,)
    scores = X @ clf.coef_[0] + clf.intercept_[0]
    np.testing.assert_allclose(scores, clf.decision_function(X), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(
        clf.predict(X), np.where(scores > 0, clf.classes_[1], clf.classes_[0])
    )
    # and the log-odds of classes_[1] are softmax's: log(p_1 / p_0)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(scores, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-8, atol=1e-8)
    reference = LogisticRegression().fit(X, y)
    np.testing.assert_array_equal(reference.classes_, clf.classes_)
    assert np.sign(clf.coef_[0, 0]) == np.sign(reference.coef_[0, 0]) != 0
    assert clf.coef_[0] @ reference.coef_[0] > 0


def test_zero_sample_weight_drops_rows_in_partial_fit_and_fit(backend):
    """With one batch per epoch, rows of weight 0 are rows left out, SGD step for SGD step."""
    pytest.importorskip("sklearn")
    from softmax_xp import SoftmaxClassifier

    X, y = tiny(n=30)
    weight = np.ones(30)
    weight[[1, 4, 5, 17, 26]] = 0.0
    keep = weight > 0
    kwargs = dict(backend=backend.name, device=backend.device, dtype="float64", lr=0.5,
                  reg=1e-2, lr_decay=0.5, batch_size=64, random_state=0)  # fmt: skip

    weighted = SoftmaxClassifier(**kwargs)
    dropped = SoftmaxClassifier(**kwargs)
    for _ in range(2):
        weighted.partial_fit(X, y, classes=[0, 1, 2], sample_weight=weight)
        dropped.partial_fit(X[keep], y[keep], classes=[0, 1, 2])
        np.testing.assert_allclose(weighted.coef_, dropped.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(weighted.loss_curve_, dropped.loss_curve_, rtol=1e-10)
    unweighted = SoftmaxClassifier(**kwargs).partial_fit(X, y, classes=[0, 1, 2])
    unweighted.partial_fit(X, y)
    assert np.abs(unweighted.coef_ - weighted.coef_).max() > 1e-3  # the weights matter

    fit_weighted = SoftmaxClassifier(max_iter=3, **kwargs).fit(X, y, sample_weight=weight)
    fit_dropped = SoftmaxClassifier(max_iter=3, **kwargs).fit(X[keep], y[keep])
    np.testing.assert_allclose(fit_weighted.coef_, fit_dropped.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fit_weighted.loss_curve_, fit_dropped.loss_curve_, rtol=1e-10)


# -- 6. the CLI gives the signal handlers back ---------------------------------------------------
SIGNALS = [
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
]


def test_cli_train_restores_the_signal_handlers(tmp_path, capsys):
    from softmax_xp.cli import main

    def ours(signum, frame):  # pragma: no cover - never called
        raise AssertionError("not to be called")

    before = {signum: signal.getsignal(signum) for signum in SIGNALS}
    installed = {signum: ours for signum in SIGNALS}
    if hasattr(signal, "SIGHUP"):
        installed[signal.SIGHUP] = signal.SIG_IGN  # as under nohup: must stay ignored
    try:
        for signum, handler in installed.items():
            signal.signal(signum, handler)
        code = main(["train", "--backend", "numpy", "--epochs", "1", "--limit", "500",
                     "--no-plots", "--quiet", "--out", str(tmp_path / "run")])  # fmt: skip
        after = {signum: signal.getsignal(signum) for signum in SIGNALS}
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    assert code == 0, capsys.readouterr()
    assert after == installed


# -- the solvers: mutants that `nox -s mutation` found alive -------------------------------------
def test_sgd_epoch_with_huge_and_small_logits_side_by_side(arrays):
    """Each row's logits are shifted by that row's own maximum: rows with logits in the
    thousands train next to rows with logits near 0, as one textbook step says."""
    from softmax_xp.solvers.sgd import sgd_epoch

    rng = np.random.default_rng(4)
    X = rng.normal(size=(8, 3))
    X[:4] *= 1000.0
    y = np.arange(8) % 3
    W, b = rng.normal(size=(3, 3)), np.zeros((1, 3))
    order = arrays(rng.permutation(8), "int64")
    got = sgd_epoch(arrays(X), arrays(y, "int64"), order, arrays(W), arrays(b), None,
                    lr=1e-3, momentum=0.0, reg=0.0, batch_size=8, xp=arrays.xp)  # fmt: skip
    loss, dW, db = host_objective(X, y, W, b, 0.0)
    assert loss > 100.0  # the huge rows are far from their class
    np.testing.assert_allclose(arrays.host(got[0]), W - 1e-3 * dW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(arrays.host(got[1]), b - 1e-3 * db, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(arrays.host(got[3]), [loss], rtol=1e-10)


def lbfgs_objective(arrays, calls: list | None = None):
    X, y = lbfgs_problem()
    Xd, yd = arrays(X), arrays(y, "int64")

    def objective(W, b):
        if calls is not None:
            calls.append(1)
        return loss_and_grads(Xd, yd, W, b, 1e-2)

    return objective


def test_minimize_lbfgs_reports_every_iterate_without_warnings(arrays):
    """L-BFGS-B with its own options (an unknown option or another method warns), the loss of
    every accepted iterate in ``losses``, and scipy's reason for stopping."""
    from softmax_xp.solvers.lbfgs import minimize_lbfgs

    objective = lbfgs_objective(arrays)
    W0, b0 = arrays(np.zeros((5, 3))), arrays(np.zeros((1, 3)))
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = minimize_lbfgs(objective, W0, b0, max_iter=200, to_host=to_numpy, tol=1e-6,
                                callback=lambda i, W, b, loss: seen.append(loss))  # fmt: skip
    assert result.converged is True and 0 < result.n_iter < 200
    assert result.losses == seen and all(isinstance(loss, float) for loss in seen)
    final = float(to_numpy(objective(result.W, result.b)[0]))
    assert result.losses[-1] == pytest.approx(final, rel=1e-12)
    assert isinstance(result.message, str) and "CONVERGENCE" in result.message.upper()
    assert "not finite" not in result.message


def test_minimize_lbfgs_says_when_the_objective_is_not_finite(arrays):
    from softmax_xp.solvers.lbfgs import minimize_lbfgs

    objective = lbfgs_objective(arrays)

    def nan_loss(W, b):
        loss, dW, db = objective(W, b)
        return loss * float("nan"), dW, db

    W0, b0 = arrays(np.zeros((5, 3))), arrays(np.zeros((1, 3)))
    result = minimize_lbfgs(nan_loss, W0, b0, max_iter=10, to_host=to_numpy)
    assert result.converged is False
    assert result.message.startswith("the objective is not finite (nan); ")


def test_max_iter_zero_returns_a_copy_of_the_start_without_evaluating(arrays):
    from softmax_xp.solvers.lbfgs import minimize_lbfgs

    calls: list = []
    objective = lbfgs_objective(arrays, calls)
    W0, b0 = arrays(np.ones((5, 3))), arrays(np.full((1, 3), 0.5))
    result = minimize_lbfgs(objective, W0, b0, max_iter=0, to_host=to_numpy)
    assert calls == []
    assert result.n_iter == 0 and result.losses == [] and result.converged is False
    assert result.W is not W0 and result.b is not b0
    np.testing.assert_array_equal(arrays.host(result.W), 1.0)
    np.testing.assert_array_equal(arrays.host(result.b), 0.5)
