"""Fine-tuning: a copy of the base model trained with MultipleNegativesRankingLoss on one source's triplets.

Training uses a small explicit PyTorch loop around sentence-transformers' own loss (the Trainer needs the
``datasets`` and ``accelerate`` packages, which this project does not ship): AdamW, linear warm-up then linear
decay, gradient clipping, no duplicate query or positive inside a batch (they would be false in-batch negatives).
MNRL: Henderson et al., arXiv 1705.00652 §4.4; in-batch negatives as in DPR (Karpukhin et al., arXiv 2004.04906 §3.2).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.embed.encoders import get_encoder
from ecisem_core.errors import InputError
from ecisem_core.io.evaldata import normalise_query
from tqdm.auto import tqdm

PER_SOURCE: int = 500
"""Triplets per source used for fine-tuning (all sources get the same number: the smallest available if less)."""
EPOCHS: int = 1
"""Passes over each source's triplets."""
LEARNING_RATE: float = 2e-5
"""Peak AdamW learning rate."""
BATCH_SIZE: int = 32
"""Triplets per batch; each query sees the other 2·(B−1) passages of its batch as in-batch negatives."""
WARMUP_RATIO: float = 0.1
"""Share of the training steps over which the learning rate rises linearly from 0 (then decays linearly to 0)."""
WEIGHT_DECAY: float = 0.01
"""AdamW weight decay (not applied to biases and LayerNorm weights)."""
MAX_GRAD_NORM: float = 1.0
"""Gradient-norm clipping."""
MNRL_SCALE: float = 20.0
"""Scale (inverse temperature) of MultipleNegativesRankingLoss: logits = 20 · cosine."""
MAX_SEQ_LENGTH: int | None = 128
"""Tokens per text in training and evaluation (None: the model's own, 256 for all-MiniLM-L6-v2, which was itself
trained at 128). Measured on 2 CPU cores, batch 32 of MS MARCO triplets: 128 tokens → 5.7 s/step and 4.2 GB peak
memory; 256 → 13 s/step and 7.4 GB (activation memory grows with batch × length)."""
DEFAULT_BASE_MODEL: str = "default"
"""The offline default all-MiniLM-L6-v2 (see :func:`ecisem_core.embed.encoders.get_encoder`)."""


@dataclass(frozen=True)
class TrainConfig:
    """The fine-tuning budget. Everything here is part of the cache key."""

    per_source: int = PER_SOURCE
    epochs: int = EPOCHS
    lr: float = LEARNING_RATE
    batch_size: int = BATCH_SIZE
    warmup_ratio: float = WARMUP_RATIO
    weight_decay: float = WEIGHT_DECAY
    max_grad_norm: float = MAX_GRAD_NORM
    scale: float = MNRL_SCALE
    max_seq_length: int | None = MAX_SEQ_LENGTH

    def __post_init__(self) -> None:
        problems = []
        if self.per_source < 1:
            problems.append(f"per_source must be >= 1 (got {self.per_source})")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1 (got {self.epochs})")
        if not (math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"lr must be > 0 (got {self.lr})")
        if self.batch_size < 2:
            problems.append(f"batch_size must be >= 2 (got {self.batch_size})")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if self.max_seq_length is not None and self.max_seq_length < 8:
            problems.append(f"max_seq_length must be >= 8 (got {self.max_seq_length})")
        if problems:
            raise InputError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_base(spec: str | None = DEFAULT_BASE_MODEL) -> tuple[Any, Any]:
    """(encoder, SentenceTransformer) for a base-model spec: ``"default"`` (offline all-MiniLM-L6-v2), a
    sentence-transformers model name or a local path. The encoder (the untrained base) is also the target encoder
    used to score the sources."""
    encoder = get_encoder(None if spec in (None, "", DEFAULT_BASE_MODEL) else spec)
    model = getattr(encoder, "model", None)
    if model is None or not hasattr(model, "encode"):
        raise InputError(f"base model {spec!r} is not a sentence-transformers model; it cannot be fine-tuned")
    return encoder, model


def make_batches(keys: Sequence[frozenset[str]], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffle the items, then fill batches greedily so that no two items of a batch share a key.

    Keys are (normalised query, positive text): a repeated query or positive inside a batch would be a false
    in-batch negative. Items that do not fit are deferred to later batches; every item is used exactly once.
    """
    remaining = rng.permutation(len(keys)).tolist()
    batches: list[list[int]] = []
    while remaining:
        batch: list[int] = []
        seen: set[str] = set()
        left: list[int] = []
        for i in remaining:
            if len(batch) < batch_size and not (keys[i] & seen):
                batch.append(i)
                seen |= keys[i]
            else:
                left.append(i)
        batches.append(batch)
        remaining = left
    return batches


def linear_schedule(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: step/warmup during warm-up, then (total − step)/(total − warmup), floored at 0."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def fine_tune(base: Any, triplets: pd.DataFrame, config: TrainConfig, seed: int,
              progress: bool = False, desc: str = "train") -> Any:
    """A fine-tuned copy of ``base`` (the base is untouched).

    Loss: MultipleNegativesRankingLoss on (query, positive, negative): for query i of a batch of B,
    ℓ_i = −log softmax_j(scale · cos(q_i, d_j))[p_i] over d_j ∈ {p_1..p_B, n_1..n_B}.
    Optimiser AdamW(lr, weight decay), linear warm-up over ``warmup_ratio`` of the steps then linear decay,
    gradient norm clipped to ``max_grad_norm``. Seeded: ``random``, numpy and torch.
    """
    import torch

    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(base)
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    loss_fn = MultipleNegativesRankingLoss(model, scale=config.scale)
    queries = triplets["query"].astype(str).tolist()
    positives = triplets["positive"].astype(str).tolist()
    negatives = triplets["negative"].astype(str).tolist()
    keys = [frozenset({"q:" + normalise_query(q), "p:" + p}) for q, p in zip(queries, positives)]
    epochs = [make_batches(keys, config.batch_size, rng) for _ in range(config.epochs)]
    total = sum(len(b) for b in epochs)
    warmup = int(round(config.warmup_ratio * total))
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": config.weight_decay},
         {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0}],
        lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_schedule(s, total, warmup))
    model.train()
    with tqdm(total=total, desc=desc, leave=False, disable=not progress, unit="step") as bar:
        for batches in epochs:
            for batch in batches:
                features = [model.preprocess([col[i] for i in batch]) for col in (queries, positives, negatives)]
                loss = loss_fn(features, torch.empty(0))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model


def truncated(model: Any, max_seq_length: int | None) -> Any:
    """``model`` itself, or a copy limited to ``max_seq_length`` tokens (the base is never modified)."""
    if max_seq_length is None:
        return model
    model = copy.deepcopy(model)
    model.max_seq_length = max_seq_length
    return model


def embedding_dim(model: Any) -> int | None:
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        fn = getattr(model, name, None)
        if fn is not None:
            try:
                dim = fn()
            except Exception:  # noqa: BLE001 - fall through to the next accessor
                continue
            if dim:
                return int(dim)
    return None
