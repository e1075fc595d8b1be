import pytest
import torch

from subnet.outer import (
    NesterovOuter,
    average_overlapping,
    clip_to_median_norm,
    sparse_outer_step,
    update_norm,
)


def test_clip_to_median_norm():
    updates = [{"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 2.0])}, {"w": torch.tensor([6.0, 8.0])}]
    clipped = clip_to_median_norm(updates)
    assert [round(update_norm(u), 6) for u in clipped] == [1.0, 2.0, 2.0]
    # direction kept
    torch.testing.assert_close(clipped[2]["w"], torch.tensor([1.2, 1.6]))


def test_average_counts_only_contributors():
    a = {"w": torch.tensor([2.0, 0.0, 4.0])}
    b = {"w": torch.tensor([4.0, 0.0, 0.0])}
    avg = average_overlapping([a, b])["w"]
    assert avg.tolist() == [3.0, 0.0, 4.0]


def test_sparse_outer_step_descends_and_keeps_inputs():
    theta = {"w": torch.ones(3)}
    updates = [{"w": torch.tensor([0.6, 0.8, 0.0])}, {"w": torch.tensor([0.6, 0.0, 0.8])},
               {"w": torch.tensor([0.0, 0.0, 5.0])}]  # the outlier is clipped to norm 1
    new = sparse_outer_step(theta, updates, lr=0.5)
    torch.testing.assert_close(new["w"], torch.tensor([0.7, 0.6, 1 - 0.5 * 0.9]))
    assert torch.equal(theta["w"], torch.ones(3))


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
    assert torch.equal(sparse_outer_step(theta, [], 1.0)["w"], theta["w"])
    with pytest.raises(IndexError):
        average_overlapping([])
