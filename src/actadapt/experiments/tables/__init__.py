"""One module per table of the paper, each registering an :class:`~actadapt.experiments.registry.Experiment`.

Table 1 (:mod:`.table1`) trains batched teacher-student MLPs; Tables 2-4 are conv x FC activation grids on
:class:`~actadapt.experiments.grid.GridExperiment`, each supplying only its data, model, cell training and
extra report sections. They are imported on first use by :func:`actadapt.experiments.get_experiment`.
"""
