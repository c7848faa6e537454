"""``medvae score`` and ``medvae evaluate anomaly``: anomaly scores of a VAE trained on normal images."""
