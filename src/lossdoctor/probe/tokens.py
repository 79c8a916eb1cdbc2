"""Token labels against the token inputs: padding counted by the loss, labels that copy inputs.

Sequence models are fed integer token ids and trained on integer labels of the same layout. Two
bugs live only in how the two line up, and neither raises: labels at padding positions that the
loss does not ignore (the collator forgot ``-100`` / ``ignore_index``), and labels equal to the
input at the same position (a causal LM whose labels were never shifted, an MLM whose unmasked
positions were left in the loss): the model can copy its input and the loss falls to 0 without
anything being learned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lossdoctor.probe.ops import LossCall
from lossdoctor.trace import TokenLabels

HF_IGNORE = -100  # Hugging Face's ignore index for labels


def _int(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.dim() == 2 and not t.is_floating_point() \
        and not t.is_complex() and t.dtype != torch.bool


def _ids(inputs: Any) -> torch.Tensor | None:
    if isinstance(inputs, Mapping):
        x = inputs.get("input_ids", inputs.get("decoder_input_ids"))
        return x if _int(x) else None
    if isinstance(inputs, (tuple, list)):
        return next((t for t in inputs if _int(t)), None)
    return inputs if _int(inputs) else None


def _trailing_pad(ids: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """Right padding read off the ids alone: one value ending at least two rows in runs of two
    or more, with rows of different padded lengths (a fixed end token gives equal runs). Needs
    a vocabulary of more than 10 ids in the batch, where such runs do not happen by chance."""
    if ids.shape[1] < 3 or int(torch.unique(ids).numel()) <= 10:
        return None
    doubled = ids[:, -1][ids[:, -1] == ids[:, -2]]
    if doubled.numel() < 2:
        return None
    pad = int(torch.mode(doubled).values)
    # trailing run: positions from which every later token is the pad value
    run = (ids == pad).flip(1).long().cumprod(1).flip(1).bool()
    lengths = run.sum(1)
    if int((lengths >= 2).sum()) < 2 or int(lengths.min()) == int(lengths.max()):
        return None
    return run, pad


def _padding(inputs: Any, ids: torch.Tensor) -> tuple[torch.Tensor, int | None, str | None]:
    """Padding positions of the ids: ``attention_mask`` 0, else a trailing pad run."""
    mask = inputs.get("attention_mask") if isinstance(inputs, Mapping) else None
    if isinstance(mask, torch.Tensor) and mask.shape == ids.shape:
        at_pad = mask == 0
        pad = int(torch.mode(ids[at_pad]).values) if bool(at_pad.any()) else None
        return at_pad, pad, "attention_mask"
    trailing = _trailing_pad(ids)
    if trailing is None:
        return torch.zeros_like(ids, dtype=torch.bool), None, None
    return trailing[0], trailing[1], "trailing run"


def token_labels(inputs: Any, targets: Any, lc: LossCall | None) -> TokenLabels | None:
    """Compare token labels with the token inputs; None when the batch holds no token ids.

    The labels the loss saw (a Hugging Face model's after its own shift) are compared with the
    ids position by position for copying; the labels given with the ids (``labels=`` or the
    targets of the same shape) are compared with the padding.
    """
    ids = _ids(inputs)
    if ids is None:
        return None
    ignore = lc.ignore_index if lc is not None and lc.ignore_index is not None else HF_IGNORE
    seen = lc.target if lc is not None and isinstance(lc.target, torch.Tensor) else targets
    if not isinstance(seen, torch.Tensor) or seen.is_floating_point() or seen.numel() != ids.numel():
        seen = None
    given = inputs.get("labels") if isinstance(inputs, Mapping) else None
    if not (isinstance(given, torch.Tensor) and given.shape == ids.shape):
        given = seen.reshape(ids.shape) if seen is not None else None
    with torch.no_grad():
        at_pad, pad_id, source = _padding(inputs, ids)
        ids = ids.to(at_pad.device)
        copied = counted = 0
        if seen is not None:
            t = seen.reshape(ids.shape).to(ids.device)
            keep = (t != ignore) & ~at_pad
            counted = int(keep.sum())
            copied = int(((t == ids) & keep).sum())
        padded_counted = 0
        if given is not None:
            padded_counted = int((at_pad & (given.to(at_pad.device) != ignore)).sum())
    return TokenLabels(positions=counted, copied=copied, padded=int(at_pad.sum()),
                       padded_counted=padded_counted, pad_id=pad_id, pad_source=source,
                       ignore_index=ignore)
