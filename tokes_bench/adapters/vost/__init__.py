"""VOST / DAVIS-2017 video object segmentation: readers, official-equivalent scoring, label propagation.

Modules: `layout` (dataset and result folders, validated PNG reading), `palette` (indexed PNG
output), `metrics` (per-frame J and F, mean/recall/decay), `scoring` (streaming scorer and the
official CSVs), `propagation` (DINO's frozen-feature label propagation).
"""
