"""dataset-anatomy: what a network actually learns from its data.

The package holds all logic of the Snakemake workflow; the rule scripts in
``scripts/`` only read ``snakemake.*``, call into it and write outputs.
Nothing here imports TensorFlow at module import time except the modules that
train or predict (``anatomy.training``, ``anatomy.models``), so that data
building, plotting and aggregation jobs start in well under a second.
"""

__version__ = "0.1.0"
