"""Rule mnist_h5: MNIST (embedded | download | npz) -> results/data/mnist.h5."""
from anatomy.data.mnist import build_mnist
from anatomy.logs import log_step

with log_step(snakemake):
    p = snakemake.params.mnist
    counts = build_mnist(snakemake.output[0], source=p["source"], npz=snakemake.input.get("source"))
    print(f"mnist.h5 written from {p['source']}: {counts}")
