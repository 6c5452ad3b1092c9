# TOKES objective (tokes_bench/pretrain/tokes.py); every ablation is one of these values.
model = dict(
    type="TokesPretrainModel",
    arch="vit_base_patch16_224",
    img_size=224,
    swap_ratio=0.5,  # share of slots exchanged between the two images of a pair
    mix_rule="random",  # random: exactly round(N x ratio) slots | bernoulli: each slot with p = ratio
    positions="aligned",  # aligned: same slots in both images | shuffled: partner tokens from random other slots
    restrict_attention=False,  # True: tokens attend only to tokens of their own source image (MixMAE)
    loss_on="swapped",  # swapped: loss on exchanged slots only | all: every slot
    aux_weight=0.0,  # > 0: per-token "foreign or own" head with this loss weight (MixedAE)
    decoder_dim=512,
    decoder_depth=8,
    decoder_heads=16,
    norm_pix_loss=True,
    data_preprocessor=dict(type="ImgDataPreprocessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
)
