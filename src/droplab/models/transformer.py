"""The encoder–decoder transformer of Zhang, Zhou & Xu 2024, App. A (Vaswani et al. 2017, post-norm).

Defaults are the paper's: d_model 50, d_k = d_v = 20, d_ff 256, 4 heads, 3 layers. Dropout
(the models' convention, :mod:`droplab.nn.kinds`: ``dropout`` the drop probability — the paper's
rate 0.9 is a keep probability: ``dropout = 0.1`` —, ``noise`` the kind) is applied to the output
of each sub-layer before it is added to the sub-layer input and normalized, and to the sums of
the embeddings and the positional encodings in both stacks, as in Vaswani et al. §5.4.

Input convention (so that ``loss_fn(model(x), y)`` works like every other model of droplab):
``x`` is (N, 2, L) token ids — ``x[:, 0]`` the source sentence, ``x[:, 1]`` the decoder input
(the target shifted right, starting with BOS); ``y`` is (N, L) the target tokens; ``pad`` marks
padding in both. The output is (N, L, target vocabulary) logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_probability
from droplab.nn.kinds import NoiseFactory, make_noise, places_noise

Layer = Callable[[], nn.Module]  # builds the model's noise layer (or the identity)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with h heads of size d_k (queries, keys) and d_v (values)."""

    def __init__(self, d_model: int, heads: int, d_k: int, d_v: int) -> None:
        super().__init__()
        self.h, self.d_k, self.d_v = heads, d_k, d_v
        self.q = nn.Linear(d_model, heads * d_k)
        self.k = nn.Linear(d_model, heads * d_k)
        self.v = nn.Linear(d_model, heads * d_v)
        self.o = nn.Linear(heads * d_v, d_model)

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor) -> Tensor:
        B, Lq, _ = query.shape
        Lk = memory.shape[1]
        q = self.q(query).view(B, Lq, self.h, self.d_k).transpose(1, 2)   # (B, h, Lq, d_k)
        k = self.k(memory).view(B, Lk, self.h, self.d_k).transpose(1, 2)  # (B, h, Lk, d_k)
        v = self.v(memory).view(B, Lk, self.h, self.d_v).transpose(1, 2)  # (B, h, Lk, d_v)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_k)           # (B, h, Lq, Lk)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        out = scores.softmax(-1) @ v                                       # (B, h, Lq, d_v)
        return self.o(out.transpose(1, 2).reshape(B, Lq, self.h * self.d_v))


class _Sublayer(nn.Module):
    """LayerNorm(x + Dropout(sublayer(x)))."""

    def __init__(self, d_model: int, layer: Layer) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.drop = layer()

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        return self.norm(x + self.drop(out))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, d_k: int, d_v: int, d_ff: int, layer: Layer) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(d_model, heads, d_k, d_v)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))
        self.s1, self.s2 = _Sublayer(d_model, layer), _Sublayer(d_model, layer)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.s1(x, self.attn(x, x, mask))
        return self.s2(x, self.ff(x))


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, d_k: int, d_v: int, d_ff: int, layer: Layer) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, d_k, d_v)
        self.cross_attn = MultiHeadAttention(d_model, heads, d_k, d_v)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))
        self.s1, self.s2, self.s3 = (_Sublayer(d_model, layer) for _ in range(3))

    def forward(self, y: Tensor, memory: Tensor, self_mask: Tensor, cross_mask: Tensor) -> Tensor:
        y = self.s1(y, self.self_attn(y, y, self_mask))
        y = self.s2(y, self.cross_attn(y, memory, cross_mask))
        return self.s3(y, self.ff(y))


def positional_encoding(length: int, d_model: int) -> Tensor:
    """Sinusoidal encodings (Vaswani et al. 2017, §3.5), shape (length, d_model)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = pos / torch.pow(10000.0, i / d_model)
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe


class Transformer(nn.Module):
    """Encoder–decoder transformer; ``forward(x)`` with x = (N, 2, L) → (N, L, tgt_vocab) logits.

    >>> m = Transformer(src_vocab=11, tgt_vocab=13, max_len=6, dropout=0.1)
    >>> m(torch.ones(3, 2, 6, dtype=torch.long)).shape
    torch.Size([3, 6, 13])
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, *, max_len: int = 64, d_model: int = 50, d_k: int = 20,
                 d_v: int = 20, d_ff: int = 256, heads: int = 4, layers: int = 3, dropout: float = 0.0,
                 noise: str | NoiseFactory = "bernoulli", pad: int = 0) -> None:
        super().__init__()
        for name, v in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab), ("max_len", max_len),
                        ("d_model", d_model), ("heads", heads), ("layers", layers)):
            check_int(name, v, minimum=1)
        check_probability("dropout", dropout)
        place = places_noise(noise, dropout)

        def layer() -> nn.Module:  # sub-layer outputs are signed: no activation for Information Dropout's prior
            return make_noise(noise, d_model, activation="linear", p=dropout) if place else nn.Identity()

        self.pad, self.d_model = pad, d_model
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=pad)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=pad)
        self.register_buffer("pe", positional_encoding(max_len, d_model), persistent=False)
        self.src_drop, self.tgt_drop = layer(), layer()
        self.encoder = nn.ModuleList(EncoderLayer(d_model, heads, d_k, d_v, d_ff, layer) for _ in range(layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, heads, d_k, d_v, d_ff, layer) for _ in range(layers))
        self.out = nn.Linear(d_model, tgt_vocab)

    def forward(self, x: Tensor) -> Tensor:
        src, tgt = x[:, 0], x[:, 1]                      # (N, L) each
        L = src.shape[1]
        if L > self.pe.shape[0]:
            raise ValueError(f"sequence length {L} exceeds max_len {self.pe.shape[0]}")
        src_keep = (src != self.pad)[:, None, None, :]    # (N, 1, 1, L): attend to real source tokens
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        tgt_mask = causal[None, None] & (tgt != self.pad)[:, None, None, :]
        scale = math.sqrt(self.d_model)
        h = self.src_drop(self.src_embed(src) * scale + self.pe[:L])
        for layer in self.encoder:
            h = layer(h, src_keep)
        y = self.tgt_drop(self.tgt_embed(tgt) * scale + self.pe[:L])
        for layer in self.decoder:
            y = layer(y, h, tgt_mask, src_keep)
        return self.out(y)


def sequence_loss(pad: int = 0, label_smoothing: float = 0.1) -> Callable[[Tensor, Tensor], Tensor]:
    """Mean token cross-entropy with label smoothing, ignoring ``pad`` targets (the paper's loss)."""

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                           ignore_index=pad, label_smoothing=label_smoothing)

    return loss
