import pytest
import torch

from subnet.outer import NesterovOuter, median_clip_scales, sparse_outer_step, update_norm


def test_median_clip_scales_bring_outliers_to_the_lower_median():
    norms = [1.0, 2.0, 10.0]
    assert median_clip_scales(norms) == [1.0, 1.0, 0.2]
    # even count: the lower median (2.0), so both large updates are clipped to it
    assert median_clip_scales([4.0, 1.0, 2.0, 8.0]) == [0.5, 1.0, 1.0, 0.25]
    assert median_clip_scales([]) == []


def test_outer_step_clips_averages_contributors_and_descends():
    theta = {"w": torch.ones(3)}
    updates = [{"w": torch.tensor([0.6, 0.8, 0.0])}, {"w": torch.tensor([0.6, 0.0, 0.8])},
               {"w": torch.tensor([0.0, 0.0, 5.0])}]  # the outlier is clipped to norm 1
    norms = [update_norm(u) for u in updates]
    new = sparse_outer_step(theta, iter(updates), norms, lr=0.5)
    # entry 0: mean(0.6, 0.6); entry 1: only the first carries it; entry 2: mean(0.8, 1.0)
    torch.testing.assert_close(new["w"], torch.tensor([1 - 0.5 * 0.6, 1 - 0.5 * 0.8, 1 - 0.5 * 0.9]))
    assert torch.equal(theta["w"], torch.ones(3))


def test_outer_step_needs_one_norm_per_update():
    theta = {"w": torch.ones(2)}
    with pytest.raises(ValueError):
        sparse_outer_step(theta, [{"w": torch.ones(2)}], [1.0, 2.0], lr=1.0)


def test_nesterov_matches_torch_sgd():
    torch.manual_seed(0)
    theta = {"w": torch.randn(5)}
    param = torch.nn.Parameter(theta["w"].clone())
    reference = torch.optim.SGD([param], lr=0.7, momentum=0.9, nesterov=True)
    ours = NesterovOuter(0.7, 0.9)
    for _ in range(5):
        g = torch.randn(5)
        theta = ours.step(theta, {"w": g})
        param.grad = g.clone()
        reference.step()
        torch.testing.assert_close(theta["w"], param.detach(), rtol=1e-6, atol=1e-6)


def test_empty_selection_leaves_model():
    theta = {"w": torch.ones(2)}
    new = sparse_outer_step(theta, [], [], 1.0)
    assert torch.equal(new["w"], theta["w"]) and new["w"] is not theta["w"]
