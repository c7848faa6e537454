"""Chest X-rays: train, apply and evaluate the enhancer and the lung segmenter, and the check that an input is a frontal chest film."""
