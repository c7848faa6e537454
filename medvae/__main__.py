"""``python -m medvae`` (and ``torchrun -m medvae``) runs the command line."""

from medvae_cli.main import app

app(prog_name="medvae")
