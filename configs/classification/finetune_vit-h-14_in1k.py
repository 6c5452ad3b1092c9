# MAE FINETUNE.md, ViT-Huge/14 on ImageNet-1K at 224 px: 50 epochs, effective batch 1024, blr 1e-3,
# layer decay 0.75, drop path 0.3, wd 0.05, mixup 0.8, cutmix 1.0, reprob 0.25. Published: 86.9 top-1.
_base_ = ["./_base_/finetune_mae.py"]

arch = "vit_huge_patch14_224"
dataset = "imagenet-1k"
epochs = 50
warmup_epochs = 5
blr = 1e-3
batch_size = 32  # per GPU; 32 GPUs give 1024
model = dict(drop_path_rate=0.3)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
