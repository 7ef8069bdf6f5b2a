"""Rule cifar_aggregate: summary.csv, label_corruption.csv and every cifar figure (no TensorFlow)."""
import json
from pathlib import Path

from anatomy.logs import log_step

with log_step(snakemake):
    import numpy as np
    import pandas as pd

    from anatomy.plots.cifar import one_panel, three_panels
    from anatomy.studies.cifar import noisy_bn_points, run_summary

    out, prov, base = snakemake.output, snakemake.params.provenance, snakemake.params.base_lr
    hist, rows = {}, []
    for h_path, m_path in zip(snakemake.input.histories, snakemake.input.metrics):
        name = Path(h_path).parent.name
        hist[name] = pd.read_csv(h_path)
        rows.append(run_summary(name, hist[name], json.loads(Path(m_path).read_text())))
    summary = pd.DataFrame(rows)
    summary.to_csv(out.summary, index=False, float_format="%.4f")

    label_rows = []
    for p in snakemake.input.labels:
        with np.load(p) as v:
            label_rows.append({"p": float(Path(p).stem.removeprefix("labels_p")), "images": len(v["labels"]),
                               "redrawn_fraction": float(v["redrawn"].mean()),
                               "changed_fraction": float(v["changed"].mean())})
    pd.DataFrame(label_rows, columns=["p", "images", "redrawn_fraction", "changed_fraction"]).to_csv(
        out.label_table, index=False, float_format="%.4f")

    def pick(prefixes):
        return {n: h for n, h in hist.items() if n.startswith(prefixes)}

    b = f"lr{base:g}"
    lrs = {n: h for n, h in hist.items() if n.startswith(("bn_lr", "nobn_lr"))}
    rates = sorted({float(n.split("lr")[1]) for n in lrs})
    three_panels(dict(sorted(lrs.items(), key=lambda kv: (float(kv[0].split("lr")[1]), kv[0]))), out.bn_lr,
                 title="BatchNorm (solid) vs no BatchNorm (dashed), plain SGD at constant learning rates",
                 provenance=prov, styles={n: "--" for n in lrs if n.startswith("nobn")},
                 colors={n: rates.index(float(n.split("lr")[1])) for n in lrs})
    three_panels({f"BN {b}": hist[f"bn_{b}"], **{f"noisy BN {b} (curve: noise off, statistics as trained)": h
                                                for h in pick(("noisybn",)).values()}}, out.noisy_bn,
                 title="BN with injected time-varying noise (Santurkar et al. 2018): three test accuracies at the end",
                 provenance=prov, final_points=noisy_bn_points(summary, base))
    three_panels({f"BN {b}": hist[f"bn_{b}"], **{f"BN {b} + pad/crop/flip": h for h in pick(("aug",)).values()}},
                 out.augmentation, title="Augmentation (reflect-pad 4, random crop, flip p = 0.5)", provenance=prov)
    labels = {"p = 0": hist[f"bn_{b}"], **{n.replace("labels_p", "p = "): h for n, h in pick(("labels_",)).items()}}
    three_panels(labels, out.labels, title="Corrupted labels: each redrawn uniformly with probability p",
                 provenance=prov)
    pixels = {"clean": hist[f"bn_{b}"], **{n.removeprefix("pixels_").replace("_", " "): h
                                          for n, h in pick(("pixels_",)).items()}}
    three_panels(pixels, out.pixels, title="Corrupted pixels (test untouched except for the fixed permutation)",
                 provenance=prov)
    corruptions = {**{k: v for k, v in labels.items() if k != "p = 0"}, **{k: v for k, v in pixels.items() if k != "clean"}}
    corruptions = {"clean": hist[f"bn_{b}"], **corruptions}
    one_panel(corruptions, "accuracy", "training accuracy", out.corruptions_train,
              title="Training accuracy under every corruption", provenance=prov)
    one_panel(corruptions, "test_accuracy", "test accuracy", out.corruptions_test,
              title="Test accuracy under every corruption", provenance=prov)
    print(summary.to_string())
