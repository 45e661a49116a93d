"""Context-token attention: the direct form (project every patch to a key) vs the folded form vidnav uses.

    python bench/context_token.py [--frames 64] [--repeats 5]

LLaMA-VID's context token of a frame scores M instruction queries against the keys of its N patches. The
direct form projects all T·N patches (T·N·C² multiply-adds per sample); vidnav folds the key projection into
the M queries (M·C², then T·N·M·C for the scores). Both give the same tokens (tests/model/test_tokens.py checks
against a loop). Times forward + backward, best of ``--repeats``, one torch thread, for the `tiny` shape
(EfficientNet-Lite0: 8×8 patches × 320 channels, LM width 384) and the NaVid-7B shape (EVA-CLIP-g 16×16 × 1408,
Vicuna width 4096), and prints the speed-up as a ratio within the run.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from vidnav.model.text_query import ContextAttention


def direct(mod: ContextAttention, feats, queries, mask):
    keys = mod.key_proj(feats)
    scores = torch.einsum("mc,tnc->tmn", queries, keys) / math.sqrt(mod.vision_dim)
    attn = scores.softmax(dim=-1)
    w = mask.to(attn.dtype)
    attn = (attn * w[None, :, None]).sum(dim=1) / w.sum().clamp(min=1.0)
    return mod.value_proj(torch.einsum("tn,tnc->tc", attn, feats))


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn().sum().backward()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--queries", type=int, default=40, help="instruction tokens M")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"T = {args.frames} frames, M = {args.queries} queries, forward + backward, 1 thread")
    print("| shape | N patches | C | direct (ms) | folded (ms) | speed-up | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for name, n, c, d in (("tiny", 64, 320, 384), ("navid-7b", 256, 1408, 4096)):
        mod = ContextAttention(384, c, d)
        feats = torch.randn(args.frames, n, c)
        queries = mod.queries(torch.randn(args.queries, 384)).detach()
        mask = torch.ones(args.queries)
        t_direct = best_time(lambda: direct(mod, feats, queries, mask), args.repeats)
        t_folded = best_time(lambda: mod(feats, queries, mask), args.repeats)
        with torch.no_grad():
            diff = float((direct(mod, feats, queries, mask) - mod(feats, queries, mask)).abs().max())
        print(
            f"| {name} | {n} | {c} | {t_direct * 1e3:.1f} | {t_folded * 1e3:.1f} | {t_direct / t_folded:.1f}x "
            f"| {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
