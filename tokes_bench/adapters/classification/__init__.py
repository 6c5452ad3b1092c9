"""Classification evaluation of an exported encoder: linear probe, fine-tune and kNN (MAE/DINO protocols).

Modules: `config` (protocol settings), `data` (ImageFolder splits and transforms), `features`
(frozen-encoder feature extraction), `linear_probe`, `knn`, `finetune` (mmengine Runner parts),
`lr_decay` (the project's layer-wise lr decay, reusable by the detection/segmentation adapters),
`lars`, `schedule`, `metrics`, `recording` and `cli` (arguments shared by the three commands).
"""
