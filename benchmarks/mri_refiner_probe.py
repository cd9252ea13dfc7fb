"""Probe: can a 3-D network learn to correct ``nlm-wiener`` on brains it never saw? (Measured: no.)

The networks trained on Colin27 and on other brains score 0.1–1.1 dB *below* NLM on unseen brains
(``benchmarks/history.md``). This probe asks whether a network does better as a second stage: a
residual U-Net (``models/resunet.py``, 3-D, the shipped network's size) that takes the ``nlm-wiener``
estimate ``p``, the noisy volume ``y`` and ``σ`` and returns ``p + r(p, y, σ)``, trained to the clean volume.

``train`` (needs a GPU in practice): for ``--seconds-pairs`` seconds it draws Rician noise on whole
training volumes (σ uniform in 1–10 % of each volume's maximum, one draw per pair, cycling over the
volumes), denoises each with ``nlm-wiener`` on the GPU (``tasks/denoise_mri.denoise_volume``), and keeps
the scaled ``(p, y, clean, σ)`` on the GPU. It then trains on random 64×64×48 patches of them (8 per
step, random flips and an in-plane transpose, L1, Adam 5e-4 → 1e-5 cosine, gradient norm clipped at
0.2) for ``--steps`` steps and writes ``--out`` (a checkpoint ``denoise --model`` would refuse: it takes
3 input channels).

``score`` (CPU): on whole volumes with Rician σ = 5 % of the maximum (``medrestore degrade --seed 0``), the
``nlm-wiener`` output and the refined one (mean over the volume and its left-right flip), PSNR inside the
brain (voxels > 0, peak = maximum)::

    python benchmarks/mri_refiner_probe.py train --volumes ch2.nii.gz fsaverage_brain.nii.gz --out refiner.pt
    python benchmarks/mri_refiner_probe.py score refiner.pt --volumes results/brain-templates/sri24.nii.gz

Trained on Colin27 and fsaverage (193 pairs in 110 s, 9 847 steps in 119 s on one H100), it changed
``nlm-wiener`` by −0.01 dB on SRI24 (34.41 → 34.40) and −0.02 dB on OASIS (34.14 → 34.12).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from medrestore.data.mri import intensity_scale
from medrestore.io import read_image
from medrestore.metrics import psnr
from medrestore.models import create_model
from medrestore.physics.noise import add_rician_noise
from medrestore.tasks.denoise_mri import denoise_volume

OPTIONS = {"spatial_ndim": 3, "in_channels": 3, "out_channels": 1, "widths": [32, 64, 128], "blocks": [2, 2, 1], "unshuffle": 2, "residual": True}
"""The shipped 3-D network's architecture with 3 input channels: ``(p, y, σ)``; the residual is added to ``p``."""
PATCH = (64, 64, 48)
BATCH = 8


