"""Generative models: train a VAE or VAE-GAN, generate from it, evaluate it (Fréchet distance with a digit classifier medvae trains)."""
