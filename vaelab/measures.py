"""The one table of the numbers vaelab reports: each key's label, unit, which way is better and what it means.

The command line's tables, the figures' titles and every page of the app take their names and explanations from
:data:`MEASURES`, so a number reads the same everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    key: str  # as in eval.json and metrics.jsonl
    label: str
    unit: str  # "" when it has none
    better: str | None  # "higher" | "lower" | None (neither: a description, not a score)
    about: str  # one line: what it is

    @property
    def title(self) -> str:
        """The label with its unit: "negative ELBO (nats)"."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def arrow(self) -> str:
        return {"higher": "↑", "lower": "↓"}.get(self.better, "")

    @property
    def heading(self) -> str:
        """The title with the arrow that says which way is better: "negative ELBO (nats) ↓"."""
        return f"{self.title} {self.arrow}".rstrip()

    @property
    def help(self) -> str:
        """The one-line explanation with which way is better, for tooltips."""
        way = f" {self.better.capitalize()} is better." if self.better else ""
        return f"{self.about}.{way}"


def _by_key(measures: list[Measure]) -> dict[str, Measure]:
    keys = [m.key for m in measures]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:  # a dict would keep the later entry without a word
        raise ValueError(f"measures listed twice: {', '.join(twice)}")
    return dict(zip(keys, measures))


