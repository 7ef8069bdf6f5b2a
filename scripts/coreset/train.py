"""Rule coreset_train: one U-Net training (a selection run, a control stopped at the target, or a
control trained for its seed's in-order selection's gradient steps), as its entry in the run table says."""
from anatomy.logs import contract_files, log_step

with log_step(snakemake):
    from anatomy.studies import coreset, coreset_controls
    from anatomy.training.setup import RunSettings

    inp, p = snakemake.input, snakemake.params
    files = contract_files(snakemake)
    common = dict(train_h5=inp.train, test_h5=inp.test, init_weights=inp.init, params=p.train, files=files,
                  run_settings=RunSettings.from_rule(snakemake, seed=p.seed))
    if "control" not in p.spec:
        coreset.run_selection(shuffle_seed=p.spec["shuffle_seed"], **common)
    else:
        kind = coreset_controls.parse_control(p.spec["control"])["kind"]
        coreset_controls.run_control(
            kind=kind, size=None if kind == "full" else coreset_controls.selected_size(inp.selected),
            budget_steps=coreset_controls.budget_steps(inp.budget) if p.spec["matched"] else None, **common)
