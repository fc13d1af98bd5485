"""The PyTorch twin of safe-train's `tiny` preset, for tools/bench/train.sh: the same SAFE
model (tools/train/src/model/mod.rs, op for op: CLIP vision and text encoders, the fusion
block, self- and cross-attention, CLS tokens, fc1), the same parameter count, batch, frames,
optimizer (AdamW, weight decay, clipping over all parameters) and threads, fed batches built as
safe-train builds them (5 random frames per modality, pad, random crop, flip, normalise) from
the same dataset's images. Prints one JSON object: median milliseconds per phase, as
`safe-train bench --json` does.

    usage: train_torch.py DATA --text-len L [--steps N] [--warmup N] [--threads T]
"""

import argparse
import json
import math
import os
import random
import statistics
import sys
import time

# This folder's profile.py would shadow the standard library's, which torch imports.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

SIZE, PATCH, WIDTH, LAYERS, TEXT_LAYERS, CLS_TOKENS, FRAMES = 64, 8, 64, 2, 1, 10, 5
TOKENS = (SIZE // PATCH) ** 2 + 1


class Block(torch.nn.Module):
    """CLIP's residual block (QuickGELU, LayerNorm eps 1e-5) or timm's (GELU, eps 1e-6)."""

    def __init__(self, w, clip):
        super().__init__()
        eps = 1e-5 if clip else 1e-6
        self.ln_1, self.ln_2 = torch.nn.LayerNorm(w, eps=eps), torch.nn.LayerNorm(w, eps=eps)
        self.qkv = torch.nn.Linear(w, 3 * w)
        self.proj = torch.nn.Linear(w, w)
        self.fc = torch.nn.Linear(w, 4 * w)
        self.out = torch.nn.Linear(4 * w, w)
        self.clip = clip

    def forward(self, x, mask=None):
        q, k, v = self.qkv(self.ln_1(x)).chunk(3, dim=-1)
        x = x + self.proj(attention(q, k, v, mask))
        h = self.fc(self.ln_2(x))
        h = h * torch.sigmoid(1.702 * h) if self.clip else F.gelu(h)
        return x + self.out(h)


def attention(q, k, v, mask=None):
    """One head, as every attention of the tiny preset (widths 64, heads = width / 64)."""
    att = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        att = att + mask
    return att.softmax(-1) @ v


class TinySafe(torch.nn.Module):
    def __init__(self, classes, text_len):
        super().__init__()
        w = WIDTH
        self.conv1 = torch.nn.Linear(3 * PATCH * PATCH, w, bias=False)
        self.class_embedding = torch.nn.Parameter(torch.randn(w) * w**-0.5)
        self.visual_pos = torch.nn.Parameter(torch.randn(TOKENS, w) * w**-0.5)
        self.ln_pre, self.ln_post = torch.nn.LayerNorm(w), torch.nn.LayerNorm(w)
        self.visual = torch.nn.ModuleList(Block(w, True) for _ in range(LAYERS))
        self.visual_proj = torch.nn.Parameter(torch.randn(w, w) * w**-0.5)
        self.token_embedding = torch.nn.Embedding(49408, w)
        self.positional_embedding = torch.nn.Parameter(torch.randn(77, w) * 0.01)
        self.text = torch.nn.ModuleList(Block(w, True) for _ in range(TEXT_LAYERS))
        self.ln_final = torch.nn.LayerNorm(w)
        self.text_projection = torch.nn.Parameter(torch.randn(w, w) * w**-0.5)
        self.tex_embed, self.rgb_embed, self.event_embed = (
            torch.nn.Parameter(torch.randn(1, 1, w) * 0.02) for _ in range(3))
        self.cls = torch.nn.Parameter(torch.randn(1, CLS_TOKENS, w) * 0.02)
        self.word_embed, self.visual_embed = torch.nn.Linear(w, w), torch.nn.Linear(w, w)
        self.block = Block(w, False)
        self.norm = torch.nn.LayerNorm(w, eps=1e-6)
        self.sq, self.sk, self.sv = (torch.nn.Linear(w, w) for _ in range(3))
        self.cq, self.ck, self.cv = (torch.nn.Linear(w, w, bias=False) for _ in range(3))
        self.fc1 = torch.nn.Linear(CLS_TOKENS * w, classes)
        self.register_buffer("mask", torch.full((text_len, text_len), float("-inf")).triu(1))
        self.classes = classes

    def encode_images(self, images):
        n, g = images.shape[0], SIZE // PATCH
        patches = images.reshape(n, 3, g, PATCH, g, PATCH).permute(0, 2, 4, 1, 3, 5).reshape(n, g * g, -1)
        x = self.conv1(patches)
        x = torch.cat([self.class_embedding.expand(n, 1, -1), x], 1) + self.visual_pos
        x = self.ln_pre(x)
        for b in self.visual:
            x = b(x)
        return self.ln_post(x) @ self.visual_proj

    def text_features(self, ids, eot):
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        for b in self.text:
            x = b(x, self.mask)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), eot] @ self.text_projection

    def self_attention(self, x):
        return attention(self.sq(x), self.sk(x), self.sv(x))

    def cross_attention(self, t, y):
        k = self.ck(y)
        return attention(self.cq(t), k, self.cv(k))

    def forward(self, rgb, event, ids, eot):
        b, f = rgb.shape[:2]
        tokens = self.encode_images(torch.cat([rgb.flatten(0, 1), event.flatten(0, 1)]))
        mean = tokens.reshape(2, b, f, TOKENS, -1).mean(2)
        r = self.visual_embed(mean[0]) + self.rgb_embed
        e = self.visual_embed(mean[1]) + self.event_embed
        text = (self.word_embed(self.text_features(ids, eot)).unsqueeze(0) + self.tex_embed).expand(b, -1, -1)
        x = self.norm(self.block(torch.cat([text, r, e], 1)))
        c = self.classes
        t, both = x[:, :c], x[:, c:]
        out = self.self_attention(both)
        vr, ve = out[:, :TOKENS], out[:, TOKENS:]
        cross = self.cross_attention(t, vr) + self.cross_attention(t, ve)
        z = self.self_attention(torch.cat([vr + ve, cross, self.cls.expand(b, -1, -1)], 1))
        return self.fc1(z[:, TOKENS + c:].flatten(1)).log_softmax(-1)


