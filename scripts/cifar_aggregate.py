"""Rule cifar_aggregate: summary.csv, label_corruption.csv and every cifar figure (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.cifar import one_panel, three_panels
    from anatomy.studies.cifar import collect, figure_groups, label_table, noisy_bn_points

    out, prov, base = snakemake.output, snakemake.params.provenance, snakemake.params.base_lr
    hist, summary = collect(snakemake.input.histories, snakemake.input.metrics)
    summary.to_csv(out.summary, index=False, float_format="%.4f")
    label_table(snakemake.input.labels).to_csv(out.label_table, index=False, float_format="%.4f")

    g = figure_groups(hist, base)
    three_panels(g["bn_lr"]["curves"], out.bn_lr, styles=g["bn_lr"]["styles"], colors=g["bn_lr"]["colors"],
                 title="BatchNorm (solid) vs no BatchNorm (dashed), plain SGD at constant learning rates",
                 provenance=prov)
    three_panels(g["noisy_bn"], out.noisy_bn, provenance=prov, final_points=noisy_bn_points(summary, base),
                 title="BN with injected time-varying noise (Santurkar et al. 2018): three test accuracies at the end")
    three_panels(g["augmentation"], out.augmentation, provenance=prov,
                 title="Augmentation (reflect-pad 4, random crop, flip p = 0.5)")
    three_panels(g["labels"], out.labels, title="Corrupted labels: each redrawn uniformly with probability p",
                 provenance=prov)
    three_panels(g["pixels"], out.pixels, provenance=prov,
                 title="Corrupted pixels (test untouched except for the fixed permutation)")
    one_panel(g["corruptions"], "accuracy", "training accuracy", out.corruptions_train,
              title="Training accuracy under every corruption", provenance=prov)
    one_panel(g["corruptions"], "test_accuracy", "test accuracy", out.corruptions_test,
              title="Test accuracy under every corruption", provenance=prov)
    print(summary.to_string())
