# MAE linear probe on ImageNet-1K (recipe in _base_/linear_mae_in1k.py).
_base_ = ["./_base_/linear_mae_in1k.py"]
arch = "vit_huge_patch14_224"
