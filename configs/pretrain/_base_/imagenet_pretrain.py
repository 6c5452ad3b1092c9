# ImageNet-1k (ImageFolder layout) with MAE's pretraining augmentation.
img_size = 224
train_dataloader = dict(
    batch_size=64,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type="SeededAugSampler", shuffle=True),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(
        type="PretrainImageFolder",
        data_root=None,  # filled from the top-level data_root
        split="train",
        img_size=224,
        crop_scale=(0.2, 1.0),
        hflip=True,
        on_corrupt="fail",  # or "skip": log, count and use the next image
    ),
)
