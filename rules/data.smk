# Datasets -> results/data/. No TensorFlow here except for writing TFRecords.


rule mnist_h5:
    input:
        unpack(lambda wc: source_input("mnist")),
    output:
        f"{RESULTS}/data/mnist.h5",
    log:
        f"{RESULTS}/logs/data/mnist.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    params:
        mnist=config["data"]["mnist"],
    script:
        "../scripts/data/mnist.py"


rule cifar10_tfrecords:
    input:
        unpack(lambda wc: source_input("cifar10")),
    output:
        manifest=f"{RESULTS}/data/cifar10/manifest.json",
        shards=expand(
            f"{RESULTS}/data/cifar10/{{split}}-{{k:05d}}-of-{config['data']['cifar10']['shards']:05d}.tfrecord",
            split=["train", "test"],
            k=range(config["data"]["cifar10"]["shards"]),
        ),
    log:
        f"{RESULTS}/logs/data/cifar10.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
    params:
        cifar10=config["data"]["cifar10"],
    script:
        "../scripts/data/cifar10.py"


rule digits_csv:
    input:
        unpack(lambda wc: source_input("digits")),
    output:
        train=f"{RESULTS}/data/digits/train.csv",
        test=f"{RESULTS}/data/digits/test.csv",
        test_labels=f"{RESULTS}/data/digits/test_labels.csv",
    log:
        f"{RESULTS}/logs/data/digits.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
    params:
        digits=config["data"]["digits"],
        seed=config["seed"],
    script:
        "../scripts/data/digits.py"


rule ellipses_h5:
    output:
        train=f"{RESULTS}/data/ellipses/train.h5",
        test=f"{RESULTS}/data/ellipses/test.h5",
    log:
        f"{RESULTS}/logs/data/ellipses.log",
    # on the critical path: the coreset selections (the longest jobs) wait for it
    priority: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
    params:
        ellipses=config["data"]["ellipses"],
        seed=config["seed"],
    script:
        "../scripts/data/ellipses.py"
