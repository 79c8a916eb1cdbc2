"""Bugs from PyTorch forum threads (discuss.pytorch.org), found through their titles; the
threads' code is paraphrased in each port's notes, the data is bundled or generated."""

from __future__ import annotations

import torch
from bug import Program, Registry
from common import bundled
from torch import nn

bug = Registry("forums")
BUGS = bug.bugs


@bug("discuss.pytorch.org/t/43814", title="Cross Entropy loss is not decreasing",
     symptom="loss stays at 2.30 = ln 10 every epoch", cause="the network's softmax output is "
     "passed to nn.CrossEntropyLoss, which applies log-softmax again (the accepted answer's "
     "first point)", expected=("double-softmax",),
     fix="return the logits; CrossEntropyLoss applies the softmax",
     notes="the thread's classifier rebuilt as a ReLU MLP on digits (10 classes), Adam 1e-3")
def pt_43814(fixed: bool) -> Program:
    x, y = bundled("digits")
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                      nn.Linear(64, 10), *([] if fixed else [nn.Softmax(dim=1)]))
    acc = lambda o, yy: (o.argmax(1) == yy).float().mean().item()  # noqa: E731
    return Program(m, x / 16, y, nn.CrossEntropyLoss(), torch.optim.Adam(m.parameters(), 1e-3),
                   64, 300, 10, acc)


class CBOW(nn.Module):
    """Averaged context embeddings projected to the vocabulary, then a softmax."""

    def __init__(self, vocab: int, dim: int, softmax: bool) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, vocab)
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.out(self.emb(x).mean(1))
        return torch.softmax(z, -1) if self.softmax else z


@bug("discuss.pytorch.org/t/61183", title="How exactly should I understand the cross entropy "
     "loss function?", symptom="RuntimeError: Dimension out of range", cause="one-hot target "
     "rows (as long) given to nn.CrossEntropyLoss, which wants class indices, on top of a "
     "softmax output", expected=("head-label-mismatch", "double-softmax", "loss-task-mismatch"),
     fix="class-index targets and logits",
     notes="vocabulary 85,000 -> 500; generated (context, word) pairs where the word is the "
           "context's first token")
def pt_61183(fixed: bool) -> Program:
    g = torch.Generator().manual_seed(0)
    ctx = torch.randint(0, 500, (2000, 4), generator=g)
    word = ctx[:, 0]
    m = CBOW(500, 32, softmax=not fixed)
    y = word if fixed else nn.functional.one_hot(word, 500).long()
    acc = (lambda o, yy: (o.argmax(1) == yy).float().mean().item()) if fixed else None
    return Program(m, ctx, y, nn.CrossEntropyLoss(), torch.optim.Adam(m.parameters(), 1e-2), 64,
                   300, 500 if fixed else 0, acc)



