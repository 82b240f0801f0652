"""aecourse.models: shapes (against the article's comments, corrected), gradients, clear input errors."""

from __future__ import annotations

import pytest
import torch

from aecourse.models import (
    VAE,
    Autoencoder,
    ConvDenoisingAutoencoder,
    ConvVAE,
    CroppedConvTranspose2d,
    DenoisingAutoencoder,
    reparameterize,
)


@pytest.fixture
def images():
    return torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("latent_dim", [2, 64])
def test_autoencoder_shapes(images, latent_dim):
    model = Autoencoder(latent_dim=latent_dim)
    assert model.encode(images).shape == (5, latent_dim)
    assert model(images).shape == (5, 1, 28, 28)
    assert model(images.flatten(1)).shape == (5, 784)
    assert [m.out_features for m in model.encoder if hasattr(m, "out_features")] == [256, latent_dim]


def test_sigmoid_output_stays_in_unit_range(images):
    x_hat = Autoencoder(64, sigmoid_output=True)(images).detach()
    assert float(x_hat.min()) >= 0.0 and float(x_hat.max()) <= 1.0


def test_denoising_autoencoder_accepts_unclipped_noise(images):
    model = DenoisingAutoencoder(64)
    x_noisy = images + 0.2 * torch.randn_like(images)  # the article's unclipped noise
    x_hat = model(x_noisy).detach()
    assert x_hat.shape == images.shape and float(x_hat.min()) >= 0.0 and float(x_hat.max()) <= 1.0
    with pytest.raises(ValueError, match="NaN or infinite"):
        model(torch.full_like(images, float("nan")))


def test_vae_shapes_and_interface(images):
    model = VAE(latent_dim=20)
    mu, logvar = model.encode(images)
    assert mu.shape == logvar.shape == (5, 20)
    z = reparameterize(mu, logvar)
    decoded = model.decode(z).detach()
    assert decoded.shape == (5, 784) and 0 <= float(decoded.min()) <= float(decoded.max()) <= 1
    x_logits, mu2, logvar2 = model(images)
    assert x_logits.shape == (5, 784) and mu2.shape == (5, 20) and float(x_logits.detach().min()) < 0  # logits


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: VAE(latent_dim=0), r"VAE: latent_dim must be an int >= 1; got 0"),
        (lambda: VAE(0), r"VAE: latent_dim must be an int >= 1; got 0"),
        (lambda: VAE(20, hidden_dim=0), r"VAE: hidden_dim must be an int >= 1; got 0"),
        (lambda: Autoencoder(0), r"Autoencoder: latent_dim must be an int >= 1; got 0"),
        (lambda: DenoisingAutoencoder(hidden_dim=0), r"DenoisingAutoencoder: hidden_dim must be an int >= 1; got 0"),
        (lambda: ConvVAE(latent_dim=0), r"latent_dim.* got 0"),
    ],
    ids=["vae", "vae-positional", "vae-hidden", "ae", "dae", "conv-vae"],
)
def test_a_code_of_size_0_is_refused_when_the_model_is_built(build, match):
    """The door check the taught classes leave out of their lesson: torch alone would build empty layers, with a
    warning, and train a model whose code carries nothing."""
    with pytest.raises(ValueError, match=match):
        build()
    with pytest.raises(TypeError, match=r"VAE: latent_dim must be an int >= 1; got 2.5"):
        VAE(latent_dim=2.5)
    model = VAE(3, hidden_dim=8)  # a valid size builds the same layers as before, with the same names
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == [
        ("encoder.0.weight", (8, 784)),
        ("encoder.0.bias", (8,)),
        ("mu_head.weight", (3, 8)),
        ("mu_head.bias", (3,)),
        ("logvar_head.weight", (3, 8)),
        ("logvar_head.bias", (3,)),
        ("decoder.0.weight", (8, 3)),
        ("decoder.0.bias", (8,)),
        ("decoder.2.weight", (784, 8)),
        ("decoder.2.bias", (784,)),
    ]
    assert VAE.__init__.__name__ == "__init__" and model.latent_dim == 3


def test_gradients_flow_through_the_reparameterization():
    mu = torch.zeros(4, 3, requires_grad=True)
    logvar = torch.zeros(4, 3, requires_grad=True)
    torch.manual_seed(0)
    z = reparameterize(mu, logvar)
    z.pow(2).sum().backward()
    assert mu.grad is not None and logvar.grad is not None
    assert float(logvar.grad.abs().sum()) > 0  # sigma gets a gradient through eps * sigma


