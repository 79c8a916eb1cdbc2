"""Data for the lab: scikit-learn's bundled digits, generated blobs and circles, or a .npz file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossdoctor.errors import LossDoctorError


@dataclass(frozen=True)
class Split:
    """Train and test tensors.

    Attributes:
        x_train: float features.
        y_train: integer class labels.
        x_test: float features.
        y_test: integer class labels.
        classes: number of classes.
        name: where the data came from.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int
    name: str


def _sklearn() -> Any:
    try:
        import sklearn.datasets
    except ImportError as e:  # pragma: no cover - depends on the install
        raise LossDoctorError("this dataset needs scikit-learn: pip install 'lossdoctor[lab]'") from e
    return sklearn.datasets


def load(name: str, seed: int = 0, test_share: float = 0.2) -> Split:
    """Load ``digits``, ``blobs``, ``circles`` or ``FILE.npz`` (arrays X and y).

    digits pixels are scaled to [-0.5, 0.5] like the MNIST of story 1.
    """
    if name == "digits":
        d = _sklearn().load_digits()
        x, y = d.data / 16.0 - 0.5, d.target
    elif name == "blobs":
        x, y = _sklearn().make_blobs(n_samples=2000, n_features=20, centers=5, random_state=seed)
    elif name == "circles":
        x, y = _sklearn().make_circles(n_samples=2000, noise=0.1, factor=0.5, random_state=seed)
    elif name.endswith(".npz"):
        path = Path(name)
        if not path.is_file():
            raise LossDoctorError(f"no such file: {path}")
        try:
            with np.load(path) as f:
                x, y = f["X"], f["y"]
        except KeyError as e:
            raise LossDoctorError(f"{path} must hold arrays 'X' and 'y' ({e})") from e
        except (OSError, ValueError) as e:
            raise LossDoctorError(f"cannot read {path}: {e}") from e
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
            raise LossDoctorError(f"{path}: X must be (n, features) and y (n,), got {x.shape} and "
                                  f"{y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise LossDoctorError(f"{path}: y must hold integer class labels, got {y.dtype}")
    else:
        raise LossDoctorError(f"unknown dataset {name!r}: digits, blobs, circles or FILE.npz")
    xt = torch.tensor(np.asarray(x), dtype=torch.float32)
    yt = torch.tensor(np.asarray(y), dtype=torch.long)
    if yt.min() < 0:
        raise LossDoctorError("class labels must be 0..K-1")
    perm = torch.randperm(len(yt), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, int(len(yt) * test_share))
    test, train = perm[:n_test], perm[n_test:]
    return Split(xt[train], yt[train], xt[test], yt[test], int(yt.max()) + 1, name)
