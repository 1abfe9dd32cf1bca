"""History: the per-epoch record of a training run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch training record: mean training loss, validation accuracy, wall time (s),
    mean validation cross-entropy (``val_accuracy`` and ``val_loss`` are empty without
    validation data) and the CPU thread count the epoch's products ran on (``threads``: chosen
    per epoch, see :mod:`softmax_xp._threads`; 0 where the count is not the package's to set:
    GPUs, JAX, L-BFGS, files written before it was recorded).

    It reads like a dict of lists: ``history["loss"]`` is ``history.loss``.

    Examples
    --------
    >>> history = History(loss=[0.9, 0.5], val_accuracy=[0.8, 0.9], epoch_time=[0.1, 0.1])
    >>> len(history), history["loss"][-1], "val_accuracy" in history
    (2, 0.5, True)
    """

    loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        if not isinstance(key, str):
            raise TypeError(
                f"History is indexed by name, not by {type(key).__name__}: "
                "history['loss'][-1] (or history.loss[-1]) is the loss of the last epoch; the "
                f"names are {', '.join(map(repr, self.keys()))}."
            )
        if key not in self.keys():
            raise KeyError(f"{key!r}; History has {', '.join(map(repr, self.keys()))}")
        values: list[float] = getattr(self, key)
        return values

    def __len__(self) -> int:
        """The number of epochs (or L-BFGS iterations) recorded."""
        return len(self.loss)

    def keys(self) -> list[str]:
        """The names, as a dict of lists has them: ``dict(history)`` works.

        Examples
        --------
        >>> History().keys()
        ['loss', 'val_accuracy', 'epoch_time', 'val_loss', 'threads']
        """
        return [f.name for f in fields(self)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def items(self) -> list[tuple[str, list[float]]]:
        """``(name, values)`` pairs, as a dict of lists has them.

        Examples
        --------
        >>> History(loss=[0.5], epoch_time=[0.1], threads=[1]).items()
        [('loss', [0.5]), ('val_accuracy', []), ('epoch_time', [0.1]), ('val_loss', []), ('threads', [1])]
        """
        return [(key, getattr(self, key)) for key in self.keys()]

    def to_dict(self) -> dict[str, list[float]]:
        """A plain dict of lists (JSON-ready).

        Examples
        --------
        >>> History(loss=[0.5], epoch_time=[0.1], threads=[1]).to_dict()
        {'loss': [0.5], 'val_accuracy': [], 'epoch_time': [0.1], 'val_loss': [], 'threads': [1]}
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def extended(
        self,
        loss: float,
        val_accuracy: float | None,
        epoch_time: float,
        val_loss: float | None = None,
        threads: int = 0,
    ) -> History:
        """A new History with one more epoch (this one is left as it is); ``threads`` of the
        epochs before, if missing, are 0.

        Examples
        --------
        >>> first = History()
        >>> second = first.extended(0.7, None, 0.2)
        >>> len(first), second.loss, second.val_accuracy, second.threads
        (0, [0.7], [], [0])
        """
        accuracy = self.val_accuracy if val_accuracy is None else [*self.val_accuracy, val_accuracy]
        val = self.val_loss if val_loss is None else [*self.val_loss, val_loss]
        before = [*self.threads, *[0] * (len(self.loss) - len(self.threads))]
        return History(
            [*self.loss, loss], accuracy, [*self.epoch_time, epoch_time], val, [*before, threads]
        )
