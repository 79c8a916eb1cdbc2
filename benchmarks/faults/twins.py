"""The healthy twin of every repairable fault: the same set-up with the bug fixed by hand.

A twin is what a careful engineer would have written instead: same data, seed, architecture and
training set-up, with only the faulty part replaced by its textbook form (He init for a ReLU net,
logits into a logits loss, a mean reduction, AdamW for decoupled decay, a usual learning rate).
Twins are written here by hand, independently of lossdoctor's repairs, so the repair benchmark
(``repair.py``) compares lossdoctor's repaired set-up against the program the user should have
written, not against lossdoctor's own idea of a fix.

Where the fault is the learning rate, the twin's rate is the scenario family's own healthy rate
(SGD 0.01 for the He MLPs, Adam 1e-3: PyTorch's default). Story 1's twin keeps the story's
dropout 0.5 and takes SGD at 0.01 (the default of TensorFlow's and Keras's SGD, the story's
framework): at the story's 0.5 a He-initialised net of that depth diverges too.
"""

from __future__ import annotations

from collections.abc import Callable

import scenarios as s
import torch
from torch import nn

from lossdoctor.examples import digits, he_init, mlp


def story_1() -> s.Case:
    torch.manual_seed(0)
    model = he_init(mlp([64] + [750] * 6 + [10], nn.ReLU, 0.5), torch.Generator().manual_seed(0))
    x, y = digits(seed=0)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.01)}


def story_2() -> s.Case:
    """The story-2 neuron at (w, b) = (2, 2) with its logit into cross-entropy (Nielsen's fix)."""
    neuron = nn.Linear(1, 1)
    with torch.no_grad():
        neuron.weight.fill_(2.0)
        neuron.bias.fill_(2.0)
    return {"model": neuron, "inputs": torch.ones(1, 1), "targets": torch.zeros(1, 1),
            "loss_fn": nn.BCEWithLogitsLoss(),
            "optimizer": torch.optim.SGD(neuron.parameters(), lr=0.15)}


def mean_of(make: Callable[[], s.Case], loss: nn.Module) -> Callable[[], s.Case]:
    def twin() -> s.Case:
        case = make()
        case["loss_fn"] = loss
        return case
    return twin


def adamw_groups() -> s.Case:
    s._seed(27)
    x, y = s.blobs()
    model = s.relu_mlp(2, init="he")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-2},
                             {"params": rest, "weight_decay": 0.0}], lr=1e-3)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": opt}


def decay_weights_only() -> s.Case:
    s._seed(25)
    x, y = s.blobs()
    model = s.relu_mlp(2, init="he")
    opt = torch.optim.SGD([
        {"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 5e-4},
        {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}], lr=0.1)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": opt}


def he_default_20() -> s.Case:
    """He init at depth 20; the scenario's SGD 0.01 with momentum 0.9 (an effective step of 0.1)
    oscillates on the He net (loss 9.7 at step 98), so the twin steps 1e-3 with the momentum."""
    s._seed(20)
    x, y = s.blobs()
    model = s.relu_mlp(20, init="he")
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)}


def relu_he_10() -> s.Case:
    """Deep sigmoid's fix: ReLU with He init (sigmoid's slope is at most 1/4 per layer)."""
    s._seed(32)
    x, y = s.blobs()
    model = s.relu_mlp(10, width=128, init="he")
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.01)}


def he_6() -> s.Case:
    return s._scaled_he(6, 1.0)


def cnn_he() -> s.Case:
    s._seed(30)
    return {"model": s.PlainCNN(scale=1.0), "inputs": torch.randn(32, 1, 12, 12),
            "targets": torch.randint(0, 10, (32,)), "loss_fn": nn.CrossEntropyLoss()}


def live_layer() -> s.Case:
    s._seed(13)
    x, y = s.blobs()
    return {"model": s.relu_mlp(3, init="he"), "inputs": x, "targets": y,
            "loss_fn": nn.CrossEntropyLoss()}


