"""Tests for chapter 4's mechanics: the classifier and its checkpoint, the Fréchet distance against the closed form,
the class histogram, the GAN losses against their formulas, the GAN loop's bookkeeping and seeding, and the
sampling and smoothness measurements that treat the GAN and the VAE alike."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aecourse.checkpoints import CheckpointError
from aecourse.data import FashionMNIST
from aecourse.evidence import classifier as clf
from aecourse.evidence.ch4 import (
    class_histogram,
    distance_from_uniform,
    divergence,
    edge_energy,
    generator_gradient_norms,
    gradient_norm,
    interpolation_steps,
    jump_ratio,
    missing_classes,
    sampling_seconds,
)
from aecourse.evidence.metrics import frechet_distance
from aecourse.gan import GAN, discriminator_loss, generator_loss, train_gan
from aecourse.inference import generate, interpolate
from aecourse.runtime import RETRAIN_ENV
from tools import train_checkpoints

# Chapter 4's measurements live in its evidence module (aecourse/evidence/ch4.py); they are tested here.


def gaussian_frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The closed form ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the reference `frechet_distance` is held to
    (Dowson & Landau 1982; Heusel et al. 2017). Tr (S1 S2)^(1/2) is the sum of the square roots of the eigenvalues
    of the symmetric S1^(1/2) S2 S1^(1/2), which stays finite for singular covariances (dead ReLU features)."""
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    middle = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.sqrt(middle.clip(min=0)).sum())


class Identity(nn.Module):
    """Features = the input rows themselves, so the Fréchet distance can be checked on Gaussian samples."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1)


def _sample_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), np.cov(x, rowvar=False)


def test_gaussian_frechet_distance_matches_one_dimensional_formula():
    # In 1-D with variances s1^2, s2^2 the distance is (m1 - m2)^2 + (s1 - s2)^2.
    value = gaussian_frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-0.5]), np.array([[0.25]]))
    assert value == pytest.approx(1.5**2 + (2.0 - 0.5) ** 2)


def test_gaussian_frechet_distance_commuting_covariances():
    a, b = np.array([1.0, 2.0, 9.0]), np.array([4.0, 2.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, 2.0])
    expected = 1.0 + 4.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert gaussian_frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)
    assert gaussian_frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_agrees_with_closed_form_on_the_same_samples():
    rng = np.random.default_rng(0)
    root = rng.normal(size=(4, 4))
    x_real = rng.normal(size=(3000, 4)) @ root + 1.0
    x_fake = rng.normal(size=(2000, 4)) * np.array([1.0, 2.0, 0.5, 1.0])
    expected = gaussian_frechet_distance(*_sample_stats(x_real), *_sample_stats(x_fake))
    got = frechet_distance(torch.tensor(x_real).float(), torch.tensor(x_fake).float(), Identity(4), batch_size=700)
    assert got == pytest.approx(expected, rel=1e-4)


def test_frechet_distance_estimates_the_population_distance():
    torch.manual_seed(0)
    n, dim = 40_000, 3
    x_real = torch.randn(n, dim)
    x_fake = torch.randn(n, dim) * 2.0 + torch.tensor([1.0, 0.0, 0.0])
    # population: ||mu||^2 = 1, and each dimension adds (1 - 2)^2 = 1
    assert frechet_distance(x_real, x_fake, Identity(dim)) == pytest.approx(1.0 + 3.0, rel=0.05)
    assert frechet_distance(x_real, torch.randn(n, dim), Identity(dim)) < 0.01


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # dead ReLU units make a covariance singular
def test_frechet_distance_uses_the_classifier_features():
    torch.manual_seed(0)
    model = clf.FashionClassifier(channels=(4, 8), hidden_dim=16).eval()
    x_real, x_fake = torch.rand(300, 1, 28, 28), torch.rand(200, 1, 28, 28) * 0.5
    with torch.no_grad():
        h_real, h_fake = model.features(x_real).double().numpy(), model.features(x_fake).double().numpy()
    expected = gaussian_frechet_distance(*_sample_stats(h_real), *_sample_stats(h_fake))
    assert frechet_distance(x_real, x_fake, model) == pytest.approx(expected, rel=1e-3)


def test_classifier_shapes():
    model = clf.FashionClassifier(channels=(4, 8), hidden_dim=16)
    x = torch.rand(5, 1, 28, 28)
    assert model.features(x).shape == (5, 16)
    assert model(x).shape == (5, 10)
    assert model(x.reshape(5, 784)).shape == (5, 10)
    with pytest.raises(ValueError, match="shape"):
        model(torch.rand(5, 3, 32, 32))


class LabelFromFirstPixel(nn.Module):
    """A stand-in classifier: the class is the first pixel times 10, so the histogram is known in advance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        label = (x.reshape(len(x), -1)[:, 0] * 10).long().clamp(0, 9)
        return nn.functional.one_hot(label, 10).float()


