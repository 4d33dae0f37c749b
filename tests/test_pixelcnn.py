import torch

from vaelab.models.pixelcnn import GatedPixelCNN


def test_output_depends_only_on_codes_before_it():
    """The gradient of the logits at (i, j) w.r.t. the input embedding is zero at and after (i, j)."""
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=6, dim=8, layers=4, kernel=5)
    h, w = 5, 6
    codes = torch.randint(6, (1, h, w))
    emb = net.embed(codes).movedim(-1, 1).detach().requires_grad_(True)
    for i, j in [(0, 0), (2, 3), (4, 5), (3, 0)]:
        x_v = x_h = emb
        for layer in net.layers:
            x_v, x_h = layer(x_v, x_h)
        (grad,) = torch.autograd.grad(net.head(x_h)[0, :, i, j].sum(), emb)
        seen = grad.abs().sum((0, 1)) > 0  # [H, W]
        order = torch.arange(h * w).view(h, w)
        assert not seen[order >= i * w + j].any(), (i, j)
        if i * w + j > 0:  # no blind spot: every earlier position in the receptive field reaches it
            assert seen[max(0, i - 1), j] if i > 0 else seen[i, j - 1]


def test_prior_learns_a_fixed_pattern_and_samples_it():
    torch.manual_seed(0)
    pattern = torch.tensor([[0, 1, 2], [3, 0, 1], [2, 3, 0]])
    net = GatedPixelCNN(num_codes=4, dim=16, layers=3, kernel=3)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    codes = pattern.expand(16, 3, 3)
    for _ in range(100):
        loss = net.nll(codes).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert net.bits_per_code(codes) < 0.05
    samples = net.sample(8, (3, 3), generator=torch.Generator().manual_seed(0))
    assert (samples == pattern).float().mean() > 0.95