def network_input(pilot: torch.Tensor, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(3, *spatial)``: the pilot, the noisy volume and a constant σ map (all in the same scaled units)."""
    return torch.stack([pilot, noisy, torch.full_like(noisy, sigma)])


def train(volumes: list[Path], out: Path, seconds_pairs: float, steps: int, device: torch.device) -> None:
    """Draw ``(pilot, noisy, clean, σ)`` pairs for ``seconds_pairs`` seconds, then train ``steps`` steps."""
    generator = torch.Generator().manual_seed(0)
    cleans = [read_image(path).data.to(torch.float32) for path in volumes]
    pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]] = []
    started = time.time()
    while time.time() - started < seconds_pairs:
        clean = cleans[len(pairs) % len(cleans)]
        sigma = float(clean.max()) * (0.01 + 0.09 * float(torch.rand((), generator=generator)))
        noisy = add_rician_noise(clean, sigma, generator)
        pilot, _ = denoise_volume(noisy, "nlm-wiener", sigma, None, device)
        scale = intensity_scale(noisy)
        pairs.append((pilot.div(scale).to(device), noisy.div(scale).to(device), clean.div(scale).to(device), sigma / scale))
    print(f"{len(pairs)} pairs in {time.time() - started:.0f} s", flush=True)
    torch.manual_seed(0)
    network = create_model("resunet", OPTIONS).to(device)
    optimiser = torch.optim.Adam(network.parameters(), lr=5e-4)
    started = time.time()
    for step in range(steps):
        for group in optimiser.param_groups:
            group["lr"] = 1e-5 + 0.5 * (5e-4 - 1e-5) * (1 + math.cos(math.pi * step / steps))
        inputs, targets = [], []
        for _ in range(BATCH):
            pilot, noisy, clean, sigma = pairs[int(torch.randint(len(pairs), (1,)))]
            box = tuple(slice(s, s + p) for s, p in zip((int(torch.randint(n - p + 1, (1,))) for n, p in zip(clean.shape, PATCH)), PATCH))
            x, y = network_input(pilot[box], noisy[box], sigma), clean[box][None]
            for axis in (1, 2, 3):
                if float(torch.rand(())) < 0.5:
                    x, y = x.flip(axis), y.flip(axis)
            if float(torch.rand(())) < 0.5:
                x, y = x.transpose(1, 2), y.transpose(1, 2)
            inputs.append(x)
            targets.append(y)
        loss = (network(torch.stack(inputs)) - torch.stack(targets)).abs().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 0.2)
        optimiser.step()
        if step % 1000 == 0 or step == steps - 1:
            print(f"step {step} loss {loss.item():.5f} {time.time() - started:.0f} s", flush=True)
    torch.save({"model": {"name": "resunet", "options": OPTIONS, "state_dict": network.state_dict()}}, out)


def score(checkpoint: Path, volumes: list[Path], workdir: Path) -> None:
    """PSNR in the brain of ``nlm-wiener`` and of its refinement on each volume (σ = 5 %, seed 0, 2 threads)."""
    torch.set_num_threads(2)
    entry = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    network = create_model(entry["name"], entry["options"])
    network.load_state_dict(entry["state_dict"])
    network.eval()
    workdir.mkdir(parents=True, exist_ok=True)
    for path in volumes:
        noisy_path = workdir / f"noisy-{path.name}"
        command = [sys.executable, "-m", "medrestore.cli.main", "degrade", str(path), "-o", str(noisy_path), "--kind", "rician", "--relative-sigma", "0.05", "--seed", "0"]
        subprocess.run(command, check=True, capture_output=True)
        clean = read_image(path).data.numpy().astype(np.float64)
        brain, peak = clean > 0, float(clean.max())
        noisy = read_image(noisy_path).data.to(torch.float32)
        pilot, sigma = denoise_volume(noisy, "nlm-wiener", None, None, torch.device("cpu"))
        scale = intensity_scale(noisy)
        x = network_input(pilot / scale, noisy / scale, sigma / scale)[None]
        with torch.inference_mode():
            refined = 0.5 * (network(x) + network(x.flip(2)).flip(2))[0, 0].clamp_min(0.0) * scale
        print(f"{path.name}: nlm-wiener {psnr(pilot.numpy().astype(np.float64), clean, peak, brain):.2f} dB, "
              f"refined {psnr(refined.numpy().astype(np.float64), clean, peak, brain):.2f} dB", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    training = commands.add_parser("train")
    training.add_argument("--volumes", type=Path, nargs="+", required=True, help="clean training volumes")
    training.add_argument("--out", type=Path, required=True)
    training.add_argument("--seconds-pairs", type=float, default=110.0)
    training.add_argument("--steps", type=int, default=9847)
    training.add_argument("--device", default="cuda")
    scoring = commands.add_parser("score")
    scoring.add_argument("checkpoint", type=Path)
    scoring.add_argument("--volumes", type=Path, nargs="+", required=True, help="clean volumes never trained on")
    scoring.add_argument("--workdir", type=Path, default=Path("results") / "mri-refiner-probe")
    arguments = parser.parse_args(argv)
    if arguments.command == "train":
        train(arguments.volumes, arguments.out, arguments.seconds_pairs, arguments.steps, torch.device(arguments.device))
    else:
        score(arguments.checkpoint, arguments.volumes, arguments.workdir)


if __name__ == "__main__":
    main()
