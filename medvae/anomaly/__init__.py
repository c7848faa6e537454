"""Anomaly scoring with a VAE trained on normal images (An & Cho 2015): scores, calibration on held-out normals,
and the metrics and baselines that judge them."""
