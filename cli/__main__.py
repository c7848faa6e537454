from medvae_cli.main import app

app(prog_name="medvae")
