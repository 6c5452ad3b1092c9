"""Training throughput of TOKES vs MAE on one device, side by side in one run.

Per method: images/s over timed optimizer steps (after warm-up), peak memory (CUDA: max allocated;
CPU: peak RSS of a fresh child process per method), FLOPs per step (torch's FlopCounterMode) and
achieved TFLOP/s (and MFU when --peak-tflops is given). Then the TOKES/MAE step-time ratio and the
share of TOKES step time spent sampling swaps and mixing tokens (forward side, device-synchronised).

    python benchmarks/pretrain_throughput.py --arch vit_small_patch16_224 --img-size 224 --batch 8 --steps 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, bucket: list, device):
    """Wrap `fn` so each call's wall time (device-synchronised) is appended to `bucket`."""

    def wrapper(*a, **k):
        _sync(device)
        t = time.perf_counter()
        out = fn(*a, **k)
        _sync(device)
        bucket.append(time.perf_counter() - t)
        return out

    return wrapper


def measure(method: str, args: dict) -> dict:
    """Build one objective, time `steps` AdamW steps after `warmup`, return the figures."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tokes_bench.pretrain import tokes
    from tokes_bench.pretrain.mae import MaePretrainModel
    from tokes_bench.pretrain.tokes import TokesPretrainModel

    if args["threads"]:
        torch.set_num_threads(args["threads"])
    device = torch.device(args["device"])
    torch.manual_seed(0)
    cls = TokesPretrainModel if method == "tokes" else MaePretrainModel
    model = cls(arch=args["arch"], img_size=args["img_size"], decoder_dim=args["decoder_dim"],
                decoder_depth=args["decoder_depth"], decoder_heads=args["decoder_heads"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    imgs = torch.randn(args["batch"], 3, args["img_size"], args["img_size"], device=device)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args["dtype"]]
    scaler = torch.amp.GradScaler(device.type, enabled=args["dtype"] == "fp16")

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model(imgs, mode="loss")["loss"]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(args["warmup"]):
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    swap_times: list[float] = []
    if method == "tokes":
        model.plan = _timed(model.plan, swap_times, device)
        tokes.mix_tokens = _timed(tokes.mix_tokens, swap_times, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(args["steps"]):
        step()
    _sync(device)
    elapsed = time.perf_counter() - t0
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    flops = counter.get_total_flops()
    out = {
        "method": method,
        "step_s": elapsed / args["steps"],
        "images_per_s": args["batch"] * args["steps"] / elapsed,
        "peak_mem_mb": peak_mb,
        "gflop_per_step": flops / 1e9,
        "tflops": flops * args["steps"] / elapsed / 1e12,
    }
    if method == "tokes":
        out["swap_share"] = sum(swap_times) / elapsed
    return out


def _child(method: str, args: dict, queue) -> None:
    queue.put(measure(method, args))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="vit_small_patch16_224")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=8, help="per-step batch (even: TOKES pairs images)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--decoder-dim", type=int, default=512)
    p.add_argument("--decoder-depth", type=int, default=8)
    p.add_argument("--decoder-heads", type=int, default=16)
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (e.g. 989 for H100/H200 bf16)")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    a = p.parse_args()
    args = {k: v for k, v in vars(a).items()}
    ctx = mp.get_context("spawn")  # a fresh process per method: separate peak-memory figures
    results = {}
    for method in ("mae", "tokes"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(method, args, queue))
        proc.start()
        results[method] = queue.get()
        proc.join()
    print(f"{a.arch} @ {a.img_size}px, batch {a.batch}, {a.dtype}, {a.device}, {a.steps} timed steps")
    mem = "peak CUDA allocated" if a.device.startswith("cuda") else "peak RSS"
    for m in ("mae", "tokes"):
        r = results[m]
        mfu = f"  MFU {100 * r['tflops'] / a.peak_tflops:.1f}%" if a.peak_tflops else ""
        print(f"{m:6s} {r['images_per_s']:8.2f} img/s  step {r['step_s'] * 1000:8.1f} ms  {mem} "
              f"{r['peak_mem_mb']:8.0f} MiB  {r['gflop_per_step']:8.1f} GFLOP/step  {r['tflops']:.3f} TFLOP/s{mfu}")
    ratio = results["tokes"]["step_s"] / results["mae"]["step_s"]
    print(f"TOKES/MAE step-time ratio: {ratio:.2f}")
    print(f"TOKES swap sampling + mixing share of step time: {100 * results['tokes']['swap_share']:.2f}%")
    if a.json:
        print(json.dumps({"args": args, "results": results, "tokes_mae_ratio": ratio}))


if __name__ == "__main__":
    main()
