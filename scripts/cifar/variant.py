"""Rule cifar_variant: a corrupted-labels or corrupted-pixels variant, keyed by record index."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.data.cifar10 import read_cifar10
    from anatomy.io import write_npz
    from anatomy.studies import cifar

    seed, spec = snakemake.params.seed, snakemake.params.spec
    idx_tr, x_tr, y_tr = read_cifar10(snakemake.input.manifest[0], "train")
    if "label_noise" in spec:
        p = float(spec["label_noise"])
        v = cifar.corrupt_labels(y_tr, p, seed)
        arrays = {**v, "description": f"labels redrawn uniformly with probability {p:g}"}
        print(f"p={p:g}: redrawn {v['redrawn'].mean():.4f}, changed {v['changed'].mean():.4f}")
    else:
        kind = spec["pixels"]
        idx_te, x_te, _ = read_cifar10(snakemake.input.manifest[0], "test")
        arrays = {**cifar.make_pixel_variant(kind, x_tr, x_te, seed), "test_index": idx_te,
                  "description": kind.replace("_", " ")}
    write_npz(snakemake.output[0], train_index=idx_tr, **arrays)
