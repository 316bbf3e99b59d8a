"""SurfEmb-style embedding: shapes, loss and metric values, exact augmentation geometry, and a tiny learning run."""

from __future__ import annotations

import math

import pytest
import torch

from nerfreg_ns.embedding.augment import AugmentConfig, augment, warp_similarity
from nerfreg_ns.embedding.infonce import infonce_loss, infonce_terms, nearest_key_accuracy, symmetric_nearest_key_accuracy
from nerfreg_ns.embedding.keys import KeyHead
from nerfreg_ns.embedding.query import QueryEncoder
from nerfreg_ns.embedding.train import EmbeddingBatchSource, embedding_step

torch.set_num_threads(1)

NO_PHOTO = dict(blur_prob=0.0, noise_std=0.0, brightness=(1.0, 1.0), contrast=(1.0, 1.0))


@pytest.mark.parametrize("channels", [(16, 32, 64), (8, 16)])
def test_query_encoder_odd_size(channels):
    torch.manual_seed(0)
    enc = QueryEncoder(emb_dim=12, channels=channels)
    q, m = enc(torch.rand(2, 3, 37, 45))
    assert q.shape == (2, 12, 37, 45) and m.shape == (2, 1, 37, 45)
    assert torch.isfinite(q).all() and q.std() > 0


def test_key_head_shape_and_nonzero():
    torch.manual_seed(0)
    keys = KeyHead(emb_dim=12)(torch.rand(50, 3) * 2 - 1)
    assert keys.shape == (50, 12)
    assert keys.abs().mean() > 1e-3
    assert (keys[0] - keys[1]).abs().max() > 1e-4  # different points, different keys


def test_infonce_uniform_when_keys_zero():
    q = torch.randn(7, 12)
    loss = infonce_loss(q, torch.zeros(7, 12), torch.zeros(30, 12))
    assert loss.item() == pytest.approx(math.log(31), rel=1e-6)


def test_infonce_small_when_positive_dominates():
    q = torch.zeros(3, 12)
    q[torch.arange(3), torch.arange(3)] = 1.0  # queries e_0..e_2
    negs = torch.zeros(5, 12)
    negs[torch.arange(5), torch.arange(3, 8)] = 1.0  # orthogonal to every query
    assert infonce_loss(q, 50.0 * q, negs).item() < 1e-6  # log(1 + 5 e^-50)


def test_infonce_terms_equal_cross_entropy_over_the_stacked_logits():
    """The loss is SurfEmb's cross-entropy with the positive as class 0, gradients included, and the
    accuracy counts positives above every negative, also at logits large enough to overflow exp."""
    torch.manual_seed(0)
    for scale in (1.0, 60.0):
        q = (torch.randn(200, 12) * scale).requires_grad_()
        pos_keys, neg_keys = torch.randn(200, 12).requires_grad_(), torch.randn(40, 12).requires_grad_()
        pos = (q * pos_keys).sum(dim=1, keepdim=True)
        logits = torch.cat([pos, q @ neg_keys.T], dim=1)
        want = torch.nn.functional.cross_entropy(logits, torch.zeros(200, dtype=torch.long))
        want_acc = (logits.argmax(dim=1) == 0).float().mean()
        loss, acc = infonce_terms(q, pos_keys, neg_keys)
        assert loss.item() == pytest.approx(want.item(), rel=1e-5) and acc.item() == want_acc.item()
        assert 0 < acc.item() < 1 and not acc.requires_grad
        for got, ref in zip(torch.autograd.grad(loss, (q, pos_keys, neg_keys)), torch.autograd.grad(want, (q, pos_keys, neg_keys))):
            assert torch.allclose(got, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_nearest_key_accuracy_one_hot():
    M = 20
    cand_keys = torch.eye(M)
    cand_points = torch.randn(M, 3)
    true_idx = torch.randint(M, (100,), generator=torch.Generator().manual_seed(0))
    queries, true_points = cand_keys[true_idx], cand_points[true_idx]
    assert nearest_key_accuracy(queries, cand_keys, cand_points, true_points, 1e-6, chunk=7) == 1.0
    far = true_points + 100.0
    assert nearest_key_accuracy(queries, cand_keys, cand_points, far, 1.0, chunk=7) == 0.0


def test_symmetric_accuracy_counts_symmetric_matches():
    cand_points = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    cand_keys = torch.eye(2)
    queries, true_points = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]])
    rot_z180 = torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0]))
    syms = torch.stack([torch.eye(4), rot_z180])
    assert nearest_key_accuracy(queries, cand_keys, cand_points, true_points, 0.1) == 0.0
    assert symmetric_nearest_key_accuracy(queries, cand_keys, cand_points, true_points, 0.1, syms) == 1.0


