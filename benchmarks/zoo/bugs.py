"""Realistic bugs injected into the zoo's healthy set-ups, each with the codes that name it.

Every bug is one a user of that architecture writes (forum threads and the real-bug benchmarks
have each of them): label errors inside models that compute their own loss, padding counted by
a causal-LM loss, unshifted LM labels, a softmax before the loss, raw pixels, a learning rate
for another optimizer, targets on another scale, logits into a probability loss, a bad init.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import models as m
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Bug:
    name: str
    model: str
    make: Callable[[], m.Case]
    expected: frozenset[str]
    what: str


def _bert_labels_one_based() -> m.Case:
    c = m.bert_cls()
    c["inputs"]["labels"] = c["inputs"]["labels"] + 1  # 1..3 for 3 classes, out.loss path
    return c


def _gpt2_padding_counted() -> m.Case:
    c = m.gpt2()
    c["inputs"]["labels"] = c["inputs"]["input_ids"].clone()  # pads not set to -100
    return c


def _gpt2_unshifted_external() -> m.Case:
    c = m.gpt2()
    ids = c["inputs"].pop("labels")
    ids = c["inputs"]["input_ids"]

    def loss_fn(out: object, y: torch.Tensor) -> torch.Tensor:  # forgot the shift
        logits = out.logits  # type: ignore[attr-defined]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    return {**c, "targets": ids.clone(), "loss_fn": loss_fn}


def _lstm_lm_unshifted() -> m.Case:
    c = m.lstm_lm()
    return {**c, "targets": c["inputs"].clone()}


def _bert_double_softmax() -> m.Case:
    c = m.bert_cls_external()

    def loss_fn(out: object, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(F.softmax(out.logits, dim=-1), y)  # type: ignore[attr-defined]

    return {**c, "loss_fn": loss_fn}


def _whisper_labels_past_vocab() -> m.Case:
    c = m.whisper()
    c["inputs"]["labels"][:, -1] = 3000 + 7  # token ids of a bigger tokenizer's vocabulary
    return c


def _resnet_lr_for_adam() -> m.Case:
    c = m.resnet18()
    c["optimizer"] = torch.optim.Adam(c["model"].parameters(), lr=1.0)  # SGD's lr on Adam
    return c


def _unet_labels_one_based() -> m.Case:
    c = m.unet()
    return {**c, "targets": c["targets"] + 1}


def _gan_bce_on_logits() -> m.Case:
    c = m.gan_discriminator()
    return {**c, "loss_fn": nn.BCELoss()}  # the discriminator ends without a sigmoid


def _lstm_sigmoid_into_ce() -> m.Case:
    c = m.lstm_classifier()
    base = c["model"]

    class WithSigmoid(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.base(x))  # a sigmoid left on a multi-class head

    model = WithSigmoid()
    return {**c, "model": model, "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


def _multilabel_with_ce() -> m.Case:
    c = m.multilabel()
    return {**c, "loss_fn": nn.CrossEntropyLoss()}  # multi-hot targets through a softmax


def _cnn_init_too_large() -> m.Case:
    c = m.cifar_cnn_label_smoothing()
    with torch.no_grad():
        for mod in c["model"].modules():
            if isinstance(mod, nn.Linear):
                mod.weight.normal_(0, 1.0)  # N(0, 1) head on 128 features
    return c


def _llama_pad_counted() -> m.Case:
    c = m.llama()
    c["inputs"]["labels"] = c["inputs"]["input_ids"].clone()
    return c


def _tagger_pad_counted() -> m.Case:
    c = m.gru_tagger()
    tags = c["targets"].clone()
    tags[tags == -100] = 0  # padding tagged as class 0 instead of ignored
    return {**c, "targets": tags}


def _bert_mlm_unmasked_labels() -> m.Case:
    c = m.bert_mlm()
    labels = c["inputs"]["labels"]
    ids = c["inputs"]["input_ids"]
    c["inputs"]["labels"] = torch.where(labels == -100, ids, labels)  # unmasked positions scored
    return c


BUGS: tuple[Bug, ...] = (
    Bug("bert-labels-1-based", "bert-cls", _bert_labels_one_based,
        frozenset({"labels-out-of-range"}), "1-based labels through out.loss"),
    Bug("gpt2-padding-counted", "gpt2", _gpt2_padding_counted, frozenset({"padding-in-loss"}),
        "labels = input_ids.clone() with right padding (pad = eos)"),
    Bug("llama-padding-counted", "llama", _llama_pad_counted, frozenset({"padding-in-loss"}),
        "labels = input_ids.clone() with right padding (pad id 0)"),
    Bug("gpt2-unshifted-external-loss", "gpt2", _gpt2_unshifted_external,
        frozenset({"labels-copy-inputs"}), "hand-written LM loss without the shift"),
    Bug("lstm-lm-unshifted", "lstm-lm", _lstm_lm_unshifted, frozenset({"labels-copy-inputs"}),
        "targets = inputs"),
    Bug("bert-mlm-unmasked-labels", "bert-mlm", _bert_mlm_unmasked_labels,
        frozenset({"labels-copy-inputs"}), "MLM labels kept on unmasked positions"),
    Bug("bert-double-softmax", "bert-cls-external-loss", _bert_double_softmax,
        frozenset({"double-softmax"}), "softmax before cross_entropy"),
    Bug("whisper-labels-past-vocab", "whisper", _whisper_labels_past_vocab,
        frozenset({"labels-out-of-range"}), "label ids from a larger tokenizer, out.loss path"),
    Bug("resnet-adam-lr-1", "resnet18", _resnet_lr_for_adam, frozenset({"lr-too-high"}),
        "Adam with lr = 1"),
    Bug("unet-labels-1-based", "unet", _unet_labels_one_based, frozenset({"labels-out-of-range"}),
        "segmentation classes 1..4 for 4 logits"),
    Bug("gan-bce-on-logits", "gan-discriminator", _gan_bce_on_logits,
        frozenset({"non-probability-into-prob-loss"}), "BCELoss on a head without sigmoid"),
    Bug("lstm-sigmoid-into-ce", "lstm-classifier", _lstm_sigmoid_into_ce,
        frozenset({"double-softmax", "non-probability-into-prob-loss"}),
        "sigmoid outputs into cross_entropy"),
    Bug("multilabel-with-ce", "multilabel-mlp", _multilabel_with_ce,
        frozenset({"loss-task-mismatch"}), "multi-hot targets into cross-entropy"),
    Bug("cnn-head-n01-init", "cnn-label-smoothing", _cnn_init_too_large,
        frozenset({"init-loss-high"}), "N(0, 1) classifier weights"),
    Bug("tagger-padding-as-class", "gru-tagger", _tagger_pad_counted,
        frozenset({"padding-in-loss"}), "padding tagged class 0, not ignored"),
)
