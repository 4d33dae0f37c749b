"""Disentanglement: the metric table of ``vaelab disentangle`` (beta-VAE, FactorVAE, MIG, SAP, DCI,
modularity/explicitness), the latent x factor mutual-information heat map and the KL of each dimension."""
import streamlit as st

from vaelab.app import jobs, ui
from vaelab.data.factors import FACTOR_DATASETS
from vaelab.measures import measure
from vaelab.viz import kl_per_dim_figure, mi_matrix_figure

st.title("Disentanglement")
info = ui.pick_run("disentangle")
result = info.disentanglement()
if result is None:
    st.info(f"{info.name} has no disentanglement.json yet: `vaelab disentangle {info.path}` computes it on a "
            f"dataset with ground-truth factors ({', '.join(FACTOR_DATASETS)}).")
    job = jobs.status(info.path, "disentangle")
    if info.dataset in FACTOR_DATASETS and not job.running:
        if st.button("Compute them (quick protocol: 2000 training points)"):
            if ui.start_job(info.path, "disentangle", ["disentangle", str(info.path), "--num-train", "2000"]):
                st.rerun()

    @st.fragment(run_every=2.0)
    def metrics_job() -> None:
        job = jobs.status(info.path, "disentangle")
        if job.running:
            st.info("computing the metrics in the background ...")
        elif job.state == "failed":
            st.error("the metrics failed:")
            st.code(job.log_tail(), language=None)
        elif job.state == "finished":
            st.rerun()

    metrics_job()
    st.stop()



def undefined(name: str, r: dict) -> str | None:
    """Why a score of metric ``name`` is undefined (its 0 stands for no number), or None."""
    if name == "factor_vae" and r.get("num_active_dims") == 0:
        return "undefined: no latent dimension is active (all have standard deviation below the prune threshold)"
    return None


HEADLINE = {"beta_vae": ("beta_vae", "eval_accuracy"), "factor_vae": ("factor_vae", "eval_accuracy"),
            "mig": ("mig", "mig"), "sap": ("sap", "sap"), "dci": ("disentanglement", "disentanglement"),
            "modularity_explicitness": ("modularity", "modularity")}  # metric -> (its measure, its headline score)
computed = [name for name in HEADLINE if isinstance(result.get(name), dict)]
st.caption(f"on {result.get('dataset')}, seed {result.get('seed')}")
columns = st.columns(3)  # three abreast: a label keeps its unit and arrow in view
for i, name in enumerate(computed):
    (key, score), why = HEADLINE[name], undefined(name, result[name])
    ui.metric(columns[i % 3], key, "—" if why else result[name][score], "{:.3f}", f"Now {why}." if why else "")
rows = [{"metric": measure(name).label, "score": k, "value": "—" if why else f"{v:.4f}", "note": why or "",
         "seconds": round(r["seconds"], 1)}
        for name, r in result.items() if isinstance(r, dict) and "protocol" in r
        for why in [undefined(name, r)]
        for k, v in r.items() if isinstance(v, float) and k != "seconds"]
st.dataframe(rows, hide_index=True, column_config={
    "metric": st.column_config.TextColumn("metric", help="; ".join(f"{measure(n).label}: {measure(n).help}"
                                                                   for n in computed)),
    "value": st.column_config.TextColumn("value ↑", help="every score here: higher is better")})
ui.download((info.path / "disentanglement.json").read_bytes(), f"{info.name}-disentanglement.json",
            "download disentanglement.json")
ui.eval_download(info)
left, right = st.columns(2)
mig = result["mig"]
ui.show_figure(mi_matrix_figure(mig["mutual_information"], mig["factor_names"]), f"{info.name}-mutual-information",
               width=400, where=left)
with ui.errors_shown(stop=False):
    kl = ui.evaluation(info)["kl_per_dim"]
    if kl:
        ui.show_figure(kl_per_dim_figure(kl), f"{info.name}-kl-per-dim", width=400, where=right)
with st.expander("protocols (sizes and constants of Locatello et al. 2019 unless changed)"):
    st.json({name: r["protocol"] for name, r in result.items() if isinstance(r, dict) and "protocol" in r})
