"""Thread counts hold: rendering and training never change the count the user set.

numba's OpenMP thread pool starts with ``omp_set_num_threads`` in the OpenMP runtime it shares
with torch, once per process, at the first parallel render. So each count is checked in a fresh
interpreter, where that first render really happens after the user's setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from e2far_lite.paths import REPO_ROOT

ROOT = REPO_ROOT

SCRIPT = """
import json, sys
import torch
threads = int(sys.argv[1])
torch.set_num_threads(threads)
from e2far_lite.model import DEFAULT_MODEL_FILE, MorphableModel
from e2far_lite.paths import data_dir
from e2far_lite.synth import DataConfig, SyntheticFaces
from e2far_lite.train import get_config, train

seen = {"set": torch.get_num_threads()}
model = MorphableModel.load(data_dir() / DEFAULT_MODEL_FILE)
SyntheticFaces(model, 4, seed=1, config=DataConfig(image_size=64)).batch(range(4))
seen["after_render"] = torch.get_num_threads()
import numba
seen["numba_layer"] = numba.threading_layer()
config = get_config("smoke", steps=1, batch_size=2, val_size=2, log_every=1, val_every=1,
                    ckpt_every=1, warmup_steps=1)
train(config, sys.argv[2], device="cpu", progress=False, cache_dir=sys.argv[3])
seen["after_train"] = torch.get_num_threads()
print(json.dumps(seen))
"""


@pytest.mark.slow  # two fresh interpreters, about 8 s: CI runs it, the fast lane does not
@pytest.mark.parametrize("threads", [1, 2])
def test_render_and_a_training_step_keep_the_thread_count(threads, tmp_path):
    # NUMBA_NUM_THREADS left to numba (all cores), as a user would: that is the count its pool
    # would otherwise impose on torch
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(threads), str(tmp_path / "run"),
                           str(tmp_path / "cache")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["set"] == threads
    assert seen["after_render"] == threads, seen
    assert seen["after_train"] == threads, seen
