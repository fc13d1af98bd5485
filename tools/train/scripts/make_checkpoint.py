"""Writes a random SAFE checkpoint in the authors' exact format (torch.save zip pickle with
`model_state_dict` (`module.`-prefixed) and `ViT_model_state_dict`), without torch: the pickle
names torch's rebuild function and storage class the way torch.save does, and candle's reader
(which safe-train uses) reads it as it reads the real thing.

usage: python make_checkpoint.py OUT.pth [--preset vit-b16|tiny] [--classes C] [--seed S]
"""

import argparse
import collections
import io
import pickle
import sys
import types
import zipfile

import numpy as np

# Stand-ins for the two torch names a checkpoint's pickle refers to; only their names matter.
_torch = types.ModuleType("torch")
_utils = types.ModuleType("torch._utils")


def _rebuild_tensor_v2(*args):  # pragma: no cover - never called, only named
    raise RuntimeError("stand-in")


_rebuild_tensor_v2.__module__ = "torch._utils"
_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class FloatStorage:
    pass


FloatStorage.__module__ = "torch"
_torch.FloatStorage = FloatStorage
_torch._utils = _utils
sys.modules.setdefault("torch", _torch)
sys.modules.setdefault("torch._utils", _utils)


class _Storage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class _Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (_rebuild_tensor_v2, (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", FloatStorage, obj.key, "cpu", obj.numel)
        return None


PRESETS = {
    # vision width/layers/patch/image, text width/layers, fusion width, fusion ViT depth
    "vit-b16": dict(vw=768, vl=12, patch=16, image=224, tw=512, tl=12, d=768, depth=12),
    "tiny": dict(vw=64, vl=2, patch=4, image=56, tw=64, tl=2, d=768, depth=2),
}


def shapes(p, classes):
    vw, tw, d, e = p["vw"], p["tw"], p["d"], 512
    t = (p["image"] // p["patch"]) ** 2 + 1
    clip = {
        "visual.conv1.weight": (vw, 3, p["patch"], p["patch"]),
        "visual.class_embedding": (vw,),
        "visual.positional_embedding": (t, vw),
        "visual.ln_pre.weight": (vw,), "visual.ln_pre.bias": (vw,),
        "visual.ln_post.weight": (vw,), "visual.ln_post.bias": (vw,),
        "visual.proj": (vw, e),
        "token_embedding.weight": (49408, tw),
        "positional_embedding": (77, tw),
        "ln_final.weight": (tw,), "ln_final.bias": (tw,),
        "text_projection": (tw, e),
        "logit_scale": (),
    }
    for prefix, w, layers in [("visual.transformer", vw, p["vl"]), ("transformer", tw, p["tl"])]:
        for k in range(layers):
            b = f"{prefix}.resblocks.{k}"
            clip.update({
                f"{b}.attn.in_proj_weight": (3 * w, w), f"{b}.attn.in_proj_bias": (3 * w,),
                f"{b}.attn.out_proj.weight": (w, w), f"{b}.attn.out_proj.bias": (w,),
                f"{b}.ln_1.weight": (w,), f"{b}.ln_1.bias": (w,),
                f"{b}.mlp.c_fc.weight": (4 * w, w), f"{b}.mlp.c_fc.bias": (4 * w,),
                f"{b}.mlp.c_proj.weight": (w, 4 * w), f"{b}.mlp.c_proj.bias": (w,),
                f"{b}.ln_2.weight": (w,), f"{b}.ln_2.bias": (w,),
            })
    block = {
        "norm1.weight": (d,), "norm1.bias": (d,), "attn.qkv.weight": (3 * d, d), "attn.qkv.bias": (3 * d,),
        "attn.proj.weight": (d, d), "attn.proj.bias": (d,), "norm2.weight": (d,), "norm2.bias": (d,),
        "mlp.fc1.weight": (4 * d, d), "mlp.fc1.bias": (4 * d,), "mlp.fc2.weight": (d, 4 * d), "mlp.fc2.bias": (d,),
    }
    fusion = {
        "tex_embed": (1, 1, d), "rgb_embed": (1, 1, d), "event_embed": (1, 1, d), "CLS_token": (1, 10, d),
        "word_embed.weight": (d, e), "word_embed.bias": (d,), "visual_embed.weight": (d, e), "visual_embed.bias": (d,),
        "norm.weight": (d,), "norm.bias": (d,),
        "self_attention.query.weight": (d, d), "self_attention.query.bias": (d,),
        "self_attention.key.weight": (d, d), "self_attention.key.bias": (d,),
        "self_attention.value.weight": (d, d), "self_attention.value.bias": (d,),
        "cross_model.query.weight": (d, d), "cross_model.key.weight": (d, d), "cross_model.value.weight": (d, d),
        "fc1.weight": (classes, 10 * d), "fc1.bias": (classes,),
        # Keys the forward does not read, as in the authors' file.
        "bn.weight": (d,), "vit.cls_token": (1, 1, d),
    }
    fusion.update({f"blocks.0.{k}": s for k, s in block.items()})
    fusion.update({f"vit.blocks.{p['depth'] - 1}.{k}": s for k, s in block.items()})
    return clip, fusion


def random_tensor(rng, name, shape):
    n = int(np.prod(shape)) if shape else 1
    if name.endswith(("ln_1.weight", "ln_2.weight", "norm1.weight", "norm2.weight", "ln_pre.weight",
                      "ln_post.weight", "ln_final.weight", "norm.weight")):
        return (1.0 + 0.05 * rng.standard_normal(n)).astype(np.float32)
    fan_in = shape[-1] if len(shape) >= 2 else 1
    scale = 0.02 if len(shape) < 2 else 1.0 / np.sqrt(fan_in)
    return (scale * rng.standard_normal(n)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--preset", default="vit-b16", choices=PRESETS)
    ap.add_argument("--classes", type=int, default=114)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    clip, fusion = shapes(PRESETS[args.preset], args.classes)
    storages = []

    def state(entries, prefix):
        out = collections.OrderedDict()
        for name, shape in entries.items():
            data = random_tensor(rng, name, shape)
            key = str(len(storages))
            storages.append((key, data))
            out[prefix + name] = _Tensor(_Storage(key, data.size), list(shape))
        return out

    obj = {"model_state_dict": state(fusion, "module."), "ViT_model_state_dict": state(clip, ""), "epoch": 0}
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    root = "checkpoint"
    with zipfile.ZipFile(args.out, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{root}/data.pkl", buf.getvalue())
        z.writestr(f"{root}/byteorder", "little")
        for key, data in storages:
            z.writestr(f"{root}/data/{key}", data.tobytes())
        z.writestr(f"{root}/version", "3\n")
    print(f"wrote {args.out}: {sum(d.size for _, d in storages) / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main()
