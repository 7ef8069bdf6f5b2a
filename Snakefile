# dataset-anatomy: five studies of what a network learns from its data.
# Read README.md first; config/config.yaml is the quick study, config/full.yaml the published scale.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/datasets.smk"
include: "rules/anatomy.smk"
include: "rules/crops.smk"
include: "rules/cifar.smk"
include: "rules/iic.smk"
include: "rules/digits.smk"
include: "rules/coreset.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
