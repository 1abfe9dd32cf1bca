"""Tests that kill the mutants of the training run (softmax_xp/_training/) that survived the rest
of the suite (issue 22, item 9; benchmarks/results/mutation.md).

What they pin down: the fields of :class:`~softmax_xp.ResumeMismatchError` (path, kind,
differences, and the advice of each reason), the cause / kept / advice of
:class:`~softmax_xp.TrainingDivergedError` for SGD and L-BFGS, the momentum a pickled model
carries on with, and progress lines flushed as each epoch ends.
"""

from __future__ import annotations

import copy
import io
import json
import math
import pickle
import sys

import numpy as np
import pytest

from softmax_xp import (
    ResumeMismatchError,
    SoftmaxXP,
    TrainingDivergedError,
    loss_and_grads,
    to_numpy,
)

D, K, N = 5, 3, 120


def blobs(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(K, D))
    y = rng.integers(0, K, size=n)
    return centres[y] + rng.normal(size=(n, D)), y


X, Y = blobs()


def new_model(**kwargs) -> SoftmaxXP:
    args = {"lr": 0.3, "reg": 1e-3, "momentum": 0.9, "lr_decay": 0.9, "seed": 7, **kwargs}
    return SoftmaxXP(D, K, backend="numpy", dtype="float64", **args)


def header(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz["__header__"]))


def fit(model: SoftmaxXP, epochs: int, X=X, y=Y, **kwargs):
    return model.train(X, y, epochs=epochs, **{"batch_size": 16, "verbose": 0, **kwargs})


# -- ResumeMismatchError: which check refused, on which file, what differs, what to do -----------
RESUMES = {
    # kind: (checkpoint run's arguments, resumed model's settings, resumed run's arguments,
    #        differences, how the reason ends)
    "solver": (
        {},
        {},
        {"solver": "lbfgs"},
        {"solver": ("sgd", "lbfgs")},
        "resume with solver='sgd' (SGD epochs and L-BFGS iterations do not mix in one run).",
    ),
    "settings": (
        {},
        {"lr": 0.5},
        {"batch_size": 32},
        {"lr": (0.3, 0.5), "batch_size": (16, 32)},
        "the checkpoint was written with lr=0.3 (here 0.5), batch_size=16 (here 32); resume with "
        "the same model settings, batch_size and training data.",
    ),
    "blocks": (
        {},
        {},
        {"shuffle": "blocks", "block_rows": 40},
        {"blocks": (None, [40, 40, 40])},
        "the checkpoint's run visited all rows in one shuffle (shuffle='global'), this one 3 "
        "blocks of up to 40 rows; resume with the same shuffle and blocks (block_rows, or the "
        "Dask array's chunks).",
    ),
    "data": (
        {},
        {},
        {"X": X + 1.0},
        {},
        "resume with the same training data, in the same order.",
    ),
    "epochs": (
        {},
        {},
        {"epochs": 1},
        {"epochs": (2, 1)},
        "the checkpoint has 2 completed epochs, more than epochs=1 (epochs counts every epoch of "
        "the run).",
    ),
}


@pytest.mark.parametrize("kind", list(RESUMES))
def test_a_refused_resume_names_the_file_the_check_and_the_differences(tmp_path, kind):
    written, settings, resumed, differences, ending = RESUMES[kind]
    path = tmp_path / "c.npz"
    fit(new_model(), 2, checkpoint=path, **written)
    model = new_model(**settings)
    W = model.W
    resumed = {"epochs": 4, **resumed}
    with pytest.raises(ResumeMismatchError) as info:
        fit(model, resume_from=path, **resumed)
    error = info.value
    assert (error.path, error.kind, error.differences) == (str(path), kind, differences)
    assert error.reason.endswith(ending), error.reason
    assert str(error) == f"resume_from={str(path)!r}: {error.reason}"
    assert model.W is W and model.epoch_ == 0  # nothing restored


# -- TrainingDivergedError of SGD: the cause, what the model keeps, the advice -----------------
def overflow_in_epoch(internals, epoch: int, what: str) -> None:
    """Make SGD epoch ``epoch`` overflow ``what``: the weights (every batch loss finite) or the
    sum of the batch losses (each batch loss and the weights finite)."""
    real, calls = internals.sgd_epoch, [0]

    def sgd_epoch(*args, **kwargs):
        W, b, velocity, losses = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == epoch:
            if what == "weights":
                W = W * math.inf
            else:
                losses = losses * 0.0 + 1e308
        return W, b, velocity, losses

    internals.patch_sgd_epoch(sgd_epoch)


