"""The paper's experiments: datasets, models, training runs, sweeps and reports.

Never imported by the core of simloss; needs the ``experiments`` extra
(``pip install 'simloss[experiments]'``). The parts:

- :mod:`simloss.experiments.data`: UTKFace, AFAD, CIFAR-100 and the embedded
  Abalone, each from its raw public layout, split with a fixed seed.
- :mod:`simloss.experiments.models`: ``AgeCNN``, ``LeNet``, ``MLP`` and
  ``load_checkpoint``, the one checked loader of weights.
- :mod:`simloss.experiments.config`: ``TrainConfig``, every setting of a run.
- :mod:`simloss.experiments.train`: ``run_training(config, out_dir)``, one run,
  written as a JSON record (a folder never holds files of two runs).
- :mod:`simloss.experiments.predict`: ``load_run`` and ``predict_images`` /
  ``predict_rows``, a trained run applied to new inputs.

Submodules are imported on use; importing this package is cheap.
"""

from __future__ import annotations

__all__: list[str] = []
