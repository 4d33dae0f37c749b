import json

from vaelab.cli import main


def test_train_on_procedural_dsprites_and_measure_disentanglement(tmp_path, capsys):
    run = str(tmp_path / "btc")
    sets = ["model.arch=conv64", "model.latent_dim=6", "data.train_size=512", "data.val_size=128",
            "data.test_size=128", "train.batch_size=64", "train.progress=false"]
    assert main(["train", "--model", "beta-tcvae", "--dataset", "dsprites-procedural", "--steps", "8", "--out", run,
                 *[a for s in sets for a in ("--set", s)]]) == 0
    assert main(["disentangle", run, "--num-train", "100", "--num-test", "60"]) == 0  # the CLI's path, not the scores
    result = json.loads((tmp_path / "btc" / "disentanglement.json").read_text())
    assert set(result) >= {"beta_vae", "factor_vae", "mig", "sap", "dci", "modularity_explicitness"}
    assert result["mig"]["factor_names"] == ["shape", "scale", "orientation", "x", "y"]
    assert 0 <= result["dci"]["informativeness"] <= 1 and result["mig"]["protocol"]["num_train"] == 100
    for png in ("kl_per_dim.png", "mutual_information.png", "traversal_by_kl.png"):
        assert (tmp_path / "btc" / png).stat().st_size > 1000