@pytest.mark.parametrize(
    ("epoch", "what", "cause", "kept"),
    [
        (1, "loss", "epoch 1: the summed loss overflowed (step size 0.3)", "the start of the run"),
        (2, "weights", "epoch 2: the weights overflowed (step size 0.27)", "epoch 1"),
        (3, "weights", "epoch 3: the weights overflowed (step size 0.243)", "epoch 2"),
    ],
)
def test_sgd_divergence_says_what_overflowed_and_which_epoch_is_kept(
    internals, epoch, what, cause, kept
):
    overflow_in_epoch(internals, epoch, what)
    model = new_model()
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, 5)
    error = info.value
    assert error.cause == f"Training diverged in {cause}."
    assert error.kept == f"The model keeps the weights of {kept}."
    assert error.advice == "Try a smaller lr, e.g. lr=0.03."
    assert str(error) == f"{error.cause} {error.kept} {error.advice}"
    assert (error.epoch, error.batch, len(error.history), model.epoch_) == (
        epoch,
        None,
        epoch - 1,
        epoch - 1,
    )


# -- TrainingDivergedError of L-BFGS ---------------------------------------------------------------
def test_lbfgs_iterate_with_a_non_finite_loss_keeps_the_previous_iteration(internals):
    """scipy's line search accepts no iterate whose loss is not finite; the run's check is the
    guard for a minimizer that would: iteration 2 reports a NaN loss."""
    model = new_model(momentum=0.0)
    W0, b0 = to_numpy(model.W).copy(), to_numpy(model.b).copy()

    def minimize_lbfgs(objective, W, b, *, callback, **kwargs):
        callback(1, W + 1.0, b + 1.0, 0.5)
        callback(2, W + 2.0, b + 2.0, math.nan)
        raise AssertionError("the run goes on after a NaN loss")

    internals.patch_minimize_lbfgs(minimize_lbfgs)
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, 5, solver="lbfgs", X_val=X, y_val=Y)
    error = info.value
    assert error.cause == "L-BFGS diverged in iteration 2: the loss is nan."
    assert error.kept == "The model keeps the previous iteration;"
    assert error.advice == (
        "check the data for huge values (scale the features) and reg for a huge value."
    )
    assert (error.epoch, error.batch, error.history.loss) == (2, None, [0.5])
    assert model.epoch_ == 1 and model.history_.loss == [0.5]
    np.testing.assert_array_equal(model.W, W0 + 1.0)
    np.testing.assert_array_equal(model.b, b0 + 1.0)


def test_lbfgs_that_cannot_start_from_a_finite_loss_reports_that_loss():
    huge = np.clip(X, -1, 1) * 1e200  # finite logits, a finite but huge loss at the start
    model = new_model(momentum=0.0)
    W0, b0 = to_numpy(model.W).copy(), to_numpy(model.b).copy()
    start = float(loss_and_grads(huge, Y, W0, b0, model.reg)[0])
    assert math.isfinite(start)
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, 5, X=huge, solver="lbfgs")
    error = info.value
    assert error.cause.startswith(
        f"L-BFGS cannot start in iteration 1: no step from the starting weights (loss "
        f"{start:.6g}) has a finite, lower loss (scipy: "
    ), error.cause
    assert error.kept == "The model keeps its starting weights;"
    assert (error.epoch, error.batch, len(error.history), model.epoch_) == (1, None, 0, 0)


def test_lbfgs_from_weights_whose_loss_is_not_finite_names_that_loss():
    model = new_model(momentum=0.0)
    model.W = np.full((D, K), 1e308) * np.array([1.0, -1.0, 1.0])  # the loss overflows
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, 5, solver="lbfgs")
    assert info.value.cause == (
        "L-BFGS cannot start in iteration 1: the loss at the starting weights is nan."
    )
    assert model.epoch_ == 0


# -- L-BFGS: iterations, resume, validation accuracy, outcome -------------------------------------
def test_lbfgs_resume_runs_up_to_epochs_in_all(tmp_path):
    path = tmp_path / "c.npz"
    settings = {"solver": "lbfgs", "tol": 1e-12, "X_val": X, "y_val": Y}
    fit(new_model(momentum=0.0, reg=1e-6), 2, checkpoint=path, **settings)
    model = new_model(momentum=0.0, reg=1e-6)
    history = fit(model, 2, resume_from=path, **settings)  # nothing left to do: no error
    assert len(history) == model.epoch_ == 2
    history = fit(model, 4, resume_from=path, **settings)
    assert len(history) == model.epoch_ == 4
    assert model.converged_ is False and "LIMIT" in model.solver_message_


def test_lbfgs_records_the_validation_accuracy_and_its_outcome():
    X_val, y_val = blobs(5000)  # more than 4096 validation rows, same classes
    model = new_model(momentum=0.0)
    history = fit(model, 50, solver="lbfgs", tol=1e-3, X_val=X_val, y_val=y_val)
    assert model.converged_ is True and isinstance(model.solver_message_, str)
    assert model.solver_message_ != "" and len(history) < 50
    assert history.val_accuracy[-1] == model.score(X_val, y_val)
    assert all(0.0 <= a <= 1.0 for a in history.val_accuracy)


def test_sgd_validation_accuracy_counts_more_than_4096_hits():
    X_val, y_val = blobs(5000)
    model = new_model()
    history = fit(model, 2, X_val=X_val, y_val=y_val)
    assert history.val_accuracy[-1] == model.score(X_val, y_val) > 4096 / 5000


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_epoch_times_are_the_durations_of_the_epochs(solver):
    import time

    start = time.perf_counter()
    history = fit(new_model(momentum=0.0), 3, solver=solver)
    total = time.perf_counter() - start
    assert len(history.epoch_time) == len(history) > 0
    assert all(0.0 < t <= total for t in history.epoch_time)


