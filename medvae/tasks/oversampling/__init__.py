"""Rare classes: a class-conditional VAE-GAN, ``medvae oversample``, and ``evaluate oversampling`` (does it beat class weights, a tuned threshold and SMOTE?)."""
