"""Running trained models over data (aecourse.inference) and the latent-space measurements of chapter 3, checked
against closed forms and library code."""

from __future__ import annotations

import pytest
import torch

from aecourse.data import binarize
from aecourse.evidence.ch3 import elbo_per_image, importance_weighted_curve, iwae_bound
from aecourse.evidence.metrics import active_units
from aecourse.inference import (
    decode,
    encode,
    fit_gaussian,
    interpolate,
    posterior,
    reconstruct,
)
from aecourse.losses import gaussian_kl, vae_batch_loss
from aecourse.models import VAE, Autoencoder


class Identity(torch.nn.Module):
    """A 'decoder' that returns its code: interpolate then shows the path itself."""

    latent_dim = 784

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z


def test_interpolation_is_a_straight_line_with_both_endpoints():
    z_start, z_end = torch.full((784,), 0.1), torch.linspace(0, 1, 784)
    path = interpolate(Identity(), z_start, z_end, 5).reshape(5, 784)
    torch.testing.assert_close(path[0], z_start)
    torch.testing.assert_close(path[-1], z_end)
    torch.testing.assert_close(path[2], (z_start + z_end) / 2)
    steps = path.diff(dim=0)
    torch.testing.assert_close(steps, steps[:1].expand_as(steps))  # equal steps: a line, evenly spaced


def test_interpolation_of_batches_gives_one_path_per_pair():
    z_start, z_end = torch.rand(3, 784), torch.rand(3, 784)
    path = interpolate(Identity(), z_start, z_end, 4)
    assert path.shape == (3, 4, 1, 28, 28)
    torch.testing.assert_close(path[:, 0].reshape(3, 784), z_start)
    torch.testing.assert_close(path[:, -1].reshape(3, 784), z_end)
    with pytest.raises(ValueError, match="num_steps"):
        interpolate(Identity(), z_start, z_end, 1)
    with pytest.raises(ValueError, match="same shape"):
        interpolate(Identity(), z_start, z_end[:2], 4)


