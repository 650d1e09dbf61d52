"""The 3D ResUNet, AdaIN presets and batched masked views."""

import dataclasses

import pytest
import torch

from masktwins3d.adapt.methods import MaskedConsistency
from masktwins3d.config import ModelConfig, load_config
from masktwins3d.errors import UserError
from masktwins3d.models import MODELS, build_model
from masktwins3d.models.resunet3d import ResUNet3D

NARROW = [4, 4, 8, 8, 8]


def narrow(**kw):
    return build_model(ModelConfig(name="resunet3d", widths=NARROW, out_channels=2, head="sigmoid", **kw))


def test_registered_with_shape_and_separate_heads():
    assert MODELS["resunet3d"] is ResUNet3D
    torch.manual_seed(0)
    model = narrow()
    out = model(torch.randn(2, 1, 32, 32, 16))
    assert out.shape == (2, 2, 32, 32, 16)
    assert model.spatial_dims == 3 and model.out_channels == 2
    # two separate 1x1x1 heads: changing the post head leaves the pre channel unchanged
    model.eval()
    x = torch.randn(1, 1, 32, 32, 32)
    before = model(x)
    with torch.no_grad():
        model.heads[1].weight.add_(1.0)
    after = model(x)
    assert torch.equal(before[:, 0], after[:, 0]) and not torch.allclose(before[:, 1], after[:, 1])


def test_embedding_is_5_cubed_and_skips_are_additive():
    model = ResUNet3D(widths=(4, 6, 8, 10, 12))
    assert model.embed[0].kernel_size == (5, 5, 5)
    # additive skips: the decoder's residual blocks keep the level width (no concatenation)
    assert [d.body[0][0].in_channels for d in model.dec] == [10, 8, 6, 4]


@pytest.mark.parametrize("norm", ["group", "batch", "instance"])
def test_norms(norm):
    model = narrow(norm=norm)
    assert model(torch.randn(2, 1, 32, 32, 32)).shape == (2, 2, 32, 32, 32)


def test_unknown_norm_is_a_user_error():
    with pytest.raises(UserError, match="model.norm"):
        build_model(ModelConfig(name="resunet3d", widths=NARROW, norm="layer"))
    with pytest.raises(UserError, match="model.norm"):
        build_model(ModelConfig(name="unet2d", widths=NARROW, norm="group"))


def test_adain_only_in_training_with_a_style():
    torch.manual_seed(0)
    model = narrow(adain=True)
    x, style = torch.randn(2, 1, 32, 32, 32), 3 + 2 * torch.randn(2, 1, 32, 32, 32)
    model.train()
    assert not torch.allclose(model(x, style=style), model(x))
    model.eval()
    assert torch.equal(model(x, style=style), model(x))


def test_adain_defaults_follow_the_model_and_the_method():
    syn = ["model.name=resunet3d", "model.head=sigmoid", "model.widths=[4,4,8,8,8]", "data.crop=[16,16,16]"]
    assert load_config(None, ["method=masktwins", *syn]).model.adain is True
    assert load_config(None, ["method=noadapt", *syn]).model.adain is False
    assert load_config(None, ["method=masktwins"]).model.adain is False  # unet2d: optional, off
    assert load_config(None, ["method=masktwins", "model.adain=false", *syn]).model.adain is False
    with pytest.raises(UserError, match="model.adain"):
        load_config(None, ["method=noadapt", "model.adain=true", *syn])


@pytest.mark.parametrize("name,widths,shape", [("unet2d", NARROW, (2, 1, 32, 32)), ("resunet3d", NARROW, (2, 1, 32, 32, 32))])
def test_batched_views_equal_separate_passes(name, widths, shape):
    """Instance and group norm are per sample, so one concatenated pass equals two passes."""
    syn = ["model.head=sigmoid", "loss.threshold=[0.75,0.65]"] if name == "resunet3d" else []
    run = load_config(None, ["method=masktwins", f"model.name={name}", f"model.widths={widths}", "mask.patch=4",
                             f"data.crop={list(shape[2:])}", "teacher.ema=false", *syn])
    losses = []
    for batched in (False, True):
        torch.manual_seed(0)
        model = build_model(run.model)
        r = dataclasses.replace(run, loss=dataclasses.replace(run.loss, views_batched=batched))
        method = MaskedConsistency(model, r, 0.0, torch.Generator().manual_seed(1))
        g = torch.Generator().manual_seed(2)
        label_shape = (shape[0], 2, *shape[2:]) if name == "resunet3d" else (shape[0], *shape[2:])
        batch = {
            "source_image": torch.randn(shape, generator=g),
            "source_label": torch.randint(0, 2, label_shape, generator=g),
            "target_image": torch.randn(shape, generator=g),
        }
        loss, logs = method.loss(batch, 0)
        loss.backward()
        losses.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(losses[0][0], losses[1][0], rtol=1e-5, atol=1e-6)
    for a, b in zip(losses[0][1], losses[1][1]):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5)