def test_class_histogram_and_distance_from_uniform():
    labels = torch.tensor([0] * 500 + [3] * 1500 + [9] * 500)
    x = torch.zeros(len(labels), 1, 28, 28)
    x[:, 0, 0, 0] = (labels.float() + 0.5) / 10
    fractions = class_histogram(LabelFromFirstPixel(), x)
    expected = torch.zeros(10, dtype=torch.float64)
    expected[[0, 3, 9]] = torch.tensor([0.2, 0.6, 0.2], dtype=torch.float64)
    torch.testing.assert_close(fractions, expected)
    assert distance_from_uniform(torch.full((10,), 0.1)) == pytest.approx(0.0, abs=1e-6)
    assert distance_from_uniform(torch.eye(10)[4]) == pytest.approx(0.9)
    assert distance_from_uniform(fractions) == pytest.approx(0.5 * (0.1 + 0.5 + 0.1 + 7 * 0.1))


def test_class_histogram_and_distance_from_uniform_refuse_empty_input():
    with pytest.raises(ValueError, match="at least one"):
        class_histogram(LabelFromFirstPixel(), torch.zeros(0, 1, 28, 28))
    with pytest.raises(ValueError, match="positive sum"):
        distance_from_uniform(torch.zeros(10))


def _tiny_data(n: int = 256) -> FashionMNIST:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.2
    x[torch.arange(n), 0, 2 * y + 4, :] = 1.0  # a bright row whose position tells the class
    return FashionMNIST(x, y, x[:64], y[:64], source=Path("."))


SMALL = clf.ClassifierSettings(channels=(4, 8), hidden_dim=16, num_epochs=3, batch_size=32, lr=1e-2)


