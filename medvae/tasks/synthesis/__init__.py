"""Missing-modality synthesis: train the conditional VAE-GAN, synthesise, evaluate against baselines."""
