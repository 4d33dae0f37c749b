import pytest
import torch

from vaelab.config import ConfigError, ModelConfig, RunConfig
from vaelab.data import DataFacts
from vaelab.models import MODELS, build_model


def model(shape, num_classes=0, **kw):
    return build_model(ModelConfig(hidden=[32], latent_dim=3, **kw), DataFacts(shape, num_classes))


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32)])
def test_decoder_output_matches_the_input_shape(arch, shape):
    m = model(shape, arch=arch)
    x = torch.rand(2, *shape)
    t = m(x, k=4)
    assert t.log_px_z.shape == (4, 2) and t.kl.shape == (2,) and t.z.shape == (4, 2, 3)
    assert m.decode(m.encode(x)).shape == (2, *shape)
    assert m.sample(5).shape == (5, *shape)
    assert m.reconstruct(x).min() >= 0 and m.reconstruct(x).max() <= 1


def test_seed_notebook_conv_shapes():
    m = model((1, 28, 28), arch="conv", channels=[8, 16, 32])
    assert m.encoder.out_features == 512  # 32 x 4 x 4, as in the seed notebook
    sizes = [layer.weight.shape for layer in m.decoder.net if hasattr(layer, "weight")]
    assert sizes == [(32, 16, 3, 3), (16, 8, 3, 3), (8, 1, 3, 3)]


def test_cvae_is_conditioned_on_the_label():
    torch.manual_seed(0)
    m = model((1, 8, 8), conditional=True, num_classes=10)
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="pass the class labels"):
        m(x)
    z = torch.randn(4, 3)
    assert not torch.allclose(m.decode(z, y), m.decode(z, (y + 1) % 10))
    assert m.sample(4, y=y).shape == (4, 1, 8, 8)


def test_model_presets_and_unknown_names():
    assert MODELS.get("beta-vae").presets == {"kl": {"beta": 4.0}}
    assert RunConfig().override(MODELS.get("cvae").presets).model.conditional
    with pytest.raises(LookupError, match="unknown model 'vq'; known: aae, beta-tcvae, beta-vae, .*, vqvae, wae-gan, "):
        MODELS.get("vq")
    with pytest.raises(LookupError, match="unknown encoder architecture 'resnet'"):
        model((1, 8, 8), arch="resnet")
    with pytest.raises(ConfigError, match="labelled dataset"):
        model((1, 8, 8), conditional=True, num_classes=0)
