import pytest
import torch

from masktwins3d.adapt.masks import apply_mask, complementary_masks, draw_masks, random_mask
from masktwins3d.errors import UserError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape,patch", [((3, 64, 64), 16), ((2, 24, 24, 24), 6)])
def test_complementary_masks_are_exact_complements_of_hard_blocks(shape, patch):
    d, e = complementary_masks(shape, patch, 0.5, gen())
    assert d.shape == (shape[0], 1, *shape[1:])
    assert torch.equal(d + e, torch.ones_like(d))
    assert set(d.unique().tolist()) <= {0.0, 1.0}
    # constant inside every cell of edge `patch`: block-reduce and expand back gives the same mask
    cells = d[(slice(None), 0) + tuple(slice(None, None, patch) for _ in shape[1:])]
    up = cells
    for axis in range(1, cells.ndim):
        up = up.repeat_interleave(patch, dim=axis)
    assert torch.equal(up, d[:, 0])


def test_cell_size_is_the_patch():
    d = random_mask((1, 8, 8), 4, 0.5, gen(3))[0, 0]
    for y in (0, 4):
        for x in (0, 4):
            block = d[y : y + 4, x : x + 4]
            assert torch.all(block == block[0, 0])


def test_ratio_holds_in_expectation():
    masks = random_mask((2000, 32, 32), 8, 0.3, gen(1))
    kept = masks.mean().item()
    assert abs(kept - 0.7) < 0.01  # 32000 cells: sd about 0.0026


def test_k_view_masks_partition_the_crop():
    views = complementary_masks((4, 32, 32), 8, 0.5, gen(2), views=3)
    stacked = torch.stack(views)
    assert torch.equal(stacked.sum(0), torch.ones_like(views[0]))
    fractions = [v.mean().item() for v in complementary_masks((3000, 16, 16), 8, 0.5, gen(5), views=4)]
    assert all(abs(f - 0.25) < 0.02 for f in fractions)


def test_crop_not_divisible_by_patch_is_a_clear_error():
    with pytest.raises(UserError, match="not divisible by mask.patch=32"):
        random_mask((1, 100, 96), 32, 0.5, gen())


def test_independent_masks_use_ratios_r_and_one_minus_r_and_are_not_complements():
    a, b = draw_masks("independent", (4000, 16, 16), 8, 0.3, gen(4))
    assert abs(a.mean().item() - 0.7) < 0.02 and abs(b.mean().item() - 0.3) < 0.02
    assert not torch.equal(a + b, torch.ones_like(a))


def test_single_and_none():
    (m,) = draw_masks("single", (2, 16, 16), 8, 0.7, gen())
    assert m.shape == (2, 1, 16, 16)
    (full,) = draw_masks("none", (2, 16, 16), 8, 0.7, gen())
    assert torch.equal(full, torch.ones_like(full))


def test_same_seed_same_masks_and_fresh_masks_each_call():
    g1, g2 = gen(7), gen(7)
    assert torch.equal(random_mask((2, 16, 16), 4, 0.5, g1), random_mask((2, 16, 16), 4, 0.5, g2))
    assert not torch.equal(random_mask((2, 16, 16), 4, 0.5, g1), random_mask((2, 16, 16), 4, 0.5, g1))


def test_apply_mask_fill():
    x = torch.full((1, 1, 4, 4), 3.0)
    m = torch.zeros(1, 1, 4, 4)
    m[..., :2, :] = 1
    out = apply_mask(x, m, fill=-1.5)
    assert torch.equal(out[..., :2, :], x[..., :2, :])
    assert torch.all(out[..., 2:, :] == -1.5)
    assert torch.all(apply_mask(x, m)[..., 2:, :] == 0)
