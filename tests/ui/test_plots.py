"""ui/plots.py's shape comparison row: what it draws and what its titles say."""

import matplotlib
import numpy as np
import pytest
import torch

from e2far_lite import MorphableModel
from e2far_lite.model.metrics import per_vertex_error
from e2far_lite.ui import shape_comparison

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def model() -> MorphableModel:
    return MorphableModel.default()


@pytest.mark.parametrize("vmax", [None, 8.0])
def test_shape_comparison_draws_input_truth_and_each_prediction(model, vmax):
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(0)
    true = model(torch.randn(1, model.num_id, generator=g), torch.zeros(1, model.num_exp))[0]
    guess = true + 0.5 * torch.randn(true.shape, generator=g)
    fig = shape_comparison(torch.rand(3, 32, 32), true, {"mean face": model.mean,
                                                        "predicted": guess},
                           model.triangles, vmax=vmax)
    titles = [ax.get_title() for ax in fig.axes]
    rmse = per_vertex_error(torch.stack([model.mean, guess]), true.expand(2, -1, -1))
    rmse = rmse.pow(2).mean(1).sqrt()
    assert titles == ["input", "true shape", f"mean face: {float(rmse[0]):.2f} mm",
                      f"predicted: {float(rmse[1]):.2f} mm"]
    truth, mean_face = (np.asarray(ax.images[0].get_array(), dtype=np.float64)
                        for ax in fig.axes[1:3])
    truth, mean_face = truth / truth.max(), mean_face / mean_face.max()  # white: 1
    # plain shading draws the true and the predicted faces in the same skin tone; error
    # colours (inferno: dark for small errors) change the prediction's pixels
    face = (truth < 0.99).any(-1) & (mean_face < 0.99).any(-1)
    same_tone = np.allclose(truth[face].mean(0), mean_face[face].mean(0), atol=0.1)
    assert same_tone == (vmax is None)
    plt.close(fig)


def test_shape_comparison_refuses_a_batch_for_the_truth(model):
    with pytest.raises(ValueError, match=r"^true: expected shape"):
        shape_comparison(torch.rand(3, 32, 32), model.mean[None], {"p": model.mean},
                         model.triangles)
