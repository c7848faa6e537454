"""Baselines that ``medvae evaluate anomaly`` runs beside the VAE's scores, fitted on the same normal images.

* ``pca``: reconstruction error from the principal components keeping 95 % of the normals' variance
  (scikit-learn's ``PCA``);
* ``knn``: mean Euclidean distance to the 5 nearest normal training images (``NearestNeighbors``);
* ``autoencoder``: a plain autoencoder of the VAE's own architecture (its config with no KL term), trained here
  on the same images for the same epochs, scored by the reconstruction error of the code (convolutional models;
  not for the MNIST demo's MLP, whose fused loss always holds the KL term);
* ``mean_distance``: an image-level classical score, the distance to the mean normal image.
"""

from __future__ import annotations

import numpy as np

BASELINES = ("pca", "knn", "autoencoder", "mean_distance")


def fit_baselines(train, *, model_kind: str, model_config: dict, epochs: int = 10, seed: int = 0,
                  device: str = "cpu"):
    """Fit every baseline on ``train`` ``(N, C, *spatial)`` normals (the autoencoder on ``device``); returns
    ``{name: score(images) -> (M,)}``."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    flat = train.flatten(1).numpy().astype(np.float64)
    pca = PCA(n_components=0.95, svd_solver="full", random_state=seed).fit(flat)
    knn = NearestNeighbors(n_neighbors=5).fit(flat)
    mean = flat.mean(0)
    ae = _train_autoencoder(train, model_kind, model_config, epochs, seed, device) if model_kind != "mlp_vae" else None

    def pca_score(images):
        x = images.flatten(1).numpy().astype(np.float64)
        return ((x - pca.inverse_transform(pca.transform(x))) ** 2).sum(1)

    def knn_score(images):
        return knn.kneighbors(images.flatten(1).numpy().astype(np.float64))[0].mean(1)

    def ae_score(images):
        import torch

        with torch.no_grad():
            x = images.to(next(ae.parameters()).device)
            mu, _ = ae.encode(x)
            return (x - ae.mean_image(ae.decode(mu))).square().flatten(1).sum(1).cpu().numpy()

    def mean_score(images):
        return np.sqrt(((images.flatten(1).numpy() - mean) ** 2).sum(1))

    fitted = {"pca": pca_score, "knn": knn_score, "autoencoder": ae_score, "mean_distance": mean_score}
    return {k: v for k, v in fitted.items() if k != "autoencoder" or ae is not None}


def _train_autoencoder(train, kind: str, config: dict, epochs: int, seed: int, device: str = "cpu"):
    """The VAE's architecture with beta 0 and a Bernoulli decoder (a plain autoencoder), trained on ``train``."""
    import torch

    from medvae.data.datasets import TensorBatches
    from medvae.models import build_model
    from medvae.train.config import TrainConfig
    from medvae.train.loop import fit

    torch.manual_seed(seed)
    cfg = {**config, "beta": 0.0, "kl_warmup_epochs": 0, "likelihood": "bernoulli"}
    model = build_model("conv_vae", {k: v for k, v in cfg.items() if k in _conv_fields()})
    fit(model, TensorBatches({"image": train}), None, TrainConfig(epochs=epochs, batch_size=64, seed=seed,
                                                                  progress=False, device=device))
    return model.eval()


def _conv_fields() -> set[str]:
    import dataclasses

    from medvae.models import ConvVAEConfig

    return {f.name for f in dataclasses.fields(ConvVAEConfig)}
