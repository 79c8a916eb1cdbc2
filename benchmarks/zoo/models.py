"""Healthy set-ups of architectures people train, at their library's default initialisation.

Every entry builds a fresh model from a config (no downloads), one batch, the loss people use
with it and the usual optimizer. Hugging Face models are diagnosed the way they are trained:
labels inside the inputs and the loss read from ``out.loss`` (``hf_loss``), or with an
external loss on the logits. Sizes keep each model's topology (depth, blocks, norms, heads)
with widths and inputs cut so a CPU forward+backward takes tens to hundreds of milliseconds.

An entry is ``Setup(name, family, make)``; ``make()`` returns the keyword arguments of
``lossdoctor.diagnose`` (``model``, ``inputs``, ``targets``, ``loss_fn``, ``optimizer``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Case = dict[str, Any]


@dataclass(frozen=True)
class Setup:
    """A zoo entry. ``true_findings``: codes measured to be real on this library default (the
    run scores them apart from false alarms), with ``why`` saying what was checked."""

    name: str
    family: str
    make: Callable[[], Case]
    true_findings: frozenset[str] = frozenset()
    why: str = ""


def hf_loss(out: Any, _targets: Any) -> torch.Tensor:
    """The standard Hugging Face call: the model computed its own loss from ``labels``."""
    return out.loss


def logits_ce(out: Any, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.logits, targets)


def _adamw(model: nn.Module, lr: float = 5e-4) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def _sgd(model: nn.Module, lr: float = 0.05) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)


def _images(n: int = 16, size: int = 64, channels: int = 3) -> torch.Tensor:
    return torch.randn(n, channels, size, size)


def _classes(n: int, k: int) -> torch.Tensor:
    return torch.randint(0, k, (n,))


# ---- vision (transformers) -------------------------------------------------------------------

def _hf_vision(model: nn.Module, k: int, size: int = 64, sgd: bool = False,
               external: bool = False) -> Case:
    x, y = _images(16, size), _classes(16, k)
    opt = _sgd(model) if sgd else _adamw(model)
    if external:
        return {"model": model, "inputs": {"pixel_values": x}, "targets": y,
                "loss_fn": logits_ce, "optimizer": opt}
    return {"model": model, "inputs": {"pixel_values": x, "labels": y}, "targets": None,
            "loss_fn": hf_loss, "optimizer": opt}


def resnet18() -> Case:
    from transformers import ResNetConfig, ResNetForImageClassification
    cfg = ResNetConfig(layer_type="basic", depths=[2, 2, 2, 2], hidden_sizes=[32, 64, 128, 256],
                       embedding_size=32, num_labels=10)
    return _hf_vision(ResNetForImageClassification(cfg), 10, sgd=True)


def resnet50() -> Case:
    from transformers import ResNetConfig, ResNetForImageClassification
    cfg = ResNetConfig(layer_type="bottleneck", depths=[3, 4, 6, 3],
                       hidden_sizes=[64, 128, 256, 512], embedding_size=32, num_labels=100)
    return _hf_vision(ResNetForImageClassification(cfg), 100, sgd=True, external=True)


def mobilenet_v2() -> Case:
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification
    cfg = MobileNetV2Config(depth_multiplier=0.5, image_size=64, num_labels=10)
    return _hf_vision(MobileNetV2ForImageClassification(cfg), 10, sgd=True)


def efficientnet() -> Case:
    from transformers import EfficientNetConfig, EfficientNetForImageClassification
    cfg = EfficientNetConfig(width_coefficient=1.0, depth_coefficient=1.0, hidden_dim=1280,
                             image_size=64, num_labels=10)  # B0

    return _hf_vision(EfficientNetForImageClassification(cfg), 10)


def convnext() -> Case:
    from transformers import ConvNextConfig, ConvNextForImageClassification
    cfg = ConvNextConfig(depths=[2, 2, 6, 2], hidden_sizes=[32, 64, 128, 256], num_labels=10)
    return _hf_vision(ConvNextForImageClassification(cfg), 10)


def vit() -> Case:
    from transformers import ViTConfig, ViTForImageClassification
    cfg = ViTConfig(image_size=32, patch_size=4, hidden_size=128, num_hidden_layers=6,
                    num_attention_heads=4, intermediate_size=512, num_labels=10)
    return _hf_vision(ViTForImageClassification(cfg), 10, size=32)


def deit() -> Case:
    from transformers import DeiTConfig, DeiTForImageClassification
    cfg = DeiTConfig(image_size=32, patch_size=4, hidden_size=128, num_hidden_layers=6,
                     num_attention_heads=4, intermediate_size=512, num_labels=10)
    return _hf_vision(DeiTForImageClassification(cfg), 10, size=32, external=True)


def swin() -> Case:
    from transformers import SwinConfig, SwinForImageClassification
    cfg = SwinConfig(image_size=64, patch_size=4, embed_dim=32, depths=[2, 2, 2],
                     num_heads=[2, 4, 8], window_size=4, num_labels=10)
    return _hf_vision(SwinForImageClassification(cfg), 10)


def regnet() -> Case:  # squeeze-excitation gates in every block
    from transformers import RegNetConfig, RegNetForImageClassification
    cfg = RegNetConfig(layer_type="y", depths=[1, 2, 4, 1], hidden_sizes=[24, 56, 152, 368],
                       groups_width=8, embedding_size=32, num_labels=10)
    return _hf_vision(RegNetForImageClassification(cfg), 10, sgd=True)


# ---- vision (plain torch) --------------------------------------------------------------------

class UNet(nn.Module):
    """The U-Net of Ronneberger et al. (2015), four levels, BN after each conv."""

    def __init__(self, cin: int = 3, classes: int = 4, w: int = 16) -> None:
        super().__init__()

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
                                 nn.Conv2d(b, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU())

        self.down = nn.ModuleList([block(cin, w), block(w, 2 * w), block(2 * w, 4 * w)])
        self.mid = block(4 * w, 8 * w)
        self.up = nn.ModuleList([nn.ConvTranspose2d(8 * w, 4 * w, 2, 2),
                                 nn.ConvTranspose2d(4 * w, 2 * w, 2, 2),
                                 nn.ConvTranspose2d(2 * w, w, 2, 2)])
        self.dec = nn.ModuleList([block(8 * w, 4 * w), block(4 * w, 2 * w), block(2 * w, w)])
        self.head = nn.Conv2d(w, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for d in self.down:
            x = d(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.mid(x)
        for up, dec, s in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(torch.cat([up(x), s], 1))
        return self.head(x)


def unet() -> Case:
    model = UNet()
    return {"model": model, "inputs": _images(8, 64), "targets": torch.randint(0, 4, (8, 64, 64)),
            "loss_fn": nn.CrossEntropyLoss(), "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


class CifarCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for w in (32, 32, 64, 64, 128, 128):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            if w == c:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def cifar_cnn_label_smoothing() -> Case:
    model = CifarCNN()
    return {"model": model, "inputs": _images(32, 32), "targets": _classes(32, 10),
            "loss_fn": nn.CrossEntropyLoss(label_smoothing=0.1), "optimizer": _sgd(model)}


def cifar_cnn_bf16() -> Case:
    model = CifarCNN()

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.float(), y)

    class Autocast(nn.Module):
        def __init__(self, m: nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.m(x)

    wrapped = Autocast(model)
    return {"model": wrapped, "inputs": _images(32, 32), "targets": _classes(32, 10),
            "loss_fn": loss_fn, "optimizer": _sgd(wrapped)}


# ---- text (transformers) ---------------------------------------------------------------------

def _tokens(n: int, t: int, vocab: int) -> torch.Tensor:
    return torch.randint(5, vocab, (n, t))


def bert_cls() -> Case:
    from transformers import BertConfig, BertForSequenceClassification
    cfg = BertConfig(vocab_size=3000, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                     intermediate_size=512, num_labels=3)
    model = BertForSequenceClassification(cfg)
    ids = _tokens(16, 32, 3000)
    mask = torch.ones_like(ids)
    mask[8:, 24:] = 0
    return {"model": model, "inputs": {"input_ids": ids, "attention_mask": mask,
                                       "labels": _classes(16, 3)},
            "targets": None, "loss_fn": hf_loss, "optimizer": _adamw(model, 2e-5)}


def bert_cls_external() -> Case:
    case = bert_cls()
    y = case["inputs"].pop("labels")
    return {**case, "targets": y, "loss_fn": logits_ce}


def bert_mlm() -> Case:
    from transformers import BertConfig, BertForMaskedLM
    cfg = BertConfig(vocab_size=3000, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                     intermediate_size=512)
    model = BertForMaskedLM(cfg)
    ids = _tokens(16, 32, 3000)
    labels = torch.full_like(ids, -100)
    masked = torch.rand(ids.shape) < 0.15
    labels[masked] = ids[masked]
    ids = ids.masked_fill(masked, 4)  # [MASK]
    return {"model": model, "inputs": {"input_ids": ids, "labels": labels}, "targets": None,
            "loss_fn": hf_loss, "optimizer": _adamw(model, 1e-4)}


def _causal_batch(vocab: int, pad: int | None = None) -> dict[str, torch.Tensor]:
    ids = _tokens(8, 64, vocab)
    mask = torch.ones_like(ids)
    labels = ids.clone()
    if pad is not None:  # right padding, masked out of the loss as the collators do
        for i, n in enumerate((64, 64, 48, 40, 64, 32, 56, 64)):
            ids[i, n:] = pad
            mask[i, n:] = 0
            labels[i, n:] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def gpt2() -> Case:
    from transformers import GPT2Config, GPT2LMHeadModel
    cfg = GPT2Config(vocab_size=4000, n_positions=128, n_embd=128, n_layer=4, n_head=4)
    model = GPT2LMHeadModel(cfg)
    return {"model": model, "inputs": _causal_batch(4000, pad=cfg.eos_token_id % 4000),
            "targets": None, "loss_fn": hf_loss, "optimizer": _adamw(model, 3e-4)}


def gpt2_50k() -> Case:
    from transformers import GPT2Config, GPT2LMHeadModel
    cfg = GPT2Config(n_positions=128, n_embd=128, n_layer=2, n_head=4)  # the real 50257 vocab
    model = GPT2LMHeadModel(cfg)
    return {"model": model, "inputs": _causal_batch(cfg.vocab_size), "targets": None,
            "loss_fn": hf_loss, "optimizer": _adamw(model, 3e-4)}


def llama() -> Case:
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=4000, hidden_size=128, intermediate_size=344, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = LlamaForCausalLM(cfg)
    return {"model": model, "inputs": _causal_batch(4000, pad=0), "targets": None,
            "loss_fn": hf_loss, "optimizer": _adamw(model, 3e-4)}


def _seq2seq(model: nn.Module) -> Case:
    return {"model": model, "inputs": {"input_ids": _tokens(8, 48, 3000),
                                       "labels": _tokens(8, 16, 3000)},
            "targets": None, "loss_fn": hf_loss, "optimizer": _adamw(model, 3e-4)}


def t5() -> Case:  # relative-position bucketing takes log(0) and masks it with torch.where
    from transformers import T5Config, T5ForConditionalGeneration
    cfg = T5Config(vocab_size=3000, d_model=128, d_kv=32, d_ff=512, num_layers=3, num_heads=4,
                   decoder_start_token_id=0)
    return _seq2seq(T5ForConditionalGeneration(cfg))


def bart() -> Case:
    from transformers import BartConfig, BartForConditionalGeneration
    cfg = BartConfig(vocab_size=3000, d_model=128, encoder_layers=3, decoder_layers=3,
                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=512,
                     decoder_ffn_dim=512, max_position_embeddings=128)
    return _seq2seq(BartForConditionalGeneration(cfg))


def whisper() -> Case:
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    cfg = WhisperConfig(vocab_size=3000, num_mel_bins=80, d_model=128, encoder_layers=2,
                        decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                        encoder_ffn_dim=512, decoder_ffn_dim=512, max_source_positions=100,
                        max_target_positions=64, decoder_start_token_id=1, pad_token_id=0)
    model = WhisperForConditionalGeneration(cfg)
    return {"model": model, "inputs": {"input_features": torch.randn(4, 80, 200),
                                       "labels": _tokens(4, 16, 3000)},
            "targets": None, "loss_fn": hf_loss, "optimizer": _adamw(model, 3e-4)}


def wav2vec2_ctc() -> Case:
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC
    cfg = Wav2Vec2Config(vocab_size=32, hidden_size=128, num_hidden_layers=3, num_attention_heads=4,
                         intermediate_size=512, conv_dim=(64, 64, 64, 64, 64, 64, 64),
                         num_feat_extract_layers=7, pad_token_id=0, ctc_loss_reduction="mean")
    model = Wav2Vec2ForCTC(cfg)
    labels = torch.randint(1, 32, (4, 12))
    return {"model": model, "inputs": {"input_values": torch.randn(4, 16000), "labels": labels},
            "targets": None, "loss_fn": hf_loss, "optimizer": _adamw(model, 1e-4)}


def clip() -> Case:  # contrastive: the model's own symmetric InfoNCE
    from transformers import CLIPConfig, CLIPModel
    cfg = CLIPConfig(
        text_config={"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "intermediate_size": 256,
                     "max_position_embeddings": 32},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256},
        projection_dim=32)
    model = CLIPModel(cfg)
    return {"model": model, "inputs": {"input_ids": _tokens(16, 16, 1000),
                                       "pixel_values": _images(16, 32), "return_loss": True},
            "targets": None, "loss_fn": hf_loss, "optimizer": _adamw(model, 1e-4)}


# ---- sequence models, generative and self-supervised set-ups (plain torch) --------------------

class LSTMClassifier(nn.Module):
    def __init__(self, vocab: int = 2000, emb: int = 64, hidden: int = 128, classes: int = 5,
                 cell: type[nn.Module] = nn.LSTM) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, emb, padding_idx=0)
        self.rnn = cell(emb, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.emb(x))
        return self.head(h.mean(1))


def lstm_classifier() -> Case:
    model = LSTMClassifier()
    return {"model": model, "inputs": _tokens(32, 40, 2000), "targets": _classes(32, 5),
            "loss_fn": nn.CrossEntropyLoss(), "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


class GRUTagger(nn.Module):
    def __init__(self, vocab: int = 2000, tags: int = 9) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 64, padding_idx=0)
        self.rnn = nn.GRU(64, 128, batch_first=True, bidirectional=True)
        self.head = nn.Linear(256, tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.emb(x))[0]).transpose(1, 2)  # (N, C, T) for CE


def gru_tagger() -> Case:
    model = GRUTagger()
    ids = _tokens(32, 30, 2000)
    tags = torch.randint(0, 9, (32, 30))
    for i in range(0, 32, 3):  # right-padded sentences: pad id 0, tag -100
        ids[i, 20:] = 0
        tags[i, 20:] = -100
    return {"model": model, "inputs": ids, "targets": tags,
            "loss_fn": nn.CrossEntropyLoss(ignore_index=-100),
            "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


class LSTMLanguageModel(nn.Module):
    def __init__(self, vocab: int = 3000) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 128)
        self.rnn = nn.LSTM(128, 256, num_layers=2, batch_first=True, dropout=0.2)
        self.head = nn.Linear(256, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.emb(x))[0])


def lstm_lm() -> Case:
    model = LSTMLanguageModel()
    seq = _tokens(16, 41, 3000)

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    return {"model": model, "inputs": seq[:, :-1], "targets": seq[:, 1:], "loss_fn": loss_fn,
            "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


class TransformerClassifier(nn.Module):
    def __init__(self, vocab: int = 2000, d: int = 128, classes: int = 4, norm_first: bool = True
                 ) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(1, 64, d))
        layer = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.1, batch_first=True,
                                           norm_first=norm_first)
        self.enc = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.enc(self.emb(x) + self.pos[:, : x.shape[1]])
        return self.head(h.mean(1))


def torch_transformer() -> Case:
    model = TransformerClassifier()
    return {"model": model, "inputs": _tokens(32, 48, 2000), "targets": _classes(32, 4),
            "loss_fn": nn.CrossEntropyLoss(), "optimizer": _adamw(model, 3e-4)}


class VAE(nn.Module):
    def __init__(self, d: int = 64, z: int = 8) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 2 * z))
        self.dec = nn.Sequential(nn.Linear(z, 128), nn.ReLU(), nn.Linear(128, d))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, -1)
        zs = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.dec(zs), mu, logvar


def _digits() -> torch.Tensor:
    from sklearn.datasets import load_digits
    x = torch.tensor(load_digits().data[:128], dtype=torch.float32) / 16.0
    return x


def vae() -> Case:
    """The ELBO as the VAE paper and the PyTorch example write it: summed per example, averaged
    over the batch (Bernoulli likelihood on digits scaled to [0, 1])."""
    model = VAE()

    def elbo(out: tuple[torch.Tensor, torch.Tensor, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        logits, mu, logvar = out
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return (rec + kl).mean()

    x = _digits()
    return {"model": model, "inputs": x, "targets": x, "loss_fn": elbo,
            "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


def autoencoder() -> Case:
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8), nn.ReLU(),
                          nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 64), nn.Sigmoid())
    x = _digits()
    return {"model": model, "inputs": x, "targets": x, "loss_fn": nn.MSELoss(),
            "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


class Discriminator(nn.Module):
    """DCGAN's discriminator (Radford et al. 2016): strided convs, BN, LeakyReLU(0.2)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
            nn.Conv2d(128, 1, 4, 1, 0), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def gan_discriminator() -> Case:
    """One discriminator step: real images labelled 1, generated ones 0 (a fixed generator)."""
    model = Discriminator()
    gen = nn.Sequential(nn.ConvTranspose2d(16, 32, 4, 1, 0), nn.BatchNorm2d(32), nn.ReLU(),
                        nn.ConvTranspose2d(32, 3, 8, 4, 2), nn.Tanh())
    with torch.no_grad():
        fake = gen(torch.randn(16, 16, 1, 1))
    real = torch.rand(16, 3, 32, 32) * 2 - 1
    x = torch.cat([real, F.interpolate(fake, size=32)])
    y = torch.cat([torch.ones(16), torch.zeros(16)])
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.BCEWithLogitsLoss(),
            "optimizer": torch.optim.Adam(model.parameters(), 2e-4, betas=(0.5, 0.999))}


