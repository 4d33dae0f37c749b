"""Explore a VAE: samples at a temperature, reconstructions, one slider per latent dimension around an encoded
image, interpolation between two test images, generation by class (CVAE), and the latent space in 2-D."""
import streamlit as st
import torch

from vaelab.app import ui
from vaelab.app.upload import image_tensor
from vaelab.viz import code_traversal, decode_edited, dims_by_kl, interpolation, latent_map, reconstructions, samples

st.title("Explore")
info, cfg, model = ui.open_run("explore")
st.caption(f"**{cfg.model.name}** on **{cfg.data.name}**: {model.latent_dim} latent dimensions, "
           f"{cfg.model.arch} networks, {cfg.model.prior} prior, {cfg.model.posterior} posterior"
           + (", a PixelCNN decoder: images are drawn pixel by pixel, give it a moment" if cfg.model.decoder ==
              "pixelcnn" else ""))
headline = [k for k in ("nelbo", "recon", "kl", "nll", "active_units") if k in (info.eval() or {})]
columns = st.columns(3)  # three abreast: a label keeps its unit and arrow in view
for i, key in enumerate(headline):
    ui.metric(columns[i % 3], key, info.eval()[key])
ui.eval_download(info)
ui.compare_with_plain_vae(info)
test = None
with ui.errors_shown(stop=False):
    test = ui.split(cfg)
if test is None:
    st.warning("Without the dataset only samples and the sliders around z = 0 work.")

VIEWS = ["samples", "reconstructions", "traversal", "interpolation", "latent space"]
if model.conditional:
    VIEWS.append("by class")
if st.session_state.get("explore-view") not in VIEWS:  # the address's ?view= only opens the page: the radio
    wanted = st.query_params.get("view")                # keeps its own state after that (no second click lost)
    st.session_state["explore-view"] = wanted if wanted in VIEWS else VIEWS[0]
view = st.radio("view", VIEWS, key="explore-view", horizontal=True, label_visibility="collapsed")
st.query_params["view"] = view
seed = st.sidebar.number_input("random seed", 0, 2**31 - 1, 0, help="samples and PixelCNN decoding")
torch.manual_seed(seed)


def usage(ev: dict | None, d: int) -> str:
    """How much dimension d is used: its KL, or where that has no closed form, the variance of its mean."""
    if ev is None:
        return ""
    return f"(KL {ev['kl_per_dim'][d]:.2f} nats)" if ev.get("kl_per_dim") else f"(Var E[z] {ev['var_mu'][d]:.2f})"


def row(i: int):
    """Test image i as a one-row split: its x, label and the image as the dataset holds it (the split is never
    converted to floats whole)."""
    return test.take(torch.tensor([i]))


if view == "samples":
    temperature = st.slider("temperature (scales the prior's standard deviation)", 0.0, 2.0, 1.0, 0.05)
    if model.conditional:
        per_class = st.slider("samples per class", 1, 16, 8)
        ui.show_images(*samples(model, per_class, temperature), caption="one row per class",
                       rows=[f"class {c}" for c in range(model.num_classes)], name=f"{info.name}-samples")
    else:
        n = st.select_slider("samples", [16, 32, 64, 128], 64)
        ui.show_images(*samples(model, n, temperature), caption=f"z from the prior at temperature {temperature:g}, "
                       "decoded (the decoder's mean)", name=f"{info.name}-samples")

elif view == "reconstructions" and test is not None:
    start = st.number_input("first test image", 0, max(0, len(test) - 8), 0)
    n = st.select_slider("images", [8, 16, 32, 64], 32)
    part = test.take(torch.arange(start, min(start + n, len(test))))
    images, nrow = reconstructions(model, part.x, part.y, images=part.images)
    ui.show_images(images, nrow, caption="test images as the dataset holds them, each above its reconstruction (the "
                   "decoder's mean at the posterior mean)", rows=["original", "reconstruction"] * (len(images) //
                   (2 * nrow)), name=f"{info.name}-reconstructions")