def test_the_classifier_is_trained_only_by_make_checkpoints_then_loaded(tmp_path, monkeypatch):
    data = _tiny_data()
    for mode in (None, "1", "missing"):  # no switch trains the shared classifier in a chapter
        if mode is None:
            monkeypatch.delenv(RETRAIN_ENV, raising=False)
        else:
            monkeypatch.setenv(RETRAIN_ENV, mode)
        with pytest.raises(CheckpointError, match="make checkpoints NB=classifier"):
            clf.pretrained_classifier(data, "cpu", settings=SMALL, root=tmp_path, min_accuracy=0.5)
    rng_before = torch.get_rng_state()
    first = train_checkpoints.store_classifier(data, "cpu", settings=SMALL, root=tmp_path, min_accuracy=0.5)
    assert torch.equal(torch.get_rng_state(), rng_before), "training must not move the caller's random stream"
    assert not first.training and not any(p.requires_grad for p in first.parameters())
    assert (tmp_path / f"{clf.CHECKPOINT}-seed0.safetensors").is_file()

    def must_not_train(*args, **kwargs):
        raise AssertionError("the stored weights should have been loaded")

    monkeypatch.setattr(train_checkpoints, "train_classifier", must_not_train)
    second = train_checkpoints.store_classifier(data, "cpu", settings=SMALL, root=tmp_path, min_accuracy=0.5)
    third = clf.pretrained_classifier(data, "cpu", settings=SMALL, root=tmp_path, min_accuracy=0.5)
    for a, b, c in zip(*(m.state_dict().values() for m in (first, second, third)), strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
    other = clf.ClassifierSettings(channels=(4, 8), hidden_dim=16, num_epochs=4, batch_size=32, lr=1e-2)
    monkeypatch.delenv(RETRAIN_ENV)
    with pytest.raises(CheckpointError, match="num_epochs=3"):  # settings changed: the checkpoint no longer fits
        clf.pretrained_classifier(data, "cpu", settings=other, root=tmp_path, min_accuracy=0.5)


def test_pretrained_classifier_refuses_a_classifier_that_cannot_classify(tmp_path, monkeypatch):
    data = _tiny_data()
    train_checkpoints.store_classifier(data, "cpu", settings=SMALL, root=tmp_path, min_accuracy=0.5)
    shuffled = FashionMNIST(data.x_train, data.y_train, data.x_test, data.y_test.roll(1), source=Path("."))
    with pytest.raises(CheckpointError, match="accuracy"):
        clf.pretrained_classifier(shuffled, "cpu", settings=SMALL, root=tmp_path, min_accuracy=0.5)


def test_train_classifier_is_seeded_and_learns():
    data = _tiny_data()

    def trained_copy():
        torch.manual_seed(0)
        model = clf.FashionClassifier(SMALL.channels, SMALL.hidden_dim)
        train_checkpoints.train_classifier(model, data, SMALL)
        return model

    a, b = trained_copy(), trained_copy()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert clf.accuracy(a, data.x_train, data.y_train) > 0.5  # chance is 0.1


def test_gan_losses_match_their_formulas():
    real_logits, fake_logits = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.0, 1.0])
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    expected_d = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    torch.testing.assert_close(discriminator_loss(real_logits, fake_logits), expected_d)
    torch.testing.assert_close(generator_loss(fake_logits), -torch.log(d_fake).mean())
    # At the game's equilibrium D = 1/2 everywhere and the discriminator loss is 2 log 2.
    zero = torch.zeros(4)
    assert float(discriminator_loss(zero, zero)) == pytest.approx(2 * math.log(2))


def test_generator_matches_the_vae_decoder_size():
    from aecourse.models import VAE

    vae, gan = VAE(latent_dim=20, hidden_dim=400), GAN(latent_dim=20, hidden_dim=400)
    shapes = {k: v.shape for k, v in vae.decoder.state_dict().items()}
    assert {k: v.shape for k, v in gan.generator.net.state_dict().items()} == shapes  # the same network


