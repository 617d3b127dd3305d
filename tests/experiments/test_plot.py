"""actadapt.plot: learned curves and alpha histograms (drawn into Agg figures, values checked)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from actadapt import AdaptiveGumbel, AdaptiveReLU  # noqa: E402
from actadapt.functional import adaptive_gumbel, adaptive_relu  # noqa: E402
from actadapt.plot import plot_alpha_histogram, plot_learned_curves  # noqa: E402


def test_learned_curves_one_line_per_neuron_with_the_right_values():
    alphas = torch.tensor([0.1, 1.0, 4.0])
    ax = plot_learned_curves(alphas, "gumbel", "bounded", x_range=(-3, 3), title="t")
    lines = ax.get_lines()
    assert len(lines) == 3 and ax.get_title() == "t"
    for line, a in zip(lines, alphas):
        x, y = (np.asarray(v) for v in line.get_data())
        assert x[0] == pytest.approx(-3) and x[-1] == pytest.approx(3)
        ref = adaptive_gumbel(torch.tensor(x), torch.tensor(float(a), dtype=torch.float64)).numpy()
        assert np.allclose(y, ref)
    plt.close(ax.figure)


def test_learned_curves_from_a_module():
    m = AdaptiveReLU(num_parameters=4)
    with torch.no_grad():
        m.rho.copy_(torch.log(torch.tensor([0.5, 1.0, 2.0, 8.0])))
    fig, ax = plt.subplots()
    assert plot_learned_curves(m, ax=ax) is ax
    lines = ax.get_lines()
    assert len(lines) == 4
    x, y = (np.asarray(v) for v in lines[3].get_data())
    assert np.allclose(y, adaptive_relu(torch.tensor(x), torch.tensor(8.0, dtype=torch.float64)).numpy(), atol=1e-6)
    plt.close(fig)


def test_learned_curves_need_family_and_form():
    with pytest.raises(ValueError, match="needs family and form"):
        plot_learned_curves(torch.ones(3))


def test_alpha_histogram_tensor_dict_and_module():
    ax = plot_alpha_histogram(torch.tensor([0.5, 1.0, 1.5, 2.0]), bins=4)
    counts = [p.get_height() for p in ax.patches]
    assert sum(counts) == 4
    plt.close(ax.figure)
    ax = plot_alpha_histogram({"AGumb": AdaptiveGumbel(num_parameters=5), "AReLU": torch.full((7,), 2.0)}, bins=5)
    assert sum(p.get_height() for p in ax.patches) == 12
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["AGumb", "AReLU"]
    plt.close(ax.figure)
    ax = plot_alpha_histogram(torch.tensor([1e-3, 1.0, 10.0]))  # spans > 100x: log axis
    assert ax.get_xscale() == "log"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="no alphas"):
        plot_alpha_histogram({})
