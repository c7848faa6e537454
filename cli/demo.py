"""``medvae demo ...``: the reference examples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae.errors import count
from medvae_cli._help import App
from medvae_cli._options import DEFAULT_DEVICE, Device, Overwrite, Progress, Threads
from medvae_cli._run import parse_floats, parse_ints, run_task

app = App(help="Reference examples that show how a VAE works.", no_args_is_help=True)


@app.command("mnist")
def mnist(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("medvae-mnist"),
    data: Annotated[Optional[Path], typer.Option(help="Folder with the MNIST IDX files (gzipped or not). "
                                                 "Default: the embedded 5,000-digit sample.")] = None,
    download: Annotated[bool, typer.Option(help="Download MNIST (checksummed) into --data "
                                           "(default ~/.cache/medvae/mnist).")] = False,
    model: Annotated[str, typer.Option(help="mlp (the reference 784-256-128 VAE) or conv.")] = "mlp",
    hidden: Annotated[str, typer.Option(help="MLP encoder widths; the decoder mirrors them.")] = "256,128",
    latent_dim: Annotated[int, typer.Option(help="Latent size.")] = 2,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    point: Annotated[str, typer.Option(help="Latent point decoded into sample.png, 'x,y'.")] = "-3,1",
    grid_size: Annotated[int, typer.Option(help="Images per side of manifold.png.")] = 15,
    grid_range: Annotated[float, typer.Option(help="manifold.png covers [-r, r]^2.")] = 3.0,
    nll_k: Annotated[int, typer.Option(help="Importance samples per image for the NLL estimate.")] = 1000,
    nll_images: Annotated[Optional[int], typer.Option(help="Test images for the NLL estimate (default all).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    amp: Annotated[bool, typer.Option(help="Mixed precision: bf16/fp16 on CUDA; bf16 for the MLP's big matmuls "
                                      "on CPUs with native bf16.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue from the training state in --out.")] = False,
    overwrite: Overwrite = False,
    limit: Annotated[Optional[int], typer.Option(help="Use at most N images of each split.")] = None,
    progress: Progress = True,
) -> None:
    """Train the classic MNIST VAE and draw its latent space, manifold, a decoded point and the loss."""
    from medvae.tasks import run_mnist_demo

    result = run_task(
        run_mnist_demo, out=out, data=data, download=download, model=model, hidden=parse_ints("--hidden", hidden),
        latent_dim=latent_dim, epochs=epochs, batch_size=batch_size, lr=lr, point=parse_floats("--point", point, 2),
        grid_size=grid_size, grid_range=grid_range, nll_k=nll_k, nll_images=nll_images, seed=seed, device=device,
        amp=amp, resume=resume, overwrite=overwrite, limit=limit, progress=progress, threads=threads,
    )
    if result is None:  # a non-zero rank of a torchrun job: rank 0 reports
        return
    m, t = result.metrics, result.metrics["test"]
    typer.echo(
        f"trained {m['model']} on {count(m['train_images'], 'image')} ({m['data']}) for "
        f"{count(m['epochs'], 'epoch')}: "
        f"{m['train_seconds']:.1f} s, {m['samples_per_second']:,.0f} images/s on {m['device']}"
    )
    typer.echo(
        f"test ({count(m['test_images'], 'image')}): -ELBO {t['neg_elbo']:.2f} nats (reconstruction "
        f"{t['recon']:.2f} + "
        f"KL {t['kl']:.2f}); NLL ~ {t['nll_importance_sampled']:.2f} nats "
        f"(k={t['nll_k']}, {count(t['nll_images'], 'image')})"
    )
    typer.echo(f"wrote {', '.join(p.name for p in result.files.values())} to {result.out}")
