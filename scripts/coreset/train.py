"""Rules coreset_select, coreset_control and coreset_control_matched: one U-Net training step
(a selection run, a control stopped at the target, or a control trained for the selection's gradient steps)."""
from anatomy.logs import contract_files, log_step

with log_step(snakemake):
    from anatomy.studies import coreset
    from anatomy.training.setup import RunSettings

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    files = contract_files(snakemake)  # TensorBoard: the controls only (the selection is its own loop)
    common = dict(train_h5=inp.train, test_h5=inp.test, init_weights=inp.init, params=p.train,
                  run_settings=RunSettings.from_rule(snakemake, seed=p.seed))
    if snakemake.rule == "coreset_select":
        coreset.run_selection(files={**files, "selected": out.selected}, shuffle_seed=p.shuffle_seed, **common)
    else:
        budget = coreset.budget_steps(inp.budget) if snakemake.rule == "coreset_control_matched" else None
        control = coreset.parse_control(snakemake.wildcards.control)
        size = None if control["kind"] == "full" else coreset.selected_size(inp.selected)
        coreset.run_control(files=files, kind=control["kind"], size=size, subset_seed=control["subset_seed"],
                            budget_steps=budget, **common)
