# MAE FINETUNE.md, ViT-Large/16 on ImageNet-1K: 50 epochs, effective batch 1024, blr 1e-3, layer
# decay 0.75, drop path 0.2, wd 0.05, mixup 0.8, cutmix 1.0, reprob 0.25. Published: 85.9 top-1.
_base_ = ["./_base_/finetune_mae.py"]

arch = "vit_large_patch16_224"
dataset = "imagenet-1k"
epochs = 50
warmup_epochs = 5
blr = 1e-3
batch_size = 32  # per GPU; 32 GPUs give 1024
model = dict(drop_path_rate=0.2)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
