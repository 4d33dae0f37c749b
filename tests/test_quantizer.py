import pytest
import torch

from vaelab.models.quantizer import VectorQuantizer


def test_nearest_code_matches_brute_force():
    torch.manual_seed(0)
    vq = VectorQuantizer(37, 5, ema=False).eval()
    vq.codebook.data.normal_()
    z = torch.randn(4, 5, 3, 3)  # [B, D, H, W]
    out = vq(z)
    flat = z.movedim(1, -1).reshape(-1, 5)
    torch.testing.assert_close(vq.distances(flat), torch.cdist(flat, vq.codebook) ** 2, rtol=1e-4, atol=1e-4)
    # the nearest code is 0.059 closer than the next (squared), 1e4 times float32 rounding: no order flips it
    assert torch.equal(out.indices.flatten(), torch.cdist(flat, vq.codebook).argmin(1))
    torch.testing.assert_close(out.z_q.movedim(1, -1).reshape(-1, 5), vq.codebook[out.indices.flatten()])


def test_straight_through_passes_the_gradient_to_the_encoder():
    vq = VectorQuantizer(8, 3, ema=False)
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    g = torch.randn(2, 3, 4, 4)
    (vq(z).z_q * g).sum().backward()
    torch.testing.assert_close(z.grad, g)  # straight through: a copy
    assert vq.codebook.grad is None  # the reconstruction path does not move the codes


def test_each_loss_moves_only_what_it_should():
    vq = VectorQuantizer(8, 3, ema=False)
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    vq(z).codebook_loss.backward()
    assert z.grad is None and vq.codebook.grad.abs().sum() > 0
    vq.codebook.grad = None
    z2 = torch.randn(2, 3, 4, 4, requires_grad=True)
    vq(z2).commitment_loss.backward()
    assert vq.codebook.grad is None and z2.grad.abs().sum() > 0


def test_ema_update_follows_the_moving_averages():
    vq = VectorQuantizer(2, 1, ema=True, decay=0.5, eps=0.0, channel_dim=-1)
    vq.codebook.copy_(torch.tensor([[0.0], [10.0]]))
    vq.embed_sum.copy_(vq.codebook)
    vq.cluster_size.fill_(1.0)
    out = vq(torch.tensor([[1.0], [3.0], [9.0]]))  # codes 0, 0, 1
    assert out.indices.tolist() == [0, 0, 1] and out.codebook_loss.item() == 0
    # z_q and the commitment loss use the codes as they were before this step's update
    assert out.z_q.flatten().tolist() == [0.0, 0.0, 10.0]
    assert out.commitment_loss.item() == pytest.approx((1 + 9 + 1) / 3)  # integers: exact sums, one division
    # cluster sizes 0.5*1 + 0.5*[2, 1] = [1.5, 1.0]; sums 0.5*[0, 10] + 0.5*[4, 9] = [2, 9.5]
    torch.testing.assert_close(vq.cluster_size, torch.tensor([1.5, 1.0]))  # exact in float32
    torch.testing.assert_close(vq.codebook, torch.tensor([[2 / 1.5], [9.5]]))  # one float32 division


def test_a_code_no_batch_picks_keeps_its_value_and_can_be_picked_later():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, ema=True, channel_dim=-1)  # default EMA statistics
    init = vq.codebook.clone()
    for _ in range(20):
        assert vq(init[:1].expand(8, 2)).indices.eq(0).all()
    torch.testing.assert_close(vq.codebook[1:], init[1:], rtol=1e-3, atol=0)  # not sum / eps
    assert vq(init[2:3]).indices.item() == 2


def test_kmeans_init_runs_on_the_first_batches_and_resumes_from_a_state_dict():
    torch.manual_seed(0)
    centers = torch.tensor([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    batches = [c + 0.1 * torch.randn(50, 2) for c in centers]  # one cluster per batch
    vq = VectorQuantizer(6, 2, kmeans_init=True, kmeans_batches=3, channel_dim=-1)
    init = vq.codebook.clone()
    for b in batches[:2]:
        vq(b)
    assert not vq.initialized and len(vq.kmeans_data) == 100
    resumed = VectorQuantizer(6, 2, kmeans_init=True, kmeans_batches=3, channel_dim=-1)
    resumed.load_state_dict(vq.state_dict())
    for q in (vq, resumed):
        out = q(batches[2])
        assert q.initialized and len(q.kmeans_data) == 0 and not torch.equal(q.codebook, init)
        assert (out.z_q - batches[2]).norm(dim=1).max() < 1  # this batch is already quantized by the centroids
        assert torch.cdist(centers, q.codebook).min(1).values.max() < 1  # a code at each batch's cluster
    torch.testing.assert_close(resumed.codebook, vq.codebook)


def test_dead_codes_are_counted_when_restarted():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, ema=True, dead_after=3, channel_dim=-1)
    x = vq.codebook[:1].clone().expand(8, 2)  # only code 0 (ties go to it after restarts put codes at x)
    assert [vq(x).dead_codes.item() for _ in range(5)] == [0, 0, 3, 0, 0]
    assert vq.dead_codes() == 0 and vq.dead_codes(steps=2) == 3  # restarted at step 3, unused since
    assert vq(x).dead_codes.item() == 3
    plain = VectorQuantizer(4, 2, ema=True, channel_dim=-1)  # no restarts: dead after USAGE_WINDOW steps
    counts = [plain(x).dead_codes.item() for _ in range(100)]
    assert counts[98] == 0 and counts[99] == 3 and plain.dead_codes() == 3


def test_kmeans_init_and_dead_code_restarts_use_more_codes():
    torch.manual_seed(0)
    data = torch.randn(2000, 4) * 3 + 5  # far from the initial codebook around 0
    plain = VectorQuantizer(64, 4, ema=True, channel_dim=-1)
    better = VectorQuantizer(64, 4, ema=True, kmeans_init=True, dead_after=5, channel_dim=-1)
    for step in range(30):
        batch = data[torch.randint(2000, (256,))]
        used_plain, used_better = plain(batch).codes_used, better(batch).codes_used
    assert used_plain < 0.3 and used_better > 0.8, (used_plain, used_better)
    err = lambda vq: (vq.eval()(data).z_q - data).pow(2).mean()  # noqa: E731
    assert err(better) < err(plain) / 2
    assert plain.dead_codes(steps=20) > 50 and better.dead_codes(steps=20) < 5


def test_low_dimensional_cosine_lookup():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 32, ema=True, lookup_dim=4, cosine=True)
    z = torch.randn(2, 32, 3, 3, requires_grad=True)
    vq(z)  # one EMA update
    # codes stay on the unit sphere (norms of 4 numbers: a few roundings, 3e-7)
    assert torch.allclose(vq.codebook.norm(dim=1), torch.ones(16), atol=1e-5)
    out = vq.eval()(z)
    assert out.z_q.shape == z.shape and out.indices.shape == (2, 3, 3)
    proj = torch.nn.functional.normalize(vq.project_in(z.detach().movedim(1, -1)), dim=-1).reshape(-1, 4)
    # the most similar code, by a cosine margin of at least 0.0096 (float32 rounding: 1e-7)
    assert torch.equal(out.indices.flatten(), (proj @ vq.codebook.t()).argmax(1))
    assert torch.equal(vq.codes(z), out.indices)
    out.z_q.sum().backward()
    assert z.grad.abs().sum() > 0 and vq.project_out.weight.grad is not None