def test_train_gan_history_and_seeding():
    x = _tiny_data(192).x_train

    def run():
        torch.manual_seed(123)
        gan = GAN(latent_dim=4, hidden_dim=32)
        return gan, train_gan(gan, x, num_epochs=2, batch_size=64, seed=7)

    gan_a, history_a = run()
    gan_b, history_b = run()
    assert len(history_a) == 2
    assert set(history_a.last) >= {"epoch", "d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm", "seconds"}
    assert history_a["d_loss"] == history_b["d_loss"]
    for p, q in zip(gan_a.parameters(), gan_b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert all(0 < v < 1 for v in history_a["d_real"] + history_a["d_fake"])


def test_train_gan_moves_discriminator_towards_telling_real_from_fake():
    x = torch.zeros(512, 1, 28, 28)  # black images: trivially told from the generator's grey start
    torch.manual_seed(0)
    gan = GAN(latent_dim=4, hidden_dim=32)
    history = train_gan(gan, x, num_epochs=1, batch_size=64, lr=1e-3)
    assert history["d_real"][0] > history["d_fake"][0]


def test_divergence_and_missing_classes_are_separate_questions():
    assert divergence({"d_loss": [1.2, 1.1], "g_loss": [0.9, 1.0]}) == []
    assert any("non-finite" in r for r in divergence({"loss": [1.0, float("nan")]}))
    assert any("collapsed" in r for r in divergence({"d_loss": [1.0, 0.01]}))
    assert missing_classes(torch.full((10,), 0.1)) == []
    collapsed = torch.zeros(10)
    collapsed[[1, 7]] = 0.5
    assert missing_classes(collapsed) == [0, 2, 3, 4, 5, 6, 8, 9]


def test_train_gan_checks_every_image():
    x = torch.rand(300, 1, 28, 28)
    x[250] = 255.0  # one image on the wrong scale, far from the first
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_gan(GAN(latent_dim=4, hidden_dim=16), x, num_epochs=1)


def test_generate_and_interpolate():
    torch.manual_seed(0)
    gan = GAN(latent_dim=4, hidden_dim=16)
    x = generate(gan, 25, seed=3)
    assert x.shape == (25, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1
    torch.testing.assert_close(x, generate(gan, 25, seed=3))
    assert gan.training, "generate must leave the model's mode as it found it"
    z0, z1 = torch.randn(4), torch.randn(4)
    frames = interpolate(gan, z0, z1, 5)
    assert frames.shape == (5, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(frames[0].reshape(1, -1), gan.decode(z0.unsqueeze(0)))
        torch.testing.assert_close(frames[-1].reshape(1, -1), gan.decode(z1.unsqueeze(0)))
    batch = interpolate(gan, torch.randn(3, 4), torch.randn(3, 4), 6)
    assert batch.shape == (3, 6, 1, 28, 28)
    assert sampling_seconds(gan, 100, repeats=2) > 0


def test_edge_energy():

    stripes = torch.zeros(2, 1, 28, 28)
    stripes[:, :, :, ::2] = 1.0  # every horizontal neighbour differs by 1, no vertical one does
    assert edge_energy(stripes) == pytest.approx(0.5)
    assert edge_energy(torch.full((3, 784), 0.4)) == 0.0


def test_epoch_end_records_extra_numbers():
    from aecourse.losses import vae_batch_loss
    from aecourse.models import VAE
    from aecourse.train import fit

    x = _tiny_data(128).x_train
    torch.manual_seed(0)
    gan = GAN(latent_dim=4, hidden_dim=16)
    history = train_gan(gan, x, num_epochs=2, batch_size=64, epoch_end=lambda m: {"mean": float(generate(m, 8).mean())})
    assert len(history["mean"]) == 2 and gan.training is False
    vae = VAE(latent_dim=4, hidden_dim=16)
    history = fit(vae, vae_batch_loss, x, num_epochs=2, epoch_end=lambda m: {"calls": 1.0})
    assert history["calls"] == [1.0, 1.0]


def test_interpolation_steps_shape_jump_ratio_and_zero_for_a_constant_generator():
    torch.manual_seed(0)
    gan = GAN(latent_dim=4, hidden_dim=16)
    steps = interpolation_steps(gan, Identity(784), num_pairs=3, num_steps=6)
    assert steps.shape == (3, 5) and bool((steps > 0).all())
    torch.testing.assert_close(jump_ratio(torch.tensor([[1.0, 1.0, 1.0], [0.0, 3.0, 0.0]])), torch.tensor([1.0, 3.0]))
    with torch.no_grad():
        gan.generator.net[0].weight.zero_()  # G(z) no longer depends on z
    assert float(interpolation_steps(gan, Identity(784), num_pairs=2, num_steps=4).abs().max()) == 0.0


def test_the_minimax_generator_gradient_vanishes_where_the_discriminator_is_sure():
    torch.manual_seed(0)
    gan = GAN(latent_dim=4, hidden_dim=16)
    z = torch.randn(64, 4)
    undecided = generator_gradient_norms(gan, z)
    with torch.no_grad():
        gan.discriminator.net[-1].bias.fill_(-12.0)  # D(G(z)) ~ 6e-6: every sample confidently rejected
    sure = generator_gradient_norms(gan, z)
    assert sure["minimax"] < 1e-3 * undecided["minimax"]  # log(1 - D) is flat where D is near 0
    assert sure["non_saturating"] > 0.5 * undecided["non_saturating"]  # -log D keeps its gradient


def test_gradient_norm_of_a_part_without_updating():
    from aecourse.losses import vae_batch_loss
    from aecourse.models import VAE

    torch.manual_seed(0)
    vae = VAE(latent_dim=4, hidden_dim=16)
    before = [p.detach().clone() for p in vae.parameters()]
    x = torch.rand(8, 784)
    decoder_only = gradient_norm(vae, vae_batch_loss, x, vae.decoder)
    assert 0 < decoder_only <= gradient_norm(vae, vae_batch_loss, x)
    assert gradient_norm(vae, vae_batch_loss, x, vae.decoder) == decoder_only  # seeded draws
    assert all(torch.equal(a, b) for a, b in zip(before, vae.parameters(), strict=True))


def test_discriminator_dropout_acts_in_training_only_and_is_checked():
    torch.manual_seed(0)
    gan = GAN(latent_dim=4, hidden_dim=32, dropout=0.3)
    x = torch.rand(16, 1, 28, 28)
    gan.discriminator.train()
    assert not torch.equal(gan.discriminator(x), gan.discriminator(x)), "dropout draws a new mask each call"
    gan.discriminator.eval()
    torch.testing.assert_close(gan.discriminator(x), gan.discriminator(x))
    z = torch.randn(8, 4)
    gan.train()
    first = generator_gradient_norms(gan, z)
    assert first == generator_gradient_norms(gan, z), "the gradient measure reads D without dropout"
    assert gan.discriminator.training, "and leaves D's mode as it found it"
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"in \[0, 1\)"):
            GAN(latent_dim=4, hidden_dim=8, dropout=bad)


def test_train_gan_refuses_a_gan_that_starts_non_finite():
    """The door check: a discriminator (or generator) with a NaN or inf weight would make every loss NaN, and no
    epoch could be undone to a finite state; train_gan says so before the first step."""
    x = _tiny_data(64).x_train
    for part, value in (("discriminator", float("nan")), ("discriminator", float("inf")), ("generator", float("nan"))):
        torch.manual_seed(0)
        gan = GAN(latent_dim=4, hidden_dim=16)
        with torch.no_grad():
            getattr(gan, part).net[0].weight[0, 0] = value
        with pytest.raises(ValueError, match=f"the GAN's {part} starts with non-finite weights"):
            train_gan(gan, x, num_epochs=1)
        assert not torch.isfinite(getattr(gan, part).net[0].weight).all(), "nothing was trained or changed"


def test_train_gan_trains_exactly_as_the_loop_it_wraps():
    """train_gan runs chapter 4's loop (gan_optimizers, gan_steps) with its guards around it: the same weights as a
    plain run of the loop, and as a loop written out by hand with the streams the stored GANs were trained with (the
    shuffle from a generator seeded `seed`, z from one seeded `seed + 1`, drawn batch by batch after the shuffle)."""
    from aecourse.gan import gan_optimizers, gan_step, gan_steps

    x = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(1))

    def fresh() -> GAN:
        torch.manual_seed(5)
        return GAN(latent_dim=4, hidden_dim=16, dropout=0.3)

    wrapped = fresh()
    torch.manual_seed(9)  # the stream dropout draws from
    train_gan(wrapped, x, num_epochs=2, batch_size=64, lr=1e-3, seed=3)
    looped = fresh()
    torch.manual_seed(9)
    opt_d, opt_g = gan_optimizers(looped, 1e-3)
    for _ in gan_steps(looped, x, opt_d, opt_g, 2, 64, 3):
        pass
    by_hand = fresh()
    torch.manual_seed(9)
    opt_d = torch.optim.Adam(by_hand.discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(by_hand.generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    shuffle, noise = torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)
    by_hand.train()
    for _ in range(2):
        order = torch.randperm(200, generator=shuffle)
        for i in range(0, 200, 64):
            batch = x[order[i : i + 64]]
            gan_step(by_hand, batch, torch.randn(len(batch), 4, generator=noise), opt_d, opt_g)
    states = (m.state_dict().values() for m in (wrapped, looped, by_hand))
    for a, b, c in zip(*states, strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
