# MAE baseline (tokes_bench/pretrain/mae.py), the official formulation.
model = dict(
    type="MaePretrainModel",
    arch="vit_base_patch16_224",
    img_size=224,
    mask_ratio=0.75,
    decoder_dim=512,
    decoder_depth=8,
    decoder_heads=16,
    norm_pix_loss=True,
    data_preprocessor=dict(type="ImgDataPreprocessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
)
