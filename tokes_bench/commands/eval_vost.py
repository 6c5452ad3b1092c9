"""`tokes-bench eval vost`: DINO label propagation with a frozen encoder, then VOST / DAVIS scoring."""

from __future__ import annotations

import argparse

COMMAND = ("eval", "vost")
HELP = "propagate first-frame masks with frozen encoder features (DINO protocol) and score them (J, J_tr)"

DEMO_SIZE = (128, 192)
DATASET_NAMES = {"vost": "vost", "davis": "davis2017"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tokes_bench.adapters.vost.params import PropagationConfig

    d = PropagationConfig()
    parser.add_argument("--encoder", required=True, help="exported encoder .safetensors or random:<arch>")
    parser.add_argument("--data-root", metavar="DIR", help="dataset root (VOST or DAVIS-2017 layout)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="generate the embedded demo videos (into WORK_DIR/vost-demo-data unless --data-root) and use them",
    )
    parser.add_argument("--set", default="val", help="split listed in ImageSets (default: val)")
    parser.add_argument("--protocol", choices=("vost", "davis"), default="vost", help="layout and metrics")
    parser.add_argument("--work-dir", default="work_dirs/eval_vost", help="predictions and CSVs go here")
    parser.add_argument("--results", default="work_dirs/results.jsonl", metavar="FILE", help="records file")
    parser.add_argument("--dataset-name", help="dataset in the records (default: vost, davis2017 or vost-demo)")
    parser.add_argument(
        "--frames",
        choices=("auto", "10fps", "all"),
        default="auto",
        help="VOST frames to propagate through: JPEGImages_10fps when present (auto), or JPEGImages (all)",
    )
    parser.add_argument("--n-last-frames", type=int, default=d.n_last_frames, help="previous frames in context")
    parser.add_argument(
        "--size-mask-neighborhood", type=int, default=d.size_mask_neighborhood, help="radius in patches (0: none)"
    )
    parser.add_argument("--topk", type=int, default=d.topk, help="context tokens kept per target token")
    parser.add_argument("--temperature", type=float, default=d.temperature, help="affinity = exp(cos / T)")
    parser.add_argument("--short-side", type=int, help=f"frame short side (default {d.short_side}; demo 128)")
    parser.add_argument("--size-multiple", type=int, default=d.size_multiple, help="long side floored to this")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="frames per feature forward pass")
    parser.add_argument("--ignore-void", action="store_true", help="exclude 255 pixels when scoring")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--workers", type=int, help="scoring threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed (initialises random:<arch> encoders)")


def run(args: argparse.Namespace) -> int:
    import logging
    import math
    from pathlib import Path

    import torch

    from tokes_bench.adapters.vost.layout import make_layout
    from tokes_bench.adapters.vost.pipeline import propagate_split
    from tokes_bench.adapters.vost.propagation import PropagationConfig, ViTFeatures, native_img_size
    from tokes_bench.adapters.vost.scoring import evaluate, format_tables, summarize, write_csvs
    from tokes_bench.models import load_encoder
    from tokes_bench.results.records import append_records, records_for_run

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    work = Path(args.work_dir)
    if args.demo:
        from tokes_bench.data.vost_demo import write_vost_demo

        if args.protocol != "vost":
            raise ValueError("--demo data is in the VOST layout: use --protocol vost")
        data_root = write_vost_demo(Path(args.data_root or work / "vost-demo-data"), size=DEMO_SIZE, split=args.set)
    elif not args.data_root:
        raise ValueError("give --data-root DIR (or --demo for the embedded demo videos)")
    else:
        data_root = Path(args.data_root)
    cfg = PropagationConfig(
        n_last_frames=args.n_last_frames,
        size_mask_neighborhood=args.size_mask_neighborhood,
        topk=args.topk,
        temperature=args.temperature,
        short_side=args.short_side or (DEMO_SIZE[0] if args.demo else PropagationConfig.short_side),
        size_multiple=args.size_multiple,
        batch_size=args.batch_size,
    )
    layout = make_layout(data_root, args.protocol)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)
    model, info = load_encoder(args.encoder, img_size=native_img_size(args.encoder), dynamic_img_size=True)
    extractor = ViTFeatures(model.to(device))
    pred_dir = work / "predictions"
    n_frames = propagate_split(layout, args.set, extractor, cfg, pred_dir, args.frames, device)
    ev = evaluate(layout, args.set, pred_dir, args.ignore_void, args.workers, progress=print)
    write_csvs(ev, work, args.set)
    print(format_tables(ev, args.set))

    glob, _ = summarize(ev)
    metrics = {"J": glob["J-Mean"], "J_tr": glob["J_last-Mean"]}
    if args.protocol == "davis":
        metrics.update({"J&F": glob["J&F-Mean"], "F": glob["F-Mean"]})
    cfg_dict = {**cfg.as_dict(), "protocol": args.protocol, "frames": args.frames, "ignore_void": args.ignore_void}
    extra = {
        "predictions": str(pred_dir),
        "propagated_frames": n_frames,
        "scored_frames": ev.frames,
        "objects": len(ev.objects),
        "propagation": cfg_dict,
        **{k: v for k, v in glob.items() if k not in ("J-Mean", "J_last-Mean") and math.isfinite(v)},
    }
    dataset = args.dataset_name or ("vost-demo" if args.demo else DATASET_NAMES[args.protocol])
    percent = {name: round(100.0 * value, 4) for name, value in metrics.items()}
    records = records_for_run(info, "vost", args.protocol, dataset, args.set, percent, cfg_dict, args.seed, extra,
                              run_prefix="vost")
    append_records(args.results, records)
    summary = ", ".join(f"{r.metric}={r.value:.2f}" for r in records)
    print(f"\nappended {len(records)} records to {args.results}: {summary}")
    return 0
