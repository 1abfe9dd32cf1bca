"""History: the per-epoch record of a training run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch training record: mean training loss, validation accuracy and wall time (s)."""

    loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        if not isinstance(key, str):
            raise TypeError(
                f"History is indexed by name, not by {type(key).__name__}: "
                "history['loss'][-1] (or history.loss[-1]) is the loss of the last epoch; the "
                "names are 'loss', 'val_accuracy' and 'epoch_time'."
            )
        if key not in self.keys():
            raise KeyError(f"{key!r}; History has 'loss', 'val_accuracy' and 'epoch_time'")
        return getattr(self, key)

    def __len__(self) -> int:
        """The number of epochs (or L-BFGS iterations) recorded."""
        return len(self.loss)

    def keys(self) -> list[str]:
        """The names, as a dict of lists has them: ``dict(history)`` works."""
        return [f.name for f in fields(self)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def items(self) -> list[tuple[str, list[float]]]:
        return [(key, getattr(self, key)) for key in self.keys()]

    def to_dict(self) -> dict[str, list[float]]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def extended(self, loss: float, val_accuracy: float | None, epoch_time: float) -> History:
        """A new History with one more epoch (this one is left as it is)."""
        accuracy = self.val_accuracy if val_accuracy is None else [*self.val_accuracy, val_accuracy]
        return History([*self.loss, loss], accuracy, [*self.epoch_time, epoch_time])