MEASURES: dict[str, Measure] = _by_key([
    Measure("n", "examples", "", None, "Examples evaluated"),
    Measure("loss", "training loss", "", "lower", "What training minimizes: the objective's loss per example"),
    Measure("nelbo", "negative ELBO", "nats", "lower",
            "-E_q[log p(x|z)] + KL(q(z|x) || p(z)), an upper bound on -log p(x), per example"),
    Measure("recon", "reconstruction", "nats", "lower", "-log p(x|z), the distortion: nats per example"),
    Measure("kl", "KL", "nats", None, "KL(q(z|x) || p(z)), the rate: nats that z carries about x, per example"),
    Measure("nll", "NLL, importance sampled", "nats", "lower",
            "-log p(x) estimated with K importance samples (Burda et al. 2016), per example"),
    Measure("nll_exact", "NLL, exact", "nats", "lower",
            "-log p(x) in closed form, for a linear-Gaussian VAE (probabilistic PCA), per example"),
    Measure("bpd", "bits per dimension", "bits", "lower", "The NLL in bits per data dimension"),
    Measure("nelbo_bpd", "negative ELBO per dim", "bits", "lower",
            "The negative ELBO in bits per data dimension, under the likelihood's bpd convention: an upper bound on "
            "the bits per dimension"),
    Measure("gap", "-ELBO - NLL", "nats", "lower", "How far the ELBO is below log p(x): KL(q(z|x) || p(z|x))"),
    Measure("sse", "squared error", "per example", "lower",
            "||x - x^||^2 summed over pixels: an autoencoder's reconstruction cost (the WAE's c(x, x^)), per example"),
    Measure("mse", "MSE", "per pixel", "lower", "Mean squared error of the reconstruction, per pixel"),
    Measure("psnr", "PSNR", "dB", "higher", "Peak signal-to-noise ratio of the reconstruction, peak 1"),
    Measure("ssim", "SSIM", "", "higher",
            "Structural similarity of the reconstruction (Wang et al. 2004), 1 for a perfect one"),
    Measure("active_units", "active units", "", None,
            "Latent dimensions whose posterior mean varies over the data, Cov_x(E_q[z_i]) > 0.01 (Burda et al. 2016)"),
    Measure("nmi", "k-means NMI", "", "higher",
            "Normalized mutual information between k-means clusters of the posterior means (k = classes) and the "
            "labels: 1 when the clusters are the classes, about 0 when unrelated"),
    Measure("ari", "k-means ARI", "", "higher",
            "Adjusted Rand index of k-means clusters of the posterior means against the labels: 1 when they are the "
            "classes, about 0 for chance"),
    Measure("probe_accuracy", "linear probe accuracy", "fraction", "higher",
            "Test accuracy of a logistic-regression classifier on the standardized posterior means, trained on "
            "the train split's"),
    Measure("class_error", "classification error", "fraction", "lower",
            "The fraction of examples whose most probable class under the model's classifier q(y|x) is wrong "
            "(M2, Kingma et al. 2014)"),
    Measure("collapsed_dims", "collapsed dimensions", "", "lower",
            "Latent dimensions whose KL is below 0.01 nats: posteriors equal to the prior, unused by the decoder"),
    Measure("perplexity", "codebook perplexity", "", "higher",
            "exp(entropy of the codes' use): how many codes are effectively used"),
    Measure("codes_used", "codes used", "fraction", "higher", "The fraction of the codebook that the data use"),
    Measure("dead_codes", "dead codes", "", "lower", "Codes no training batch used lately"),
    Measure("bits_per_code", "bits per code", "bits", "lower", "-log2 p(code grid) per code position, under the prior"),
    Measure("prior_bits_per_code", "prior bits per code", "bits", "lower",
            "The code prior's -log2 p(codes) per code position on the evaluated images"),
    Measure("fid", "FID", "", "lower",
            "Frechet distance between Gaussians fitted to the features of samples and of test images (Heusel et al. "
            "2017); 0 for identical feature statistics"),
    Measure("kid", "KID", "", "lower",
            "Kernel distance: unbiased MMD^2 of the features with a cubic kernel, mean over subsets (Binkowski et al. "
            "2018); about 0 for one distribution"),
    Measure("inception_score", "Inception Score", "", "higher",
            "exp E[KL(p(y|x) || p(y))] under the feature network's classifier: confident and varied classes "
            "(Salimans et al. 2016); at most the number of classes"),
    Measure("precision", "precision", "fraction", "higher",
            "Samples inside the k=3 nearest-neighbour balls of the test features: fidelity (Kynkaanniemi et al. 2019)"),
    Measure("recall", "recall", "fraction", "higher",
            "Test images inside the k=3 nearest-neighbour balls of the samples' features: diversity "
            "(Kynkaanniemi et al. 2019)"),
    Measure("density", "density", "", "higher",
            "Test features' k=5 balls holding each sample, over k: fidelity robust to outliers, about 1 for one "
            "distribution (Naeem et al. 2020)"),
    Measure("coverage", "coverage", "fraction", "higher",
            "Test images with a sample inside their k=5 nearest-neighbour ball: diversity robust to outliers "
            "(Naeem et al. 2020)"),
    Measure("recon_error", "reconstruction error", "per pixel", None,
            "Mean squared error per pixel of the reconstruction of one example: an anomaly score (An & Cho 2015)"),
    Measure("serra", "complexity-corrected NLL", "bits", None,
            "-log2 p(x) minus the PNG code length of x (Serra et al. 2020): an anomaly score corrected for how "
            "simple an image is"),
    Measure("llr", "likelihood ratio", "nats", None,
            "-log p(x) + log p_B(x) under a background model trained on perturbed inputs (Ren et al. 2019): an "
            "anomaly score"),
    Measure("regret", "Likelihood Regret", "nats", None,
            "The ELBO gained by fitting the posterior to this example alone (Xiao et al. 2020): an anomaly score"),
    Measure("png_bits", "PNG code length", "bits", None, "The size of one image as a PNG at level 9, in bits"),
    Measure("roc_auc", "ROC-AUC", "", "higher",
            "Area under the ROC curve of an anomaly score: the chance that an anomaly scores above a normal "
            "example; 0.5 is chance"),
    Measure("pr_auc", "PR-AUC", "", "higher",
            "Average precision of an anomaly score, the anomalies as positives; their share is chance"),
    Measure("fpr95", "FPR at 95% TPR", "fraction", "lower",
            "The share of normal examples flagged when the threshold flags 95% of the anomalies"),
    Measure("impute_mse", "imputation MSE", "per pixel", "lower",
            "Mean squared error of the imputed values on the hidden entries only"),
    Measure("impute_accuracy", "imputation accuracy", "fraction", "higher",
            "The share of hidden binary entries imputed right (the imputed mean rounded)"),
    Measure("beta_vae", "beta-VAE score", "fraction", "higher",
            "Accuracy of a linear classifier that tells from the mean |z difference| of pairs sharing one factor which "
            "factor they share (Higgins et al. 2017)"),
    Measure("factor_vae", "FactorVAE score", "fraction", "higher",
            "Accuracy of a majority vote that tells the fixed factor from the latent of least normalized variance "
            "(Kim & Mnih 2018); undefined when no latent is active"),
    Measure("mig", "MIG", "", "higher",
            "Mutual information gap: the gap between the two latents most informative about each factor, over the "
            "factor's entropy, mean over factors (Chen et al. 2018)"),
    Measure("sap", "SAP", "", "higher",
            "Separated attribute predictability: the gap between the two latents that best predict each factor, "
            "mean over factors (Kumar et al. 2018)"),
    Measure("dci", "DCI disentanglement", "", "higher",
            "How much each latent captures at most one factor, from a predictor's importance matrix (Eastwood & "
            "Williams 2018)"),
    Measure("disentanglement", "DCI disentanglement", "", "higher",
            "How much each latent captures at most one factor, from a predictor's importance matrix (Eastwood & "
            "Williams 2018)"),
    Measure("completeness", "DCI completeness", "", "higher",
            "How much each factor is captured by one latent, from a predictor's importance matrix (Eastwood & "
            "Williams 2018)"),
    Measure("informativeness", "DCI informativeness", "fraction", "higher",
            "Test accuracy of the factors predicted from the latents (Eastwood & Williams 2018)"),
    Measure("modularity", "modularity", "", "higher",
            "How much each latent depends on one factor only, from their mutual information (Ridgeway & Mozer 2018)"),
    Measure("explicitness", "explicitness", "", "higher",
            "ROC-AUC of linear classifiers reading each factor's values from the latents (Ridgeway & Mozer 2018)"),
    Measure("capacity", "KL capacity", "nats", None, "The KL target C of the capacity schedule (Burgess et al. 2018)"),
    Measure("beta", "beta", "", None, "The KL weight at this step"),
    Measure("codebook", "codebook loss", "", "lower", "||sg[z_e] - e||^2 summed over the code grid"),
    Measure("commitment", "commitment loss", "", "lower", "||z_e - sg[e]||^2 summed over the code grid"),
    Measure("tc", "total correlation", "nats", "lower", "KL(q(z) || prod_j q(z_j)): dependence between latents"),
    Measure("mi", "index-code MI", "nats", None, "I(x; z) under q (Chen et al. 2018)"),
    Measure("dw_kl", "dimension-wise KL", "nats", None, "sum_j KL(q(z_j) || p(z_j)) (Chen et al. 2018)"),
    Measure("dip", "DIP penalty", "", "lower", "The DIP-VAE covariance penalty (Kumar et al. 2018)"),
    Measure("mmd", "posterior-prior MMD", "", "lower",
            "Unbiased MMD^2 between codes of the evaluated examples, z ~ q(z|x), and prior draws (inverse "
            "multiquadratic kernels, Tolstikhin et al. 2018): 0 in expectation when the aggregate posterior is the prior"),
    Measure("adv", "adversarial penalty", "nats", "lower",
            "-log D(z): how surely the latent discriminator tells the codes from prior draws (WAE-GAN, AAE)"),
    Measure("llike", "feature reconstruction", "", "lower",
            "1/2 ||Dis_l(x) - Dis_l(x~)||^2: VAE-GAN's reconstruction error in the discriminator's features"),
    Measure("gan", "generator loss", "nats", "lower", "VAE-GAN's decoder loss against the image discriminator"),
    Measure("disc_loss", "discriminator loss", "nats", None, "The cross-entropy of the objective's discriminator"),
])


SAMPLE_QUALITY = ("fid", "kid", "inception_score", "precision", "recall", "density", "coverage")  # in this order


def measure(key: str) -> Measure:
    """The measure of ``key`` (a logged ``kl_2`` or a ``val/recon`` reads as its base), or a plain one."""
    base = key.split("/")[-1]
    if base in MEASURES:
        return MEASURES[base]
    if base.startswith("kl_") and base[3:].isdigit():
        return Measure(base, f"KL of layer {base[3:]}", "nats", None, f"The KL of stochastic layer {base[3:]}")
    return Measure(base, base.replace("_", " "), "", None, base)
