"""`vaelab export RUN --format onnx`: the graphs run in onnxruntime and give PyTorch's outputs."""
import pytest
import torch

from vaelab.cli import main
from vaelab.config import RunConfig
from vaelab.models import MODELS, load

ort = pytest.importorskip("onnxruntime")


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_vae_encoder_and_decoder_match_pytorch(tmp_path):
    run = tmp_path / "vae"
    sets = [a for s in ("data.val_size=200", "model.hidden=[64]", "model.latent_dim=4", "train.batch_size=64",
                        "train.progress=false") for a in ("--set", s)]
    assert main(["train", "--dataset", "digits", "--steps", "20", "--out", str(run), *sets]) == 0
    assert main(["export", str(run), "--format", "onnx"]) == 0
    model = load(run)
    x = torch.rand(7, 1, 8, 8)  # a batch size other than the exporter's example: the batch axis is free
    z = session(run / "onnx" / "encoder.onnx").run(None, {"input": x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(z), model.encode(x), rtol=0, atol=1e-5)
    z = torch.randn(7, 4)
    images = session(run / "onnx" / "decoder.onnx").run(None, {"input": z.numpy()})[0]
    assert images.shape == (7, 1, 8, 8)
    torch.testing.assert_close(torch.from_numpy(images), model.decode(z), rtol=0, atol=1e-5)


def test_vqvae_encoder_quantizer_and_decoder_match_pytorch(tmp_path):
    from vaelab.train import Trainer

    cfg = RunConfig().override(MODELS.get("vqvae").presets).set(
        ["model.name=vqvae", "data.name=digits", "data.val_size=200", "vq.hidden=32", "vq.codebook_size=64",
         "vq.dim=16", "train.steps=10", "train.progress=false"])
    Trainer(cfg, tmp_path / "vq").fit()
    out = tmp_path / "graphs"
    assert main(["export", str(tmp_path / "vq"), "-o", str(out)]) == 0
    model = load(tmp_path / "vq")
    x = torch.rand(5, 1, 8, 8)
    z_e = session(out / "encoder.onnx").run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(z_e), model.encoder(x), rtol=0, atol=1e-5)
    codes = session(out / "quantizer.onnx").run(None, {"input": z_e})[0]
    assert codes.shape == (5, 2, 2) and (torch.from_numpy(codes) == model.encode(x)).all()
    codes = torch.randint(0, 64, (5, 2, 2))  # every code, used in training or not, decodes as in PyTorch
    images = session(out / "decoder.onnx").run(None, {"input": codes.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(images), model.decode(codes), rtol=0, atol=1e-5)


def test_export_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a vaelab run directory" in err