class SimCLR(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = CifarCNN()
        self.encoder.head = nn.Linear(128, 128)
        self.proj = nn.Sequential(nn.ReLU(), nn.Linear(128, 64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.encoder(x)), dim=1)


def info_nce(z: torch.Tensor, _y: Any, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent (Chen et al. 2020): two views per image, the diagonal masked with -inf."""
    n = z.shape[0] // 2
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def simclr() -> Case:
    model = SimCLR()
    x = _images(16, 32)
    views = torch.cat([x + 0.1 * torch.randn_like(x), x.flip(3)])
    return {"model": model, "inputs": views, "targets": None, "loss_fn": info_nce,
            "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


def mlp_regression() -> Case:
    model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 1))
    x = torch.randn(128, 20)
    y = x[:, :5].sum(1, keepdim=True) + 0.1 * torch.randn(128, 1)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.MSELoss(),
            "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


def multilabel() -> Case:
    model = nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 256),
                          nn.ReLU(), nn.Linear(256, 12))
    return {"model": model, "inputs": torch.randn(64, 40),
            "targets": (torch.rand(64, 12) < 0.2).float(), "loss_fn": nn.BCEWithLogitsLoss(),
            "optimizer": torch.optim.Adam(model.parameters(), 1e-3)}


ZOO: tuple[Setup, ...] = (
    Setup("resnet18", "vision", resnet18),
    Setup("resnet50", "vision", resnet50),
    Setup("mobilenet-v2", "vision", mobilenet_v2),
    Setup("efficientnet", "vision", efficientnet, frozenset({"signal-vanishing"}),
          "transformers' EfficientNet _init_weights draws BatchNorm2d weights from "
          "N(0, initializer_range=0.02): every BN scales its output to ~0.02, the signal falls "
          "to 1e-21 by block 8, the loss sits at ln 10 = 2.3026 and 25 AdamW steps on one batch "
          "of 16 move it to 2.228 only (the other vision models memorise that batch)"),
    Setup("convnext", "vision", convnext),
    Setup("vit", "vision", vit),
    Setup("deit", "vision", deit),
    Setup("swin", "vision", swin),
    Setup("regnet-se", "vision", regnet),
    Setup("unet", "vision", unet),
    Setup("cnn-label-smoothing", "vision", cifar_cnn_label_smoothing),
    Setup("cnn-bf16-autocast", "vision", cifar_cnn_bf16),
    Setup("bert-cls", "text", bert_cls),
    Setup("bert-cls-external-loss", "text", bert_cls_external),
    Setup("bert-mlm", "text", bert_mlm),
    Setup("gpt2", "text", gpt2),
    Setup("gpt2-50k-vocab", "text", gpt2_50k),
    Setup("llama", "text", llama),
    Setup("t5", "seq2seq", t5),
    Setup("bart", "seq2seq", bart),
    Setup("whisper", "seq2seq", whisper),
    Setup("wav2vec2-ctc", "audio", wav2vec2_ctc),
    Setup("clip", "contrastive", clip),
    Setup("lstm-classifier", "sequence", lstm_classifier),
    Setup("gru-tagger", "sequence", gru_tagger),
    Setup("lstm-lm", "sequence", lstm_lm),
    Setup("torch-transformer", "sequence", torch_transformer),
    Setup("vae", "generative", vae),
    Setup("autoencoder", "generative", autoencoder),
    Setup("gan-discriminator", "generative", gan_discriminator),
    Setup("simclr-infonce", "contrastive", simclr),
    Setup("mlp-regression", "tabular", mlp_regression),
    Setup("multilabel-mlp", "tabular", multilabel),
)
BY_NAME = {s.name: s for s in ZOO}
