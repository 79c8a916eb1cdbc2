"""Residual networks and transformers at their library's default init, for the theory tests.

Every model is built from a config (no downloads) or from plain torch modules, with a batch;
``per_call_rms`` measures the real rms of every module's output in call order.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossdoctor.probe.hooks import first_tensor


class PreNormBlock(nn.Module):
    """x + attn(LN(x)), then x + MLP(LN(x)) with a GELU MLP (nanoGPT style)."""

    def __init__(self, d: int, heads: int, causal: bool = True) -> None:
        super().__init__()
        self.heads, self.causal = heads, causal
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.view(b, s, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        x = x + self.proj(a.transpose(1, 2).reshape(b, s, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TorchTransformer(nn.Module):
    """Token + learned position embeddings, pre-norm blocks, final LN, linear head."""

    def __init__(self, vocab: int = 256, d: int = 128, depth: int = 4, heads: int = 4,
                 seq: int = 64) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(PreNormBlock(d, heads) for _ in range(depth))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))


class BasicBlock(nn.Module):
    """relu(x + BN(conv(relu(BN(conv(x)))))), optionally without the BNs; ``pre_act``:
    x + conv(relu(BN(conv(relu(BN(x)))))) (He et al. 2016, identity mappings)."""

    def __init__(self, c: int, norm: bool = True, pre_act: bool = False) -> None:
        super().__init__()
        self.pre_act = pre_act
        self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=not norm)
        self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=not norm)
        self.n1 = nn.BatchNorm2d(c) if norm else nn.Identity()
        self.n2 = nn.BatchNorm2d(c) if norm else nn.Identity()
        for conv in (self.c1, self.c2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_act:
            return x + self.c2(torch.relu(self.n2(self.c1(torch.relu(self.n1(x))))))
        out = self.n2(self.c2(torch.relu(self.n1(self.c1(x)))))
        out += x
        return torch.relu(out)


class TorchResNet(nn.Module):
    """A stem conv, ``depth`` basic blocks, global average pooling, a linear head."""

    def __init__(self, c: int = 32, depth: int = 4, norm: bool = True, classes: int = 10,
                 pre_act: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.blocks = nn.Sequential(*(BasicBlock(c, norm, pre_act) for _ in range(depth)))
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(torch.relu(self.stem(x)))
        return self.head(h.mean((2, 3)))


def _hf() -> Any:
    import transformers as tf

    tf.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", module="transformers")
    return tf


def _ids(vocab: int, b: int = 16, s: int = 64) -> torch.Tensor:
    return torch.randint(0, vocab, (b, s), generator=torch.Generator().manual_seed(7))


def _images(b: int = 8, size: int = 32) -> torch.Tensor:
    return torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(7))


def gpt2() -> tuple[nn.Module, Any]:
    tf = _hf()
    cfg = tf.GPT2Config(n_embd=128, n_layer=4, n_head=4, vocab_size=1000, n_positions=128)
    return tf.GPT2LMHeadModel(cfg), {"input_ids": _ids(1000)}


def llama() -> tuple[nn.Module, Any]:
    tf = _hf()
    cfg = tf.LlamaConfig(hidden_size=128, intermediate_size=344, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=1000)
    return tf.LlamaForCausalLM(cfg), {"input_ids": _ids(1000)}


def bert() -> tuple[nn.Module, Any]:
    tf = _hf()
    cfg = tf.BertConfig(hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                        num_attention_heads=4, vocab_size=1000, num_labels=3)
    mask = torch.ones(16, 64, dtype=torch.long)
    mask[1, 40:] = 0
    return tf.BertForSequenceClassification(cfg), {"input_ids": _ids(1000), "attention_mask": mask}


def vit() -> tuple[nn.Module, Any]:
    tf = _hf()
    cfg = tf.ViTConfig(hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                       num_attention_heads=4, image_size=32, patch_size=4, num_labels=10)
    return tf.ViTForImageClassification(cfg), {"pixel_values": _images()}


def hf_resnet() -> tuple[nn.Module, Any]:
    tf = _hf()
    cfg = tf.ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128], depths=[2, 2, 2],
                          layer_type="bottleneck", num_labels=10)
    return tf.ResNetForImageClassification(cfg), {"pixel_values": _images(size=64)}


def torch_transformer() -> tuple[nn.Module, Any]:
    return TorchTransformer(), _ids(256)


def torch_resnet() -> tuple[nn.Module, Any]:
    return TorchResNet(), _images()


ZOO: dict[str, Callable[[], tuple[nn.Module, Any]]] = {
    "gpt2": gpt2, "llama": llama, "bert": bert, "vit": vit, "hf-resnet": hf_resnet,
    "torch-prenorm-transformer": torch_transformer, "torch-resnet": torch_resnet,
}


def per_call_rms(model: nn.Module, inputs: Any, seed: int = 0) -> list[tuple[str, float]]:
    """(module name, rms of its output) for every module call, in the order calls return."""
    from lossdoctor.probe.run import call_model

    out: list[tuple[str, float]] = []
    handles = []
    for name, m in model.named_modules():
        def hook(mod: nn.Module, args: Any, output: Any, _n: str = name or type(m).__name__
                 ) -> None:
            t = first_tensor(output)
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                out.append((_n, math.sqrt(float(t.detach().double().pow(2).mean()))))
        handles.append(m.register_forward_hook(hook))
    try:
        torch.manual_seed(seed)
        with torch.no_grad():
            call_model(model, inputs)
    finally:
        for h in handles:
            h.remove()
    return out
