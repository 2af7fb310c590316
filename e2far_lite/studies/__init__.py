"""Experiments that train many networks and compare them (the runners behind ``experiments/``).

- :mod:`.recipe`: the recipe study, one lever of the training recipe changed per run
  (``experiments/recipe_study.py``, ``experiments/ablation_study.py``);
- :mod:`.ablation`: the paper's ablation table of ``python -m e2far_lite benchmark``
  (UH-E2FAR against no fusion, single task, the mean shape and landmark fitting);
- :mod:`.realism`: which realism lever closes the synthetic-to-real gap
  (``experiments/realism_study.py``).

They sit above evaluation and real photos because they train, score and read photos.
"""