def test_target_losses_start_at_target_start():
    run = load_config(None, ["method=masktwins", "model.widths=[4,4,8,8,8]", "data.crop=[32,32]", "mask.patch=4", "loss.target_start=3"])
    method = MaskedConsistency(build_model(run.model), run, 0.0, torch.Generator().manual_seed(0))
    batch = {"source_image": torch.randn(2, 1, 32, 32), "source_label": torch.randint(0, 2, (2, 32, 32)), "target_image": torch.randn(2, 1, 32, 32)}
    _, early = method.loss(batch, 2)
    _, late = method.loss(batch, 3)
    assert "l_cl" not in early and early["loss"] == early["l_sup"]
    assert "l_cl" in late and "l_cm" in late


def test_sup_weight_scales_only_l_sup():
    base = ["method=masktwins", "model.widths=[4,4,8,8,8]", "data.crop=[32,32]", "mask.patch=4"]
    batch = {"source_image": torch.randn(2, 1, 32, 32), "source_label": torch.randint(0, 2, (2, 32, 32)), "target_image": torch.randn(2, 1, 32, 32)}
    logs = {}
    for w in (1.0, 0.25, 0.0):
        run = load_config(None, [*base, f"loss.sup_weight={w}"])
        torch.manual_seed(0)
        method = MaskedConsistency(build_model(run.model), run, 0.0, torch.Generator().manual_seed(0))
        _, logs[w] = method.loss(batch, 0)
    for w in (1.0, 0.25, 0.0):  # same weights, masks and batch: L_sup, L_cl and L_cm are the same; only the sum moves
        assert torch.allclose(logs[w]["l_sup"], logs[1.0]["l_sup"]) and torch.allclose(logs[w]["l_cl"], logs[1.0]["l_cl"])
        expected = w * logs[w]["l_sup"] + logs[w]["l_cl"] + 0.01 * logs[w]["l_cm"]
        assert torch.allclose(logs[w]["loss"], expected, rtol=1e-5)
    with pytest.raises(UserError, match="loss.sup_weight=-1.0 .* must be a finite weight >= 0"):
        load_config(None, [*base, "loss.sup_weight=-1"])