def _distinct_maps(H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An image (1, 3, H, W) and point map (1, 3, H, W) whose every pixel is distinct."""
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    idx = ys * W + xs
    image = torch.stack([idx / (H * W), xs / W, ys / H])[None]
    points = torch.stack([xs, ys, idx])[None]
    return image, points


@pytest.mark.parametrize("H,W", [(33, 33), (32, 32), (21, 33)])
def test_rotation_90_keeps_correspondence_exact(H, W):
    image, points = _distinct_maps(H, W)
    mask = torch.ones(1, 1, H, W)
    img_r, pts_r, mask_r = warp_similarity(image, points, mask, torch.tensor([math.pi / 2]), torch.tensor([1.0]))
    # Pixel (x, y) about the centre (cx, cy) rotates to (cx + cy - y, cy - cx + x) (x right, y down).
    cx, cy = (W - 1) / 2, (H - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    xo, yo = (cx + cy - ys).round().long(), (cy - cx + xs).round().long()
    inside = (xo >= 0) & (xo < W) & (yo >= 0) & (yo < H)
    ys, xs, xo, yo = ys[inside], xs[inside], xo[inside], yo[inside]
    assert torch.equal(pts_r[0][:, yo, xo], points[0][:, ys, xs])  # nearest: bit-exact
    assert torch.allclose(img_r[0][:, yo, xo], image[0][:, ys, xs], atol=1e-5)
    assert (mask_r[0, 0, yo, xo] == 1).all()
    assert int(mask_r.sum()) == len(ys)  # pixels with no source are masked out


def test_augment_identity_and_zoom_out():
    image, points = _distinct_maps(24, 24)
    mask = torch.ones(1, 1, 24, 24)
    ident = AugmentConfig(rotation_deg=0.0, scale=(1.0, 1.0), **NO_PHOTO)
    img, pts, m = augment(image, points, mask, ident, torch.Generator().manual_seed(0))
    assert torch.allclose(img, image, atol=1e-6) and torch.equal(pts, points) and torch.equal(m, mask)
    zoom_out = AugmentConfig(rotation_deg=0.0, scale=(0.5, 0.5), **NO_PHOTO)
    img, pts, m = augment(image, points, mask, zoom_out)
    assert m[0, 0, 0, 0] == 0 and m[0, 0, 12, 12] == 1 and img[0, :, 0, 0].abs().max() == 0
    jitter = augment(image, points, mask, AugmentConfig(blur_prob=1.0), torch.Generator().manual_seed(1))[0]
    assert jitter.min() >= 0 and jitter.max() <= 1


def _rotation(g: torch.Generator) -> torch.Tensor:
    """A random rotation matrix (3, 3) from a uniform unit quaternion."""
    w, x, y, z = (q := torch.randn(4, generator=g)) / q.norm()
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)]),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)]),
        torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]),
    ])


def _sphere_views(n: int = 8, size: int = 32, seed: int = 0) -> EmbeddingBatchSource:
    """A textureless-like 'object': the unit sphere seen in n randomly rotated orthographic views.

    Each pixel of the central disc sees p = R_i (a, b, sqrt(1 - a^2 - b^2)); its colour is a smooth,
    injective function of p, so only the embedding has to be learned. Negatives come from the
    views' own foreground points, the same distribution as the positives.
    """
    g = torch.Generator().manual_seed(seed)
    c = (torch.arange(size, dtype=torch.float32) + 0.5 - size / 2) / (0.4 * size)
    b, a = torch.meshgrid(c, c, indexing="ij")
    inside = a**2 + b**2 < 1
    local = torch.stack([a, b, (1 - a**2 - b**2).clamp(min=0).sqrt()])
    point_maps = torch.stack([torch.einsum("ij,jhw->ihw", _rotation(g), local) for _ in range(n)]) * inside
    images = (0.5 + 0.5 * torch.sin(1.5 * point_maps)) * inside
    masks = inside[None, None].float().expand(n, 1, size, size).clone()
    pool = point_maps.permute(0, 2, 3, 1)[masks[:, 0].bool()]
    return EmbeddingBatchSource(images, point_maps, masks, pool)


def test_embedding_step_outputs_and_empty_foreground():
    torch.manual_seed(0)
    src = _sphere_views(n=3, size=16)
    q, k = QueryEncoder(8, (8, 16)), KeyHead(8, hidden=16, layers=1)
    out = embedding_step(q, k, src, AugmentConfig(), batch_images=2, pixels_per_image=32, negatives=50,
                         generator=torch.Generator().manual_seed(0))
    assert set(out) == {"infonce", "mask_bce", "acc_top1"}
    assert out["infonce"].ndim == 0 and not out["acc_top1"].requires_grad and 0 <= out["acc_top1"] <= 1
    (out["infonce"] + out["mask_bce"]).backward()
    empty = EmbeddingBatchSource(src.images, src.point_maps, torch.zeros_like(src.masks), src.surface_points)
    out = embedding_step(q, k, empty, AugmentConfig(), batch_images=5, pixels_per_image=32, negatives=50)
    assert out["infonce"].item() == 0.0 and out["acc_top1"].item() == 0.0
    (out["infonce"] + out["mask_bce"]).backward()


def test_tiny_embedding_learns_correspondences():
    torch.manual_seed(0)
    src = _sphere_views()
    query, keys = QueryEncoder(12, (8, 16)), KeyHead(12)
    opt = torch.optim.Adam([*query.parameters(), *keys.parameters()], lr=3e-3)
    # Geometric augmentation on; photometric mild because colour is this object's only cue.
    aug = AugmentConfig(brightness=(1.0, 1.0), contrast=(1.0, 1.0), blur_prob=0.0, noise_std=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        out = embedding_step(query, keys, src, aug, generator=g)
        loss = sum(v for name, v in out.items() if "infonce" in name or "mask_bce" in name)
        opt.zero_grad()
        loss.backward()
        opt.step()

    with torch.no_grad():
        fg = src.masks[:, 0].bool()
        queries = query(src.images)[0].permute(0, 2, 3, 1)[fg]  # (P, E)
        points = src.point_maps.permute(0, 2, 3, 1)[fg]  # (P, 3); all training pixels are the candidates
        acc = nearest_key_accuracy(queries, keys(points), points, points, threshold=0.3)
        chance = ((points[::7, None] - points[None]).norm(dim=2) <= 0.3).float().mean().item()
    # Measured: 0.61 at seed 0, 0.28-0.64 over seeds 0-5; chance is ~0.025.
    assert chance < 0.04
    assert acc > 0.15, f"nearest-key accuracy {acc:.3f} (chance {chance:.3f})"


def _sphere_normals(size: int = 33) -> tuple[torch.Tensor, torch.Tensor]:
    """Outward normals (H, W, 3) of a unit sphere seen orthographically along -z, and its mask."""
    v, u = torch.meshgrid(torch.linspace(1, -1, size), torch.linspace(-1, 1, size), indexing="ij")
    fg = u**2 + v**2 < 0.95
    z = (1 - u**2 - v**2).clamp(min=0).sqrt()
    return torch.stack([u, v, z], -1) * fg[..., None], fg


def test_relit_sphere_follows_the_key_light_and_keeps_the_mean_colour():
    from nerfreg_ns.embedding.relight import relit

    normals, fg = _sphere_normals()
    rays = torch.tensor([0.0, 0.0, -1.0]).expand_as(normals)  # camera looks along -z (OpenGL)
    mean_rgb = torch.tensor([0.25, 0.2, 0.15])  # dark enough that no pixel saturates
    w = torch.tensor([0.1, 0.0, 0.9])
    right = relit(normals, rays, torch.eye(3), fg, mean_rgb, w, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(right[fg].mean(0), mean_rgb, atol=1e-4)
    assert (right[~fg] == 0).all()
    half = normals.shape[1] // 2
    assert right[:, half + 4:, 0][fg[:, half + 4:]].mean() > 2 * right[:, : half - 4, 0][fg[:, : half - 4]].mean()
    # the same light expressed in a camera turned 90 degrees about the view axis comes from above
    R_c2w = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # camera x -> world y
    up = relit(normals, rays, R_c2w, fg, mean_rgb, w, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(up, right.transpose(0, 1).flip(0), atol=1e-5)
    # inward normals (a field's sign on thin parts) shade like outward ones under the head light
    head = torch.tensor([0.1, 0.9, 0.0])
    k = torch.tensor([0.0, 0.0, 1.0])
    assert torch.allclose(relit(-normals, rays, torch.eye(3), fg, mean_rgb, head, k),
                          relit(normals, rays, torch.eye(3), fg, mean_rgb, head, k), atol=1e-6)


def test_random_lights_ranges_and_directions():
    from nerfreg_ns.embedding.relight import RelightConfig, random_lights

    cfg = RelightConfig()
    w, d = random_lights(500, cfg, torch.Generator().manual_seed(1))
    for j, (lo, hi) in enumerate([cfg.ambient, cfg.head, cfg.key]):
        assert lo <= w[:, j].min() and w[:, j].max() <= hi and w[:, j].max() - w[:, j].min() > 0.5 * (hi - lo)
    assert torch.allclose(d.norm(dim=1), torch.ones(500)) and (d[:, 2] > 0).all()  # towards the viewer
    assert (d[:, 0] > 0.5).any() and (d[:, 0] < -0.5).any()


def test_normals_from_a_sphere_point_map():
    from nerfreg_ns.embedding.relight import normals_from_points

    normals, fg = _sphere_normals(65)
    points = normals.clone()  # a unit sphere's points are its normals
    est = normals_from_points(points, fg)
    inner = fg & (normals[..., 2] > 0.5)  # away from the rim, where the sphere turns edge-on
    cos = (est * normals).sum(-1)[inner].abs()
    assert cos.min() > 0.97, cos.min()