def test_reparameterized_samples_have_the_right_moments():
    mu = torch.full((200_000, 1), 2.0)
    logvar = torch.full((200_000, 1), 2 * torch.log(torch.tensor(0.5)))
    torch.manual_seed(0)
    z = reparameterize(mu, logvar)
    assert abs(float(z.mean()) - 2.0) < 0.01 and abs(float(z.std()) - 0.5) < 0.01


def test_conv_vae_intermediate_shapes_match_the_corrected_comments(images):
    model = ConvVAE(latent_dim=10)
    shapes = []
    h = images
    for layer in model.encoder:
        h = layer(h)
        shapes.append(tuple(h.shape[1:]))
    assert shapes[0] == (32, 29, 29)  # the article says 28x28: kernel 4 with padding 2 gives 29
    assert shapes[2] == (32, 14, 14) and shapes[4] == (64, 7, 7)
    h = model.upsample(torch.zeros(5, 10)).view(-1, 64, 7, 7)
    shapes = []
    for layer in model.decoder:
        h = layer(h)
        shapes.append(tuple(h.shape[1:]))
    assert shapes[0] == (32, 14, 14)  # the article says 64 channels
    assert shapes[2] == (32, 29, 29) and shapes[4] == (1, 28, 28)
    x_hat, mu, logvar = model(images)
    assert x_hat.shape == images.shape and mu.shape == (5, 10)


@pytest.mark.parametrize(
    "args, size",
    [
        ((32, 32, 4, 2, 1, 1), 14),  # the chapter 5 layer, 14 -> 29
        ((3, 5, 3, 2, 1, 0), 9),
        ((3, 5, (4, 3), (2, 3), (2, 1), (1, 0)), 8),
        ((4, 6, 3, 1, 0, 0, 2), 7),  # groups
        ((3, 5, 3, 2, 0, 1), 9),  # output_padding > padding: the stock path
    ],
)
def test_cropped_conv_transpose_is_the_stock_layer(args, size):
    torch.manual_seed(0)
    stock = torch.nn.ConvTranspose2d(*args)
    cropped = CroppedConvTranspose2d(*args)
    cropped.load_state_dict(stock.state_dict())
    x = torch.randn(2, args[0], size, size)
    x_stock, x_cropped = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_stock, out_cropped = stock(x_stock), cropped(x_cropped)
    assert out_cropped.shape == out_stock.shape
    torch.testing.assert_close(out_cropped, out_stock, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out_stock)
    out_stock.backward(grad)
    out_cropped.backward(grad)
    torch.testing.assert_close(x_cropped.grad, x_stock.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cropped.weight.grad, stock.weight.grad, rtol=1e-4, atol=1e-4)


def test_cropped_conv_transpose_honours_output_size():
    layer = CroppedConvTranspose2d(2, 2, 4, 2, 1)
    assert layer(torch.randn(1, 2, 7, 7), output_size=[15, 15]).shape == (1, 2, 15, 15)


@pytest.mark.parametrize("model", [Autoencoder(64), VAE(), ConvVAE()], ids=["ae", "vae", "conv_vae"])
def test_wrong_shape_is_a_clear_error(model):
    with pytest.raises(ValueError, match=r"expects a batch of shape \(B, 784\) or \(B, 1, 28, 28\); got \(3, 32, 32\)"):
        model(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="x.unsqueeze"):
        model(torch.rand(1, 28, 28))


@pytest.mark.parametrize("model", [Autoencoder(64), VAE(), ConvVAE()], ids=["ae", "vae", "conv_vae"])
def test_wrong_range_or_dtype_is_a_clear_error(model):
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\]; got values in \[0, 255\]"):
        model(torch.linspace(0, 255, 2 * 784).reshape(2, 784))
    with pytest.raises(TypeError, match="Divide uint8 images by 255"):
        model(torch.zeros(2, 784, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[0.0] * 784])


@pytest.mark.parametrize("model_class", [DenoisingAutoencoder, ConvDenoisingAutoencoder])
def test_denoising_autoencoders_accept_noisy_inputs_but_not_0_to_255_images(model_class):
    model = model_class()
    noisy = torch.rand(2, 1, 28, 28) + 0.3 * torch.randn(2, 1, 28, 28)  # outside [0, 1]: the article's noise
    assert model(noisy).shape == noisy.shape
    with pytest.raises(ValueError, match="divide by 255"):
        model(255 * torch.rand(2, 1, 28, 28))


def test_the_classifier_refuses_0_to_255_images():
    from aecourse.evidence.classifier import FashionClassifier

    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FashionClassifier()(255 * torch.rand(2, 1, 28, 28))