# -- train() starts a new run; partial_train() carries on --------------------------------------
def full_batch_epoch(W, b, *, lr, reg):
    """One full-batch step from zero momentum: (W, b)."""
    _, dW, db = loss_and_grads(X, Y, W, b, reg)
    return W - lr * np.asarray(dW), b - lr * np.asarray(db)


def test_a_second_train_restarts_history_epochs_and_momentum():
    model = new_model()
    fit(model, 3, batch_size=N)
    W0, b0 = to_numpy(model.W).copy(), to_numpy(model.b).copy()
    history = fit(model, 1, batch_size=N)
    assert len(history) == len(model.history_) == model.epoch_ == 1
    W, b = full_batch_epoch(W0, b0, lr=model.lr, reg=model.reg)
    np.testing.assert_allclose(model.W, W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.b, b, rtol=1e-12, atol=1e-14)


def test_a_model_without_momentum_keeps_no_momentum_buffers(internals, tmp_path):
    model = new_model(momentum=0.0)
    fit(model, 2, checkpoint=tmp_path / "c.npz")
    assert internals.state(model).velocity is None
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        assert sorted(name for name in npz.files if not name.startswith("__")) == ["W", "b"]


# -- checkpoints and callbacks ---------------------------------------------------------------------
def test_a_checkpoint_records_the_backend_it_was_trained_on_as_a_model_file_does(tmp_path):
    model = new_model()
    fit(model, 1, checkpoint=tmp_path / "c.npz")
    model.save(tmp_path / "m.npz")
    assert header(tmp_path / "c.npz")["trained_on"] == header(tmp_path / "m.npz")["trained_on"]
    assert header(tmp_path / "c.npz")["trained_on"] == "numpy"


def test_a_callback_that_is_not_callable_is_refused_by_name_and_type():
    with pytest.raises(TypeError) as info:
        fit(new_model(), 1, callback=[print, 3])
    assert str(info.value) == (
        "callback must be a function called as callback(epoch, history), a "
        "softmax_xp.Callback, or a list of those; got 3 (int)."
    )


# -- a pickled model carries on with its momentum ------------------------------------------------
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copied_model_continues_with_the_same_momentum(internals, how):
    model = new_model()
    model.partial_train(X, Y, epochs=2, batch_size=16)
    twin = pickle.loads(pickle.dumps(model)) if how == "pickle" else copy.deepcopy(model)
    ours, theirs = internals.state(model).velocity, internals.state(twin).velocity
    assert theirs is not None and np.abs(ours[0]).max() > 0 and np.abs(ours[1]).max() > 0
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(b, a)
    model.partial_train(X, Y, epochs=1, batch_size=16)
    twin.partial_train(X, Y, epochs=1, batch_size=16)
    np.testing.assert_array_equal(twin.W, model.W)
    np.testing.assert_array_equal(twin.b, model.b)


class RecordingUnpickler(pickle.Unpickler):
    """Unpickles, recording every class the pickle names as ``(module, name)``."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.classes: set[tuple[str, str]] = set()

    def find_class(self, module, name):
        self.classes.add((module, name))
        return super().find_class(module, name)


def test_a_pickled_model_holds_its_arrays_as_host_numpy_arrays(backend):
    """W, b and the momentum travel as NumPy arrays, whatever the backend (the pickle names the
    backend, not its array type), and come back on the backend and device."""
    model = SoftmaxXP(D, K, backend=backend.name, device=backend.device, dtype="float64",
                      momentum=0.9, seed=7)  # fmt: skip
    model.partial_train(X, Y, epochs=1, batch_size=16)
    unpickler = RecordingUnpickler(pickle.dumps(model))
    twin = unpickler.load()
    array_types = {(m, n) for m, n in unpickler.classes if n in ("Array", "Tensor", "ndarray")}
    assert array_types and all(m.startswith("numpy") for m, _ in array_types), array_types
    assert type(twin.W) is type(model.W) and type(twin.b) is type(model.b)
    np.testing.assert_array_equal(to_numpy(twin.W), to_numpy(model.W))


# -- progress lines reach a pipe as each epoch ends -----------------------------------------------
class Pipe(io.StringIO):
    """A stdout whose text is seen by the other end only when flushed."""

    def __init__(self):
        super().__init__()
        self.seen = ""

    def flush(self):
        self.seen = self.getvalue()


def test_each_progress_line_is_flushed_when_its_epoch_ends(monkeypatch):
    pipe = Pipe()
    monkeypatch.setattr(sys, "stdout", pipe)
    seen = []
    fit(new_model(), 3, verbose=1, callback=lambda epoch, history: seen.append(pipe.seen))
    assert [text.count("\n") for text in seen] == [1, 2, 3]
    assert seen[-1].splitlines()[-1].startswith("epoch 3/3  loss ")
