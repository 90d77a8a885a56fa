"""Speed: games/cifar_dcgan.game (the paper's CIFAR-10 model, synthetic data) under simga, altga and consensus.

The data are random images written in the CIFAR-10 layout to a temporary folder, so no
data set is needed; everything else is the real game: dcgan4 without batch norm, f = 64,
z 256, batch 64, RMSProp. The three solvers run in this process, interleaved in blocks so
that background load affects them alike; the median block gives steps/s. Prints steps/s,
each solver's cost relative to simga (target for consensus: <= 3x) and, with --profile,
where a consensus step spends its time (torch.profiler, operators by self time).

    python benchmarks/speed_cifar.py [--blocks 3] [--block-steps 2] [--threads 1] [--device cpu] [--profile]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import gamedsl  # noqa: E402
import solvers  # noqa: E402
from gamedsl.compile.torch_game import TorchGame, pick_device  # noqa: E402
from gamedsl.data import images  # noqa: E402

METHODS = ("simga", "altga", "consensus")


def make_run(game, method: str, batch: int, device: str) -> solvers.Run:
    torch_game = TorchGame(game, batch=batch, seed=0, device=pick_device(device))
    return solvers.Run(
        torch_game,
        solvers.get(method, **({"gamma": 10.0} if method == "consensus" else {})),
        solvers.optimizers.get("rmsprop", lr=1e-4, alpha=0.9, eps=1e-10),
    )


def block(run: solvers.Run, n: int, device: str) -> float:
    """Seconds per step over n steps of the loop `gamedsl solve` runs (guard included)."""
    start = time.perf_counter()
    solvers.solve(run.game, run.solver, run.engine.optimizer, n, run=run, record_every=n)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n


def measure(game, blocks: int, block_steps: int, batch: int, device: str) -> dict:
    runs = {m: make_run(game, m, batch, device) for m in METHODS}
    for run in runs.values():
        block(run, 1, device)  # warm up (allocator, oneDNN kernels)
    times = {m: [] for m in METHODS}
    for _ in range(blocks):
        for m, run in runs.items():
            times[m].append(block(run, block_steps, device))
    return {m: 1.0 / statistics.median(t) for m, t in times.items()}


def profile(game, batch: int, device: str, steps: int = 2, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    run = make_run(game, "consensus", batch, device)
    block(run, 1, device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with torch_profile(activities=activities) as prof:
        block(run, steps, device)
    key = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--block-steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", action="store_true", help="also profile consensus steps")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        images.write_cifar10(Path(tmp) / "cifar-10-batches-py", per_batch=200)
        images.set_data_root(tmp)
        game = gamedsl.load(ROOT / "games" / "cifar_dcgan.game")
        params = sum(game.parameter_count(p) for p in game.players)
        results = measure(game, args.blocks, args.block_steps, args.batch, args.device)
        report = profile(game, args.batch, args.device) if args.profile else None
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {args.threads} thread(s)"
    print(
        f"cifar_dcgan.game (dcgan4 without batch norm, f=64, z=256, {params:,} parameters), synthetic data, "
        f"batch {args.batch}, RMSProp, {device}, median of {args.blocks} interleaved blocks of {args.block_steps} steps"
    )
    print(f"{'solver':<10} {'steps/s':>9} {'s/step':>8} {'cost vs simga':>14}")
    for method, rate in results.items():
        print(f"{method:<10} {rate:>9.3f} {1 / rate:>8.2f} {results['simga'] / rate:>13.2f}x")
    print(f"consensus/simga cost ratio: {results['simga'] / results['consensus']:.2f}x (target <= 3x)")
    if report:
        print("\nwhere a consensus step spends its time (torch.profiler, by self time):\n" + report)
    if args.json:
        args.json.write_text(json.dumps({"steps_per_second": results, "device": device, "batch": args.batch}, indent=2) + "\n")


if __name__ == "__main__":
    main()
