# TOKES pretraining of ViT-T/16 on ImageNet-1k at 224 px with MAE's 800-epoch recipe.
# Effective batch 4096 = 64 per process x 64 processes (or raise optim_wrapper.accumulative_counts);
# lr follows blr x effective batch / 256. Run: tokes-bench pretrain THIS --cfg-options data_root=/path/to/imagenet
_base_ = [
    "./_base_/default_runtime.py",
    "./_base_/imagenet_pretrain.py",
    "./_base_/mae_recipe_800e.py",
    "./_base_/tokes_model.py",
]
model = dict(arch="vit_tiny_patch16_224")