def test_cm_guard_scales_lambda_cm_by_the_pseudo_labels_foreground():
    """loss.cm_guard: the step's lambda_cm is lambda_cm * min(1, pl foreground / source foreground), and the
    total loss uses it; the source fraction is the running mean of the source labels'."""
    base = ["method=masktwins", "model.name=resunet3d", "model.head=sigmoid", f"model.widths={NARROW}", "loss.threshold=[0.75,0.65]",
            "data.crop=[32,32,32]", "mask.patch=4", "teacher.ema=false", "loss.lambda_cm=10", "loss.cm_guard=true"]
    run = load_config(None, base)
    torch.manual_seed(0)
    method = MaskedConsistency(build_model(run.model), run, 0.0, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(3)
    label = (torch.rand((2, 2, 32, 32, 32), generator=g) < 0.9).long()  # 90 % source foreground: above the pseudo-labels'
    batch = {"source_image": torch.randn(2, 1, 32, 32, 32, generator=g), "source_label": label,
             "target_image": torch.randn(2, 1, 32, 32, 32, generator=g)}
    _, logs = method.loss(batch, 0)
    src = float(label.float().mean())
    expected = 10.0 * min(1.0, float(logs["pl_foreground"]) / src)
    assert 0 < expected < 10 and float(logs["lambda_cm"]) == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(logs["loss"], logs["l_sup"] + logs["l_cl"] + float(logs["lambda_cm"]) * logs["l_cm"], rtol=1e-5)
    with pytest.raises(UserError, match="loss.cm_guard=true .* model.head=softmax"):
        load_config(None, ["method=masktwins", "loss.cm_guard=true"])


def test_cm_weight_by_hand():
    from masktwins3d.adapt.losses import cm_weight

    assert cm_weight(10.0, 0.0005, 0.001) == pytest.approx(5.0)  # half the source fraction: half the weight
    assert cm_weight(10.0, 0.003, 0.001) == pytest.approx(10.0)  # more than the source: capped at lambda_cm
    assert cm_weight(10.0, 0.0, 0.001) == 0.0  # pseudo-labels without foreground: L_cm off
    assert cm_weight(0.1, 0.0, 0.0) == pytest.approx(0.1)  # no source fraction yet: as set


def test_channel_cm_weights_by_hand():
    from masktwins3d.adapt.losses import channel_cm_weights

    assert channel_cm_weights(0.1, 10.0, [True, False]) == [10.0, 0.1]  # debiased channel: the strong weight
    assert channel_cm_weights(0.1, 10.0, [False, False]) == [0.1, 0.1]  # both fell back: as set
    assert channel_cm_weights(0.1, None, [True, True]) == [0.1, 0.1]  # key unset: lambda_cm everywhere


def test_cross_mask_loss_channel_weights_by_hand():
    """sum_c w_c * MSE_c / C, with MSE_c over channel c's voxels; equal weights give w * MSE."""
    from masktwins3d.adapt.losses import cross_mask_loss

    a = torch.zeros(1, 2, 2, 2, 2)
    b = torch.zeros(1, 2, 2, 2, 2)
    b[0, 0, 0, 0, 0] = 2.0  # channel 0: one voxel of 8 differs by 2 -> MSE_0 = 4 / 8 = 0.5
    b[0, 1] = 1.0  # channel 1: every voxel differs by 1 -> MSE_1 = 1
    weighted = cross_mask_loss([a, b], "logits", "sigmoid", [10.0, 0.1])
    assert float(weighted) == pytest.approx((10.0 * 0.5 + 0.1 * 1.0) / 2)
    plain = cross_mask_loss([a, b], "logits", "sigmoid")
    assert float(cross_mask_loss([a, b], "logits", "sigmoid", [3.0, 3.0])) == pytest.approx(3.0 * float(plain))
    with pytest.raises(ValueError, match="3 values for 2 channels"):
        cross_mask_loss([a, b], "logits", "sigmoid", [1.0, 1.0, 1.0])


def test_lambda_cm_debiased_follows_the_debias_switch():
    """loss.lambda_cm_debiased: L_cm weighted per channel by whether that channel's pseudo-labels came from
    the debiased teacher; a channel that debias_fallback switched back keeps lambda_cm."""
    base = ["method=masktwins", "model.name=resunet3d", "model.head=sigmoid", f"model.widths={NARROW}", "loss.threshold=[0.75,0.65]",
            "data.crop=[32,32,32]", "mask.patch=4", "teacher.ema=false", "loss.lambda_cm=0.1", "loss.pos_weight=[30]",
            "loss.threshold_rule=prior", "loss.debias_pos_weight=true", "loss.debias_fallback=0.25", "loss.lambda_cm_debiased=10"]
    run = load_config(None, base)
    torch.manual_seed(0)
    method = MaskedConsistency(build_model(run.model), run, 0.0, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(3)
    batch = {"source_image": torch.randn(2, 1, 32, 32, 32, generator=g),
             "source_label": (torch.rand((2, 2, 32, 32, 32), generator=g) < 0.01).long(),
             "target_image": torch.randn(2, 1, 32, 32, 32, generator=g)}
    _, logs = method.loss(batch, 0)  # the real switch: what it logs is what L_cm's weights follow
    assert sum(method.debiased) == float(logs["debiased_channels"])
    assert float(logs["lambda_cm"]) == pytest.approx(sum(10.0 if d else 0.1 for d in method.debiased) / 2)
    extra = {}
    for debiased in ((True, False), (False, True), (False, False), (True, True)):
        method.pseudo_labels = lambda t_logits, prior, logs, d=debiased: (  # the switch's outcome, set by hand
            setattr(method, "debiased", list(d)) or ((t_logits >= 0).float(), torch.ones_like(t_logits, dtype=torch.bool)))
        method.generator.manual_seed(0)  # the same masks every time: the same views and per-channel MSEs
        _, logs = method.loss(batch, 0)
        assert float(logs["lambda_cm"]) == pytest.approx(sum(10.0 if d else 0.1 for d in debiased) / 2)
        extra[debiased] = float(logs["loss"] - logs["l_sup"] - logs["l_cl"])
        l_cm = float(logs["l_cm"])  # the unweighted mean over both channels
    assert extra[(True, True)] == pytest.approx(10.0 * l_cm, rel=1e-4, abs=2e-6)  # both debiased: lambda_cm_debiased on all
    assert extra[(False, False)] == pytest.approx(0.1 * l_cm, rel=1e-4, abs=2e-6)  # both switched back: lambda_cm on all
    # (10 m0 + 0.1 m1) / 2 + (0.1 m0 + 10 m1) / 2 = (10 + 0.1) (m0 + m1) / 2: one channel at each weight, summed
    assert extra[(True, False)] + extra[(False, True)] == pytest.approx(extra[(True, True)] + extra[(False, False)], rel=1e-4, abs=2e-6)
    assert abs(extra[(True, False)] - extra[(False, True)]) > 1e-4  # the two channels' MSEs differ
    with pytest.raises(UserError, match="loss.lambda_cm_debiased=10.0 .* set model.head=sigmoid and loss.debias_pos_weight=true"):
        load_config(None, [*base[:-4], "loss.lambda_cm_debiased=10"])