def load(data):
    """Every train sample's frames and event images, resized to SIZE once (as safe-train)."""
    root = os.path.join(data, "train")
    labels = [l.strip() for l in open(os.path.join(data, "labels.txt")) if l.strip()]
    samples = []
    for y, label in enumerate(labels):
        for name in sorted(os.listdir(os.path.join(root, label))):
            d = os.path.join(root, label, name)
            imgs = lambda sub: np.stack([
                np.asarray(Image.open(os.path.join(d, sub, p)).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
                for p in sorted(os.listdir(os.path.join(d, sub)))])
            samples.append((y, imgs(f"{name}_aps"), imgs(f"{name}_dvs")))
    return labels, samples


def make_batch(items, rng):
    """5 sorted random frames per modality, one pad-crop-flip per sample, normalised to [-1, 1]."""
    pad = max(1, round(10 * SIZE / 224))
    out = np.zeros((2, len(items), FRAMES, 3, SIZE, SIZE), np.float32)
    for i, (_, rgb, ev) in enumerate(items):
        dx, dy, flip = rng.randint(0, 2 * pad), rng.randint(0, 2 * pad), rng.random() < 0.5
        idx = sorted(rng.sample(range(len(rgb)), FRAMES))
        for m, frames in enumerate((rgb, ev[[min(j * len(ev) // len(rgb), len(ev) - 1) for j in idx]])):
            x = frames[idx] if m == 0 else frames
            x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))[:, dy:dy + SIZE, dx:dx + SIZE]
            if flip:
                x = x[:, :, ::-1]
            out[m, i] = x.transpose(0, 3, 1, 2) / 127.5 - 1.0
    y = torch.tensor([s[0] for s in items])
    return torch.from_numpy(out[0]), torch.from_numpy(out[1]), y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--text-len", type=int, required=True, help="tokens per class name (safe-train bench --json)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    labels, samples = load(a.data)
    model = TinySafe(len(labels), a.text_len)
    ids = torch.randint(1, 49407, (len(labels), a.text_len))
    eot = torch.full((len(labels),), a.text_len - 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    phases = {k: [] for k in ("batch", "forward", "backward", "clip", "optimizer", "step")}
    per_epoch = len(samples) // a.batch_size
    order = list(range(len(samples)))
    for s in range(a.warmup + a.steps):
        if s % per_epoch == 0:
            rng.shuffle(order)
        at = (s % per_epoch) * a.batch_size
        t0 = time.perf_counter()
        rgb, ev, y = make_batch([samples[i] for i in order[at:at + a.batch_size]], rng)
        t1 = time.perf_counter()
        loss = F.nll_loss(model(rgb, ev, ids, eot), y)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        t4 = time.perf_counter()
        opt.step()
        t5 = time.perf_counter()
        if s >= a.warmup:
            for k, (x, z) in zip(phases, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t0, t5)]):
                phases[k].append((z - x) * 1e3)
    out = {f"{k}_ms": statistics.median(v) for k, v in phases.items()}
    out.update(steps=a.steps, parameters=sum(p.numel() for p in model.parameters()),
               torch=torch.__version__, threads=torch.get_num_threads())
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
