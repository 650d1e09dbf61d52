import math

import pytest
import torch
import torch.nn as nn

from masktwins3d.adapt.losses import consistency_loss, cross_mask_loss, pseudo_label, supervised_loss, weighted_ce
from masktwins3d.adapt.schedule import lr_factor
from masktwins3d.adapt.teacher import EMATeacher, ema_alpha
from masktwins3d.models.adain import adain


def test_supervised_ce_by_hand():
    logits = torch.tensor([[[[2.0]], [[0.0]]]])  # B=1, C=2, 1x1 pixel
    target = torch.tensor([[[1]]])
    expected = -math.log(math.exp(0) / (math.exp(2) + math.exp(0)))
    assert supervised_loss(logits, target, "softmax").item() == pytest.approx(expected)


def test_supervised_bce_by_hand():
    logits = torch.tensor([[[0.0, 2.0]]])
    target = torch.tensor([[[1.0, 0.0]]])
    expected = 0.5 * (math.log(2) + math.log(1 + math.exp(2)))
    assert supervised_loss(logits, target, "sigmoid").item() == pytest.approx(expected, rel=1e-6)


def test_pseudo_label_softmax_and_quality_weight():
    # two pixels: p1 = softmax([0, ln 9]) = 0.9 (confident, class 1); p = 0.5 (not confident)
    t = torch.tensor([[[[0.0, 0.0]], [[math.log(9.0), 0.0]]]])
    label, conf = pseudo_label(t, "softmax", 0.7)
    assert label.tolist() == [[[1, 0]]]
    assert conf.tolist() == [[[True, False]]]
    student = torch.zeros(1, 2, 1, 2)  # CE = ln 2 at every pixel
    q = weighted_ce(student, label, conf, "softmax", "quality")
    assert q.item() == pytest.approx(math.log(2) * 0.5)
    pv = weighted_ce(student, label, conf, "softmax", "per_voxel")
    assert pv.item() == pytest.approx(math.log(2) * 0.5)
    student2 = torch.tensor([[[[0.0, 0.0]], [[1.0, -1.0]]]])
    ce = [math.log(1 + math.exp(-1)), math.log(1 + math.exp(-1))]  # pixel 0 label 1 logit diff 1; pixel 1 label 0 diff 1
    assert weighted_ce(student2, label, conf, "softmax", "quality").item() == pytest.approx(sum(ce) / 2 * 0.5)
    assert weighted_ce(student2, label, conf, "softmax", "per_voxel").item() == pytest.approx(ce[0] / 2)


def test_pseudo_label_sigmoid_per_channel_thresholds():
    p = torch.tensor([0.8, 0.7]).reshape(1, 2, 1)
    logits = torch.log(p / (1 - p))
    label, conf = pseudo_label(logits, "sigmoid", [0.75, 0.65])
    assert label.flatten().tolist() == [1.0, 1.0]
    label, _ = pseudo_label(logits, "sigmoid", [0.85, 0.75])
    assert label.flatten().tolist() == [0.0, 0.0]


def test_consistency_loss_weights_views():
    label = torch.tensor([[[1]]])
    conf = torch.ones_like(label, dtype=torch.bool)
    a = torch.tensor([[[[0.0]], [[0.0]]]])  # CE ln2
    b = torch.tensor([[[[0.0]], [[10.0]]]])  # CE ~ 4.54e-5
    ce_b = math.log(1 + math.exp(-10))
    out = consistency_loss([a, b], label, conf, "softmax", "quality", [0.25, 0.75])
    assert out.item() == pytest.approx(0.25 * math.log(2) + 0.75 * ce_b, rel=1e-6)


def test_cross_mask_mse_logits_probs_and_k_views():
    a = torch.tensor([[[1.0, 2.0]], [[0.0, 0.0]]]).unsqueeze(0)
    b = torch.zeros_like(a)
    assert cross_mask_loss([a, b], "logits", "softmax").item() == pytest.approx((1 + 4) / 4)
    pa, pb = torch.softmax(a, 1), torch.softmax(b, 1)
    assert cross_mask_loss([a, b], "probs", "softmax").item() == pytest.approx(((pa - pb) ** 2).mean().item())
    c = torch.ones_like(a)
    pairs = [((a - b) ** 2).mean(), ((a - c) ** 2).mean(), ((b - c) ** 2).mean()]
    assert cross_mask_loss([a, b, c], "logits", "softmax").item() == pytest.approx(sum(pairs).item() / 3)


def test_cross_mask_gradient_reaches_both_views():
    a = torch.randn(1, 2, 4, 4, requires_grad=True)
    b = torch.randn(1, 2, 4, 4, requires_grad=True)
    cross_mask_loss([a, b], "logits", "softmax").backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_ema_formula():
    assert ema_alpha(0) == 0.0
    assert ema_alpha(1) == pytest.approx(0.5)
    assert ema_alpha(9) == pytest.approx(0.9)
    assert ema_alpha(10_000) == 0.999
    student = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        student.weight.fill_(1.0)
    teacher = EMATeacher(student, 0.999)
    with torch.no_grad():
        student.weight.fill_(3.0)
    teacher.update(student, 1)  # alpha 0.5: 0.5*1 + 0.5*3
    assert teacher.model.weight.item() == pytest.approx(2.0)
    assert not teacher.model.weight.requires_grad


def test_teacher_modes_buffers_and_train_flag():
    student = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    ours, official = EMATeacher(student, mode="ours"), EMATeacher(student, mode="official")
    student.train()
    student(torch.randn(4, 1, 3, 3))  # moves running stats
    ours.update(student, 5)
    official.update(student, 5)
    assert torch.equal(ours.model[1].running_mean, student[1].running_mean)
    assert not torch.equal(official.model[1].running_mean, student[1].running_mean)
    ours(torch.zeros(1, 1, 3, 3))
    official(torch.zeros(2, 1, 3, 3))
    assert not ours.model.training and official.model.training


def test_poly_and_warmup_schedules():
    assert lr_factor(0, 100, "poly", 0.9) == 1.0
    assert lr_factor(50, 100, "poly", 0.9) == pytest.approx(0.5**0.9)
    assert lr_factor(0, 100, "warmup", warmup=10) == pytest.approx(0.1)
    assert lr_factor(9, 100, "warmup", warmup=10) == 1.0
    assert lr_factor(50, 100, "constant") == 1.0


def test_adain_matches_target_statistics():
    s = torch.randn(2, 3, 8, 8) * 4 + 2
    t = torch.randn(2, 3, 8, 8) * 0.5 - 1
    out = adain(s, t)
    assert torch.allclose(out.mean(dim=(2, 3)), t.mean(dim=(2, 3)), atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), t.std(dim=(2, 3), unbiased=False), atol=1e-3)
