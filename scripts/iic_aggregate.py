"""Rule iic_aggregate: runs.csv, summary.csv and every iic figure (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.io import read_dataset_h5
    from anatomy.plots import iic as plots
    from anatomy.studies import iic

    out, prov = snakemake.output, snakemake.params.provenance
    k, k_over = snakemake.params.clusters, snakemake.params.overclusters
    inp = snakemake.input
    runs, hist, preds = iic.collect(zip(inp.histories, inp.predictions, inp.metrics))
    runs.to_csv(out.runs, index=False, float_format="%.5f")
    iic.summarise(runs).to_csv(out.summary, index=False, float_format="%.5f")

    f = iic.figure_runs(runs)
    head_alpha, seed0, head_set = f["alphas"][-1], f["seed"], f["sets"][0]
    plots.transforms_figure({t: (preds[r]["examples"][0] / 255.0, preds[r]["twins"][:, 0])
                             for t, r in f["examples"].items()}, out.transforms, provenance=prov)
    plots.curves({t: hist[r] for t, r in f["by_set"].items()}, out.curves_by_set,
                 title=f"IIC per transform set (alpha {head_alpha[0]:g}, 50-way alpha {head_alpha[1]:g}, seed {seed0})",
                 provenance=prov)
    plots.curves({f"alpha {a:g} / {o:g}": hist[r] for (a, o), r in f["by_alpha"].items()}, out.curves_by_alpha,
                 title=f"IIC per alpha (10-way / 50-way head), transform set '{head_set}', seed {seed0}", provenance=prov)
    p = preds[f["headline"]]
    acc, order = iic.label_order(p["labels"], p["z"].argmax(1), k)
    name = f"set '{head_set}', alpha {head_alpha[0]:g}, seed {seed0}"
    plots.confusion(p["labels"], p["z"].argmax(1), k, out.confusion, order=order,
                    title=f"True label vs cluster, 10-way head ({name}): accuracy {acc:.3f}", provenance=prov)
    plots.confusion(p["labels"], p["z_over"].argmax(1), k_over, out.confusion_over,
                    title=f"True label vs overcluster, 50-way head ({name})", provenance=prov)
    plots.p_animation(p["p_history"], out.gif, title=f"Joint distribution P over epochs ({name})", provenance=prov)
    x_test, _ = read_dataset_h5(snakemake.input.mnist, "test")
    groups = iic.cluster_examples(p["z_over"], p["labels"], x_test, n_clusters=k_over)
    plots.overcluster_examples(groups, out.overcluster_examples, provenance=prov)
    print(runs.to_string())