def test_fitted_gaussian_recovers_mean_and_covariance():
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0, 0.5])
    scale = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, -0.5, 2.0]])
    z = mean + torch.randn(20000, 3) @ scale.T
    fitted = fit_gaussian(z)
    torch.testing.assert_close(fitted.mean.float(), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(fitted.covariance_matrix.float(), scale @ scale.T, atol=0.1, rtol=0)
    torch.testing.assert_close(fitted.covariance_matrix, torch.cov(z.double().T) + 1e-5 * torch.eye(3))
    samples = fitted.sample((20000,))
    torch.testing.assert_close(samples.mean(0).float(), mean, atol=0.06, rtol=0)
    with pytest.raises(ValueError, match="more codes than dimensions"):
        fit_gaussian(torch.randn(3, 5))


def test_dynamic_binarization_is_binary_unbiased_and_fresh_each_call():
    x = torch.rand(20, 1, 28, 28)
    draws = binarize(x.expand(400, *x.shape).reshape(-1, 1, 28, 28))  # 400 draws of each image
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert float((draws.reshape(400, 20, 1, 28, 28).mean(0) - x).abs().mean()) < 0.03  # E[binarize(x)] = x
    assert not torch.equal(draws[:20], draws[20:40])
    generator = torch.Generator().manual_seed(3)
    again = torch.Generator().manual_seed(3)
    assert torch.equal(binarize(x, generator), binarize(x, again))


def test_binarized_images_train_the_vae_on_binary_targets():
    torch.manual_seed(0)
    model = VAE(latent_dim=4, hidden_dim=16)
    seen = []
    original = model.encode
    model.encode = lambda x: seen.append(x) or original(x)
    loss, terms = vae_batch_loss(model, binarize(torch.rand(8, 784)))
    assert set(seen[0].unique().tolist()) <= {0.0, 1.0}
    assert loss.shape == () and set(terms) == {"reconstruction", "kl"}


def test_active_units_counts_dimensions_whose_mean_varies():
    torch.manual_seed(0)
    mu = torch.zeros(1000, 4)
    mu[:, 0] = torch.randn(1000)  # used: variance 1
    mu[:, 1] = 0.3 * torch.randn(1000)  # used: variance 0.09
    mu[:, 2] = 0.01 * torch.randn(1000)  # collapsed: variance 1e-4
    assert active_units(mu).tolist() == [True, True, False, False]
    assert active_units(mu, threshold=0.5).tolist() == [True, False, False, False]


def test_codes_and_decoded_images_for_an_ae_and_a_vae():
    torch.manual_seed(0)
    x = torch.rand(10, 1, 28, 28)
    vae, ae = VAE(latent_dim=3, hidden_dim=16), Autoencoder(latent_dim=3, hidden_dim=16)
    vae.train()
    mu = encode(vae, x)
    torch.testing.assert_close(mu, vae.encode(x)[0].detach())  # the mean, not a sample
    assert vae.training  # the mode is restored
    torch.testing.assert_close(encode(ae, x), ae.encode(x).detach())
    images = decode(ae, torch.randn(5, 3) * 10)
    assert images.shape == (5, 1, 28, 28) and float(images.min()) >= 0 and float(images.max()) <= 1
    torch.testing.assert_close(reconstruct(vae, x), decode(vae, mu))  # deterministic: the mean code
    assert reconstruct(ae, x.reshape(10, 784)).shape == (10, 784)


def test_posterior_is_the_encoders_over_batches_and_its_kl_adds_up_to_the_rate():
    torch.manual_seed(0)
    vae = VAE(latent_dim=3, hidden_dim=16)
    x = torch.rand(1500, 784)  # more than one batch of 1000
    mu, logvar = posterior(vae, x)
    reference_mu, reference_logvar = vae.encode(x)
    torch.testing.assert_close(mu, reference_mu.detach())
    torch.testing.assert_close(logvar, reference_logvar.detach())
    per_dim = gaussian_kl(mu, logvar).mean(0)  # chapter 3's KL of each latent dimension
    assert per_dim.shape == (3,) and bool((per_dim >= 0).all())
    torch.testing.assert_close(per_dim.sum(), gaussian_kl(mu, logvar).sum(1).mean())


def test_evaluation_mode_is_restored_when_the_model_raises():
    vae = VAE(latent_dim=3, hidden_dim=16)
    vae.train()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encode(vae, torch.full((2, 784), 3.0))
    assert vae.training


def test_importance_weighted_curve_is_seeded_and_starts_at_the_elbo():
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden_dim=16)
    x = torch.rand(12, 784)
    curve = importance_weighted_curve(model, x, [1, 8, 64], batch_size=5, seed=1)
    assert curve == importance_weighted_curve(model, x, [1, 8, 64], batch_size=5, seed=1)
    assert curve[1] < curve[8] < curve[64]
    many_elbos = torch.stack([iwae_bound(model, x, 1).mean() for _ in range(100)]).mean()
    assert abs(curve[1] - float(many_elbos)) < 3.0  # k = 1: one-sample ELBO, noisy on 12 images


def test_chapter_figures_are_closed_figures():
    from matplotlib.figure import Figure

    from aecourse.evidence.figures import latent_scatter, plot_xy

    fig = latent_scatter(torch.randn(30, 2), torch.arange(30) % 3, ["a", "b", "c"], title="t")
    assert isinstance(fig, Figure) and len(fig.axes[0].collections) == 3
    fig = plot_xy({"bound": ([1, 10, 100], [-3.0, -2.0, -1.5])}, xlabel="k", ylabel="nats", logx=True)
    assert isinstance(fig, Figure) and fig.axes[0].get_xscale() == "log"


def test_elbo_per_image_matches_the_batch_loss_and_repeats():
    from aecourse.train import evaluate

    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden_dim=16)
    x = torch.rand(10, 784)
    reconstruction, kl = elbo_per_image(model, x, seed=2)
    assert kl.shape == (10,) and reconstruction.shape == (10,)
    again = elbo_per_image(model, x, seed=2)
    assert torch.equal(reconstruction, again[0]) and torch.equal(kl, again[1])
    scores = evaluate(model, vae_batch_loss, x, batch_size=1000, seed=2)  # the same draws, in one batch
    assert abs(scores["loss"] - float((reconstruction + kl).mean())) < 1e-3
