"""Layer-wise learning-rate decay for timm ViTs: MAE's `param_groups_lrd` rule and an mmengine constructor.

Rule (facebookresearch/mae `util/lr_decay.py`): with L transformer blocks, patch/cls/pos embeddings
sit at layer 0, block i (0-based) at layer i+1 and everything else (final norm, head, necks) at
layer L+1; a parameter at layer l gets lr scale `decay ** (L + 1 - l)`. 1-D parameters (norms,
biases) and the names in `no_weight_decay_list` get no weight decay. Parameters are matched by
timm names anywhere in a dotted path (`blocks.3.`, `encoder.blocks.3.`, `backbone.vit.blocks.3.`),
so wrappers of the encoder (classifier, mmdet/mmseg backbones) reuse it unchanged. mmseg's
`LayerDecayOptimizerConstructor` expects `backbone.layers.N` names and does not fit timm's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
_EMBED = re.compile(r"(?:^|\.)(?:patch_embed\.|(?:cls_token|pos_embed|reg_token|dist_token|mask_token)$)")


def count_blocks(model: nn.Module) -> int:
    """Number of transformer blocks: distinct `blocks.N` indices among the parameter names."""
    ids = {int(m.group(1)) for n, _ in model.named_parameters() if (m := _BLOCK.search(n))}
    if not ids:
        raise ValueError("layer decay needs a ViT with parameters named 'blocks.N.*'; found none")
    return max(ids) + 1


def layer_id_for_vit(name: str, num_blocks: int) -> int:
    """Layer index of a parameter: 0 for embeddings, i+1 for block i, num_blocks+1 for the rest."""
    if _EMBED.search(name):
        return 0
    m = _BLOCK.search(name)
    if m:
        return int(m.group(1)) + 1
    return num_blocks + 1


def _in_list(name: str, names: Iterable[str]) -> bool:
    return any(name == n or name.endswith("." + n) for n in names)


def param_groups_lrd(
    model: nn.Module,
    weight_decay: float = 0.05,
    no_weight_decay_list: Iterable[str] = (),
    layer_decay: float = 0.75,
    num_blocks: int | None = None,
) -> list[dict]:
    """Parameter groups with `lr_scale` and `weight_decay`, as MAE's `param_groups_lrd` builds them.

    Frozen parameters (requires_grad False) are left out. Each group also carries its `name`
    (`layer_<id>_<decay|no_decay>`) for logging and tests.
    """
    no_wd = tuple(no_weight_decay_list)
    depth = count_blocks(model) if num_blocks is None else num_blocks
    scales = [layer_decay ** (depth + 1 - i) for i in range(depth + 2)]
    groups: dict[str, dict] = {}
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (p.ndim == 1 or _in_list(n, no_wd))
        layer = layer_id_for_vit(n, depth)
        key = f"layer_{layer}_{'decay' if decay else 'no_decay'}"
        if key not in groups:
            groups[key] = {
                "name": key,
                "lr_scale": scales[layer],
                "weight_decay": weight_decay if decay else 0.0,
                "params": [],
            }
        groups[key]["params"].append(p)
    return list(groups.values())


def no_weight_decay_names(model: nn.Module) -> list[str]:
    """Full names of the parameters every submodule declares through timm's `no_weight_decay()`."""
    out = []
    for prefix, mod in model.named_modules():
        fn = getattr(mod, "no_weight_decay", None)
        if callable(fn):
            out.extend(f"{prefix}.{n}" if prefix else n for n in fn())
    return out


@OPTIM_WRAPPER_CONSTRUCTORS.register_module(name="TokesLayerDecayOptimWrapperConstructor")
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine optimizer-wrapper constructor applying `param_groups_lrd` to the whole model.

    `paramwise_cfg`: `layer_decay_rate` (required), optional `no_weight_decay_list` (names added to
    those declared by `no_weight_decay()`), optional `num_blocks`. Each group's lr is
    `optimizer.lr * lr_scale`, so mmengine's schedulers (which scale each group's initial lr)
    reproduce MAE's per-group schedule.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, "module"):
            model = model.module
        cfg = dict(self.paramwise_cfg or {})
        unknown = sorted(set(cfg) - {"layer_decay_rate", "no_weight_decay_list", "num_blocks"})
        if unknown or "layer_decay_rate" not in cfg:
            raise KeyError(
                f"paramwise_cfg of TokesLayerDecayOptimWrapperConstructor: unknown keys {unknown} "
                f"or missing 'layer_decay_rate' (got {sorted(cfg)})"
            )
        optimizer_cfg = self.optimizer_cfg.copy()
        base_lr = optimizer_cfg["lr"]
        groups = param_groups_lrd(
            model,
            weight_decay=optimizer_cfg.get("weight_decay", 0.0),
            no_weight_decay_list=no_weight_decay_names(model) + list(cfg.get("no_weight_decay_list", [])),
            layer_decay=cfg["layer_decay_rate"],
            num_blocks=cfg.get("num_blocks"),
        )
        for g in groups:
            g["lr"] = base_lr * g["lr_scale"]
        optimizer_cfg["params"] = groups
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault("type", "OptimWrapper")
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