def he_3_sgd() -> s.Case:
    return s.he_mlp(3)()


def he_3_adam() -> s.Case:
    case = s.he_mlp(3)()
    case["optimizer"] = torch.optim.Adam(case["model"].parameters(), lr=1e-3)
    return case


def xavier_tanh_4() -> s.Case:
    s._seed(12)
    x, y = s.blobs()
    return {"model": s.relu_mlp(4, init="xavier-tanh", act=nn.Tanh), "inputs": x, "targets": y,
            "loss_fn": nn.CrossEntropyLoss()}


def head_he() -> s.Case:
    s._seed(11)
    x, y = s.blobs()
    return {"model": s.relu_mlp(2, init="he"), "inputs": x, "targets": y,
            "loss_fn": nn.CrossEntropyLoss()}


def logits_ce() -> s.Case:
    s._seed(15)
    x, y = s.blobs()
    return {"model": s.relu_mlp(2, width=64), "inputs": x, "targets": y,
            "loss_fn": nn.CrossEntropyLoss()}


def logits_bce() -> s.Case:
    s._seed(16)
    x, y = s.blobs(k=2)
    return {"model": s.relu_mlp(2, width=64, k=1), "inputs": x, "targets": y.float().unsqueeze(1),
            "loss_fn": nn.BCEWithLogitsLoss()}


def logits_bce_scaled_head() -> s.Case:
    """sigmoid + MSE's fix: the same confident head, its logits into BCE-with-logits."""
    s._seed(17)
    x, y = s.blobs(k=2)
    model = s.relu_mlp(2, width=64, k=1)
    with torch.no_grad():
        model[-1].weight.mul_(20.0)
    return {"model": model, "inputs": x, "targets": y.float().unsqueeze(1),
            "loss_fn": nn.BCEWithLogitsLoss()}


def standardised_pixels() -> s.Case:
    s._seed(29)
    x, y = s.blobs()
    return {"model": s.relu_mlp(2), "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


def he_2_no_decay() -> s.Case:
    return s.he_mlp(2)()


# twins whose starting point is the story's own, with a true finding that is the story's point
KNOWN = {"story2-saturated-neuron-mse": "init-loss-high"}

# fault name (benchmarks/faults/catalog.py) -> its healthy twin
TWINS: dict[str, Callable[[], s.Case]] = {
    "story1-deep-relu-trunc-normal": story_1,
    "story2-saturated-neuron-mse": story_2,
    "story3-sum-reduction": mean_of(s.summed_ce, nn.CrossEntropyLoss()),
    "story3-adam-coupled-l2": adamw_groups,
    "story3-decay-on-bias": decay_weights_only,
    "vanishing-grad-default-init-20": he_default_20,
    "vanishing-grad-deep-sigmoid": relu_he_10,
    "exploding-grad-he-x4": he_6,
    "exploding-cnn-x6": cnn_he,
    "dying-relu-bias": live_layer,
    "oscillating-loss-sgd": he_3_sgd,
    "slow-convergence-lr-1e-6": he_3_sgd,
    "saturated-tanh-x5": xavier_tanh_4,
    "loss-not-decreasing-lr-20": he_3_sgd,
    "vanishing-signal-x0.2": he_6,
    "wrong-init-huge-head": head_he,
    "high-lr-adam-1": he_3_adam,
    "redundant-softmax-module": logits_ce,
    "redundant-sigmoid-bce-logits": logits_bce,
    "wrong-loss-sigmoid-mse": logits_bce_scaled_head,
    "missing-input-normalisation": standardised_pixels,
    "tanh-on-raw-inputs": s.xavier_tanh,
    "summed-bce-multilabel": mean_of(s.summed_bce_multilabel, nn.BCEWithLogitsLoss()),
    "summed-squares-regression": mean_of(s.summed_squares, nn.MSELoss()),
    "weight-decay-50": he_2_no_decay,
}
