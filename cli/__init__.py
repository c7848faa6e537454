"""The ``medvae`` command line (installed as the package ``medvae_cli``). Typer only; no torch at import."""
