"""toposeg.reports.graph_figure.route_figure: PNG written headless with the documented size."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("networkx")
pytest.importorskip("skan")

from toposeg.reports.graph_figure import route_figure  # noqa: E402


def roads():
    m = np.zeros((48, 48), bool)
    for k in (8, 24, 40):
        m[k, 8:41] = True
        m[8:41, k] = True
    cut = m.copy()
    cut[24, 30:34] = False
    return m, cut


@pytest.mark.parametrize("preds, n_panels", [(lambda m, c: c, 3), (lambda m, c: {"U-Net": c, "SHPM": m}, 4)])
def test_route_figure_size(tmp_path, preds, n_panels):
    from skimage.io import imread

    gt, cut = roads()
    image = np.random.default_rng(0).random((48, 48))
    path = route_figure(image, gt, preds(gt, cut), tmp_path / "f" / "routes.png", n_routes=3, seed=1,
                        cell=2.0, dpi=50)
    img = imread(path)
    assert img.shape[:2] == (125, n_panels * 100)
    assert img[..., :3].std() > 0


def test_route_figure_explicit_pairs_rgb_image_and_no_image(tmp_path):
    gt, cut = roads()
    rgb = np.random.default_rng(0).random((48, 48, 3))
    pairs = [((24, 8), (24, 40)), ((8, 8), (40, 40))]
    assert route_figure(rgb, gt, [cut, gt], tmp_path / "a.png", pairs=pairs).is_file()
    assert route_figure(None, gt, cut, tmp_path / "b.png", pairs=pairs).is_file()


def test_route_figure_empty_masks(tmp_path):
    gt, cut = roads()
    empty = np.zeros_like(gt)
    assert route_figure(None, gt, empty, tmp_path / "a.png", n_routes=2).is_file()  # routes unreachable
    assert route_figure(None, empty, empty, tmp_path / "b.png").is_file()  # no routes at all


def test_route_figure_bad_input(tmp_path):
    gt, cut = roads()
    with pytest.raises(ValueError, match=r"2D masks only, got gt of shape \(2, 48, 48\)"):
        route_figure(None, np.stack([gt, gt]), cut, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"prediction 'x' has shape \(48, 40\), ground truth has \(48, 48\)"):
        route_figure(None, gt, {"x": cut[:, :40]}, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"image shape \(10, 10\) does not match the masks' shape \(48, 48\)"):
        route_figure(np.zeros((10, 10)), gt, cut, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"at least one prediction"):
        route_figure(None, gt, {}, tmp_path / "a.png")