elif view == "traversal":
    sources = (["test image"] if test is not None else []) + ["uploaded image", "prior mean (z = 0)"]
    source = st.radio("start from", sources, horizontal=True)
    x = y = original = None
    if source == "test image":
        i = st.number_input("test image", 0, len(test) - 1, 0)
        one = row(i)
        x, y, key, original = one.x, one.y, f"test{i}", one.images
    elif source == "uploaded image":
        c, h, w = info.facts.shape
        upload = st.file_uploader(f"a {w}x{h} {'colour' if c == 3 else 'grey'} image",
                                  type=["png", "jpg", "jpeg", "bmp", "gif", "webp"])
        if upload is None:
            st.stop()
        with ui.errors_shown():
            x = original = image_tensor(upload.getvalue(), upload.name, info.facts.shape)
        if model.conditional:
            y = torch.tensor([st.selectbox("its class", range(model.num_classes))])
        key = f"upload-{upload.file_id}"
    else:
        key = "zero"
        if model.conditional:
            y = torch.tensor([st.selectbox("class", range(model.num_classes))])
    z0 = model.encode(x, y)[0] if x is not None else torch.zeros(model.latent_dim)
    ev = ui.evaluation(info) if test is not None else None
    order = dims_by_kl(ev) if ev else list(range(model.latent_dim))
    shown = st.slider("dimensions (most KL first)", 1, model.latent_dim, min(model.latent_dim, 8)) \
        if model.latent_dim > 1 else 1
    sliders, picture = st.columns([1, 1])  # the decoded image beside its sliders, large
    z = z0.clone()
    for d in order[:shown]:
        start = round(round(float(z0[d].clamp(-3, 3)) / 0.05) * 0.05, 2)  # on the slider's grid
        z[d] = sliders.slider(f"z{d}  {usage(ev, d)}", -3.0, 3.0, start, 0.05,
                              key=f"{info.name}-{key}-z{d}")
    with picture:
        ui.show_images(decode_edited(model, z0, z[None], y), 1, caption="decoded from the sliders",
                       name=f"{info.name}-decoded", width=360)
        if original is not None:
            ui.show_images(original, 1, caption="the image", name=f"{info.name}-image", width=120)
    with st.expander("traversal grid: each row sweeps one dimension from -3 to 3, the others at the image's code"):
        values = torch.linspace(-3, 3, 9)
        ui.show_images(*code_traversal(model, z0, y, order[:shown], 9, 3.0), rows=[f"z{d}" for d in order[:shown]],
                       columns=[f"{v:g}" for v in values.tolist()], name=f"{info.name}-traversal",
                       caption="rows: latent dimensions (most KL first); columns: the value it is set to")

elif view == "interpolation" and test is not None:
    a, b, steps = st.columns(3)
    i = a.number_input("from test image", 0, len(test) - 1, 0)
    j = b.number_input("to test image", 0, len(test) - 1, 1)
    n = steps.slider("steps", 3, 20, 10)
    a, b = row(i), row(j)
    images, nrow = interpolation(model, a.x, b.x, n, a.y, b.y)
    ui.show_images(torch.cat([a.images, images, b.images]), nrow + 2, name=f"{info.name}-interpolation",
                   columns=[f"image {i}", *(f"{t:.2g}" for t in torch.linspace(0, 1, n).tolist()), f"image {j}"],
                   caption="the two test images at the ends; between them, decoded points (1 - t) z_a + t z_b on the "
                           "line between their posterior means (column: t)")

elif view == "latent space" and test is not None:
    a, b = st.columns(2)
    n = a.select_slider("test images", [500, 1000, 2000, 5000], 2000)
    method = b.radio("axes", ["PCA", "the two dimensions of most KL"], horizontal=True)
    part = test.take(torch.arange(min(n, len(test))))
    if model.latent_dim < 2:
        st.info("a one-dimensional latent space has no 2-D view")
        st.stop()
    top = tuple(dims_by_kl(ui.evaluation(info), 2))  # never a dead dimension while live ones exist
    xy = latent_map(model, part.x, part.y, "pca" if method == "PCA" else "dims", dims=top).numpy()
    axes = ("PC 1", "PC 2") if method == "PCA" else tuple(f"z{d}" for d in top)
    points = {axes[0]: xy[:, 0], axes[1]: xy[:, 1]}
    if part.y is not None:
        points["label"] = [str(int(v)) for v in part.y]
    st.scatter_chart(points, x=axes[0], y=axes[1], color="label" if part.y is not None else None)
    st.caption("posterior means of test images" + (", coloured by label" if part.y is not None else ""))

elif view == "by class":
    c, n, t = st.columns(3)
    label = c.selectbox("class", range(model.num_classes))
    count = n.select_slider("samples", [8, 16, 32, 64], 32)
    temperature = t.slider("temperature", 0.0, 2.0, 1.0, 0.05)
    ui.show_images(model.sample(count, y=torch.full((count,), label), temperature=temperature), 8,
                   caption=f"z from the prior, decoded with class {label}", name=f"{info.name}-class-{label}")
else:
    st.info("this view needs the dataset")
