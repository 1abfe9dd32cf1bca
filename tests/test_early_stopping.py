"""EarlyStopping: Keras's rule (no improvement by more than min_delta for patience epochs),
the best weights restored, validation loss in the History, both solvers, resume."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import (
    Callback,
    EarlyStopping,
    SoftmaxXP,
    cross_entropy,
    to_numpy,
)

D, K = 5, 3


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(scale=1.5, size=(K, D))
    y = rng.integers(0, K, size=n)
    return centres[y] + rng.normal(size=(n, D)), y


X, Y = blobs(120, 0)
X_VAL, Y_VAL = blobs(60, 1)


def new_model(backend=None, **kwargs) -> SoftmaxXP:
    args = {"lr": 0.3, "reg": 1e-3, "seed": 2, "dtype": "float64", **kwargs}
    if backend is None:
        return SoftmaxXP(D, K, backend="numpy", **args)
    return SoftmaxXP(D, K, backend=backend.name, device=backend.device, **args)


class Weights(Callback):
    """Records each epoch's weights on the host."""

    def __init__(self):
        self.W = {}

    def on_epoch_end(self, state):
        self.W[state.epoch] = to_numpy(state.W).copy()


@pytest.mark.parametrize("patience", [0, 1, 3])
def test_stops_after_patience_epochs_without_improvement(backend, patience):
    """With a min_delta no epoch can beat, the first epoch stays the best: the run stops after
    epoch 1 + patience (0: the first epoch without improvement) and gets epoch 1's weights."""
    stop, seen = EarlyStopping(monitor="loss", patience=patience, min_delta=1e9), Weights()
    model = new_model(backend)
    history = model.train(X, Y, epochs=10, batch_size=16, callback=[seen, stop])
    expected = 1 + max(patience, 1)
    assert (stop.stopped_epoch, stop.best_epoch, model.epoch_, len(history)) == (
        expected,
        1,
        expected,
        expected,
    )
    np.testing.assert_array_equal(to_numpy(model.W), seen.W[1])


def test_patience_reached_exactly_at_the_last_epoch_and_one_epoch_short():
    stop = EarlyStopping(monitor="loss", patience=3, min_delta=1e9)
    new_model().train(X, Y, epochs=4, batch_size=16, callback=stop)
    assert stop.stopped_epoch == 4 and stop.best_epoch == 1
    stop = EarlyStopping(monitor="loss", patience=3, min_delta=1e9)
    seen = Weights()
    model = new_model()
    model.train(X, Y, epochs=3, batch_size=16, callback=[seen, stop])
    assert stop.stopped_epoch is None and model.epoch_ == 3
    np.testing.assert_array_equal(model.W, seen.W[1])  # the best is restored all the same


def test_restore_best_false_keeps_the_last_weights():
    stop, seen = (
        EarlyStopping(monitor="loss", patience=2, min_delta=1e9, restore_best=False),
        (Weights()),
    )
    model = new_model()
    model.train(X, Y, epochs=10, batch_size=16, callback=[seen, stop])
    np.testing.assert_array_equal(model.W, seen.W[3])


def test_monitors_improve_in_their_direction():
    """val_accuracy improves upwards, the losses downwards; the best epoch is the best value."""
    for monitor, best in (("val_accuracy", max), ("val_loss", min), ("loss", min)):
        stop = EarlyStopping(monitor=monitor, patience=3)
        history = new_model(lr=2.0).train(
            X, Y, X_VAL, Y_VAL, epochs=30, batch_size=16, callback=stop
        )
        values = history[monitor]
        assert values[stop.best_epoch - 1] == best(values), monitor
        if stop.stopped_epoch is not None:
            assert stop.stopped_epoch == stop.best_epoch + 3 == len(values)


def test_min_delta_counts_small_gains_as_none():
    seen: list[float] = []

    class Loss(Callback):
        def on_epoch_end(self, state):
            seen.append(state.history.loss[-1])

    stop = EarlyStopping(monitor="loss", patience=2, min_delta=0.01)
    new_model().train(X, Y, epochs=40, batch_size=16, callback=[Loss(), stop])
    best, wait = seen[0], 0
    for value in seen[1:]:  # Keras's rule, step by step
        wait = 0 if value < best - 0.01 else wait + 1
        best = value if wait == 0 else best
    assert stop.wait == wait == 2 and stop.best == best


def test_val_loss_is_the_validation_cross_entropy(backend, arrays):
    model = new_model(backend)
    history = model.train(X, Y, X_VAL, Y_VAL, epochs=2, batch_size=16)
    logits = arrays(X_VAL) @ model.W + model.b
    expected = float(cross_entropy(logits, arrays(Y_VAL, "int64")))
    assert len(history.val_loss) == 2
    assert history.val_loss[-1] == pytest.approx(expected, rel=1e-10)
    assert new_model(backend).train(X, Y, epochs=1).val_loss == []


def test_validation_monitors_need_validation_data():
    with pytest.raises(ValueError, match=r"monitor='val_loss'\) needs validation data"):
        new_model().train(X, Y, epochs=3, callback=EarlyStopping())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"monitor": "accuracy"}, ValueError, "Unknown monitor 'accuracy'"),
        ({"patience": -1}, ValueError, "patience must be >= 0"),
        ({"patience": 1.5}, TypeError, "patience must be an integer"),
        ({"min_delta": -0.1}, ValueError, "min_delta must be a finite number"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        EarlyStopping(**kwargs)


def test_lbfgs_stops_early_too():
    stop = EarlyStopping(monitor="loss", patience=1, min_delta=1e9)
    model = new_model()
    history = model.train(X, Y, epochs=50, solver="lbfgs", callback=stop)
    assert len(history) == 2 and stop.stopped_epoch == 2
    assert model.converged_ is True and "early stopping: loss" in model.solver_message_


def test_a_resumed_run_stops_where_an_uninterrupted_one_would(tmp_path, internals):
    """Interrupted after its best epoch but before it stops, the resumed run finds the counters
    in the History and the best weights in the checkpoint."""

    def run(model, **kwargs):
        stop = EarlyStopping(monitor="val_loss", patience=4)
        model.train(X, Y, X_VAL, Y_VAL, epochs=60, batch_size=16, callback=stop, **kwargs)
        return stop

    whole = new_model(lr=3.0)
    reference = run(whole)
    assert reference.stopped_epoch is not None and reference.best_epoch < reference.stopped_epoch
    cut = reference.best_epoch + 2  # after the best, before the stop
    count = internals.interrupt_sgd_after(cut)
    path = tmp_path / "ckpt.npz"
    with pytest.raises(KeyboardInterrupt):
        new_model(lr=3.0).train(
            X, Y, X_VAL, Y_VAL, epochs=60, batch_size=16, checkpoint=path,
            callback=[count, EarlyStopping(monitor="val_loss", patience=4)],
        )  # fmt: skip
    internals.monkeypatch.undo()
    resumed = new_model(lr=3.0)
    stop = run(resumed, resume_from=path)
    assert (stop.stopped_epoch, stop.best_epoch) == (reference.stopped_epoch, reference.best_epoch)
    np.testing.assert_array_equal(resumed.W, whole.W)
    assert resumed.history_.val_loss == whole.history_.val_loss
