"""The predictions of a softmax linear model from its weights, on every kind of input."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _data
from ._backend import Backend
from ._errors import out_of_memory_hint
from ._inference import chunk_rows

__all__ = ["LinearPredictions"]

Array = Any


class LinearPredictions:
    """The predictions of a softmax linear model (:class:`~softmax_xp.SoftmaxXP`'s): functions
    of its ``W`` and ``b`` (see :mod:`softmax_xp._inference`), chunked in memory and lazy on
    Dask."""

    W: Array
    b: Array
    _backend: Backend
    _memory_advice: Callable[[str, str], str]
    if TYPE_CHECKING:  # a property of SoftmaxXP

        @property
        def _settings(self) -> _data.DataSettings: ...

    def _predict_advice(self, where: str, chunk_size: int | None) -> Callable[[], str]:
        def advice() -> str:
            rows = chunk_rows(self._settings, chunk_size)
            smaller = f"chunk_size={max(1, rows // 4)}"
            hint = f"pass a smaller chunk_size (now {rows} rows), e.g. {smaller}"
            return self._memory_advice(where, hint)

        return advice

    def _predictions(self, kind: str, X: Any, chunk_size: int | None, where: str) -> Array:
        with self._backend.activate(), out_of_memory_hint(self._predict_advice(where, chunk_size)):
            return _data.predictions(kind, X, self.W, self.b, self._settings, chunk_size)

    def predict_proba(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """Class probabilities ``softmax(X W + b)``, shape ``(n_samples, num_classes)``.

        ``X`` is processed ``chunk_size`` rows at a time (default: up to 65536 rows, fewer when
        the features and logits of a chunk would exceed 256 MiB). Raises ValueError when the
        logits overflow the model's dtype (features far outside the training range). A Dask
        ``X`` gives a lazy Dask array, computed block by block where the blocks are
        (``chunk_size`` is not used), which raises the same errors when computed.

        Examples
        --------
        >>> from softmax_xp import SoftmaxXP
        >>> model = SoftmaxXP(2, 3, backend="numpy", seed=0)
        >>> model.predict_proba([[1.0, 2.0], [3.0, 4.0]]).sum(axis=1)
        array([1., 1.], dtype=float32)
        """
        return self._predictions("proba", X, chunk_size, "predict_proba")

    def predict_log_proba(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """Log-probabilities ``log_softmax(X W + b)``, exact where probabilities underflow;
        chunked and checked as in :meth:`predict_proba`.

        Examples
        --------
        >>> from softmax_xp import SoftmaxXP
        >>> model = SoftmaxXP(1, 2, backend="numpy", dtype="float64")
        >>> model.W, model.b = [[200.0, -200.0]], [[0.0, 0.0]]
        >>> model.predict_log_proba([[1.0]])[0, 1]  # log(predict_proba) would be log(0) = -inf
        np.float64(-400.0)
        """
        return self._predictions("log_proba", X, chunk_size, "predict_log_proba")

    def decision_function(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """The logits ``X W + b``, shape ``(n_samples, num_classes)``; chunked and checked as in
        :meth:`predict_proba`.

        Examples
        --------
        >>> from softmax_xp import SoftmaxXP
        >>> model = SoftmaxXP(2, 2, backend="numpy", dtype="float64")
        >>> model.W, model.b = [[1.0, 0.0], [0.0, 1.0]], [[0.5, -0.5]]
        >>> model.decision_function([[2.0, 3.0]])
        array([[2.5, 2.5]])
        """
        return self._predictions("logits", X, chunk_size, "decision_function")

    def predict(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """Most probable class of each row of ``X`` (the backend's default integer dtype: int64,
        or int32 on 32-bit JAX; on the model's device); chunked and checked as in
        :meth:`predict_proba` (a Dask ``X`` gives a lazy Dask array).

        Examples
        --------
        >>> from softmax_xp import SoftmaxXP
        >>> model = SoftmaxXP(2, 2, backend="numpy")
        >>> model.W = [[1.0, 0.0], [0.0, 1.0]]
        >>> model.predict([[2.0, 1.0], [0.0, 3.0]])
        array([0, 1])
        """
        return self._predictions("labels", X, chunk_size, "predict")

    def score(self, X: Any, y: Any, *, chunk_size: int | None = None) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``; chunked and checked as in
        :meth:`predict_proba`. With a Dask ``X`` it is one reduction over the blocks (``y`` a
        Dask or in-memory array).

        Examples
        --------
        >>> from softmax_xp import SoftmaxXP
        >>> model = SoftmaxXP(2, 2, backend="numpy")
        >>> model.W = [[1.0, 0.0], [0.0, 1.0]]
        >>> model.score([[2.0, 1.0], [0.0, 3.0]], [0, 0])
        0.5
        """
        with (
            self._backend.activate(),
            out_of_memory_hint(self._predict_advice("score", chunk_size)),
        ):
            return _data.score(X, y, self.W, self.b, self._settings, chunk_size)
