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
    assert conf.flatten().tolist() == [True, True]
    # above 0.5 but below delta: labelled positive, yet not confident, so it teaches nothing
    # (it used to be taught as a negative)
    label, conf = pseudo_label(logits, "sigmoid", [0.85, 0.75])
    assert label.flatten().tolist() == [1.0, 1.0]
    assert conf.flatten().tolist() == [False, False]


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


def _softmax_logits(p_fg):
    """2-class logits whose softmax foreground probability is ``p_fg`` (a list), one row of pixels."""
    p = torch.tensor(p_fg, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))]).reshape(1, 2, 1, -1).float()


def test_sigmoid_learns_only_where_confident_both_ways():
    # delta 0.75: p 0.9 positive, 0.2 negative (<= 0.25), 0.6 and 0.3 in between: ignored
    p = torch.tensor([0.9, 0.2, 0.6, 0.3]).reshape(1, 1, 4)
    label, conf = pseudo_label(torch.log(p / (1 - p)), "sigmoid", [0.75])
    assert label.flatten().tolist() == [1.0, 0.0, 1.0, 0.0]
    assert conf.flatten().tolist() == [True, True, False, False]
    student = torch.zeros(1, 1, 4)  # BCE ln 2 everywhere
    for weighting in ("quality", "per_voxel"):  # the same for the sigmoid head
        assert weighted_ce(student, label, conf, "sigmoid", weighting).item() == pytest.approx(2 * math.log(2) / 4)
    # pos_weight 30 on the one confident positive: (30 ln2 + ln2) / 4
    assert weighted_ce(student, label, conf, "sigmoid", "per_voxel", [30.0]).item() == pytest.approx(31 * math.log(2) / 4)


def test_class_balanced_thresholds_by_hand():
    from masktwins3d.adapt.losses import class_balanced_thresholds

    # background confidences 0.99 x4 -> tau 0.7 (delta caps it); foreground 0.55, 0.6, 0.65, 0.9:
    # median (portion 0.5) = 0.625 < 0.7
    conf = torch.tensor([0.99, 0.99, 0.99, 0.99, 0.55, 0.6, 0.65, 0.9])
    label = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    taus = class_balanced_thresholds(conf, label, 3, 0.7, 0.5)
    assert taus.tolist() == pytest.approx([0.7, 0.625, 0.7])  # class 2 is absent: delta
    # through pseudo_label: foreground 0.65 and 0.9 pass, 0.55 and 0.6 do not; fixed: only 0.9
    logits = _softmax_logits([0.01, 0.01, 0.01, 0.01, 0.55, 0.6, 0.65, 0.9])
    label, confident = pseudo_label(logits, "softmax", 0.7, "class_balanced", 0.5)
    assert label.flatten().tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert confident.flatten().tolist() == [True] * 4 + [False, False, True, True]
    _, fixed = pseudo_label(logits, "softmax", 0.7)
    assert fixed.flatten().tolist() == [True] * 4 + [False, False, False, True]


def test_class_balanced_sigmoid_positive_side_only():
    p = torch.tensor([0.55, 0.6, 0.7, 0.9, 0.1, 0.4]).reshape(1, 1, 6)
    label, conf = pseudo_label(torch.log(p / (1 - p)), "sigmoid", [0.75], "class_balanced", 0.5)
    # positives (p >= 0.5): 0.55 0.6 0.7 0.9, median 0.65 -> tau_pos 0.65; negative side stays 0.25
    assert conf.flatten().tolist() == [False, False, True, True, True, False]


def test_class_quality_weighting_by_hand():
    from masktwins3d.adapt.losses import class_quality

    label = torch.tensor([[[0, 0, 0, 1, 1]]])
    confident = torch.tensor([[[True, True, True, True, False]]])
    assert class_quality(label, confident, 2).tolist() == pytest.approx([1.0, 0.5])
    student = torch.zeros(1, 2, 1, 5)  # CE ln 2 everywhere
    # class_quality: mean of q_label * CE = (3 * 1 + 2 * 0.5) ln2 / 5; quality: ln2 * 4/5
    assert weighted_ce(student, label, confident, "softmax", "class_quality").item() == pytest.approx(4 * math.log(2) / 5)
    assert weighted_ce(student, label, confident, "softmax", "quality").item() == pytest.approx(math.log(2) * 0.8)
    # a unsure foreground is no longer taught with the background's quality
    label = torch.tensor([[[0, 0, 0, 1]]])
    confident = torch.tensor([[[True, True, True, False]]])
    w = weighted_ce(torch.zeros(1, 2, 1, 4), label, confident, "softmax", "class_quality").item()
    assert w == pytest.approx(3 * math.log(2) / 4)


def test_foreground_fraction():
    from masktwins3d.adapt.losses import foreground_fraction

    assert foreground_fraction(_softmax_logits([0.9, 0.2, 0.6, 0.1]), "softmax").item() == pytest.approx(0.5)
    assert foreground_fraction(torch.tensor([[[1.0, -1.0, -2.0, 0.5]]]), "sigmoid").item() == pytest.approx(0.5)


def test_collapse_warning_and_guard():
    from masktwins3d.adapt.guard import CollapseGuard, collapse_warning

    assert collapse_warning(0.02, 0.05, 0.25) is None
    msg = collapse_warning(0.01, 0.05, 0.25, step=300)
    assert msg.startswith("warning:") and "1.00 %" in msg and "5.00 %" in msg and "300" in msg
    assert collapse_warning(0.0, 0.05, 0.0) is None  # ratio 0: off
    guard = CollapseGuard(ratio=0.25, momentum=0.5, patience=2)
    logs = [{"pl_foreground": 0.05, "source_foreground": 0.05}] * 3 + [{"pl_foreground": 0.0, "source_foreground": 0.05}] * 4
    out = [guard.update(line, step) for step, line in enumerate(logs)]
    # healthy, then the running mean 0.05 -> 0.025 -> 0.0125 (< 0.0125? no) -> 0.00625: warns once
    assert out[:5] == [None] * 5 and out[5] is not None and out[6] is None
    assert guard.update({"loss": 1.0}) is None  # lines without the fractions are ignored


def test_teacher_reset_copies_student():
    student = nn.Linear(2, 2)
    t = EMATeacher(student)
    with torch.no_grad():
        student.weight.add_(1.0)
    assert not torch.equal(t.model.weight, student.weight)
    t.reset(student)
    assert torch.equal(t.model.weight, student.weight) and torch.equal(t.model.bias, student.bias)


def test_weighted_bce_is_minimised_at_the_true_log_odds_plus_log_pos_weight():
    """The fact debias_pos_weight rests on: for labels that are 1 with probability q, BCE with
    pos_weight w is minimised by the logit log(w) + log(q / (1 - q))."""
    import math

    import torch.nn.functional as F

    from masktwins3d.adapt.methods import pos_weight_prior

    q, w = 0.2, 30.0
    z = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([z], lr=1.0, max_iter=200)
    ones, zeros = torch.ones(1), torch.zeros(1)

    def closure():
        opt.zero_grad()
        loss = q * F.binary_cross_entropy_with_logits(z, ones, pos_weight=torch.tensor(w)) + (1 - q) * F.binary_cross_entropy_with_logits(z, zeros)
        loss.backward()
        return loss

    opt.step(closure)
    assert z.item() == pytest.approx(math.log(w) + math.log(q / (1 - q)), abs=1e-4)
    assert pos_weight_prior([30.0], 2).tolist() == pytest.approx([math.log(30.0)] * 2)
    assert pos_weight_prior([1.0, 4.0], 2).tolist() == pytest.approx([0.0, math.log(4.0)])
    assert pos_weight_prior([1.0], 2) is None


def test_debiased_pseudo_labels_threshold_the_true_posterior():
    """With debias_pos_weight a teacher logit of log(30) + logit(0.5) (p = 0.97 biased) is a true
    posterior of 0.5: unsure, so it teaches nothing at delta 0.75; without it, a confident positive."""
    import math

    from masktwins3d.adapt.losses import pseudo_label

    w = 30.0
    logits = torch.full((1, 1, 2, 2), math.log(w) + 0.0)
    label, confident = pseudo_label(logits, "sigmoid", [0.75])
    assert bool(confident.all()) and bool((label == 1).all())
    label, confident = pseudo_label(logits - math.log(w), "sigmoid", [0.75])
    assert not bool(confident.any())


def test_the_guard_warns_on_a_flood_of_pseudo_labelled_foreground():
    from masktwins3d.adapt.guard import CollapseGuard, collapse_warning

    assert collapse_warning(0.13, 0.0009, 0.25, 10, flood=10.0).startswith("warning: self-training may be flooding at iteration 10")
    assert collapse_warning(0.005, 0.0009, 0.25, 10, flood=10.0) is None  # 5.6x: within bounds
    assert collapse_warning(0.13, 0.0009, 0.25, 10, flood=0.0) is None  # off
    guard = CollapseGuard(0.25, patience=1, flood=10.0)
    assert "flooding" in guard.update({"pl_foreground": 0.13, "source_foreground": 0.0009}, 1)
    assert guard.update({"pl_foreground": 0.13, "source_foreground": 0.0009}, 2) is None  # once per episode


def test_prior_threshold_by_hand():
    from masktwins3d.adapt.losses import prior_threshold

    p = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.6, 0.95, 0.2, 0.7, 0.4, 0.5])
    assert prior_threshold(p, 0.2) == pytest.approx(0.9)  # the 2nd largest of 10
    assert prior_threshold(p, 0.34) == pytest.approx(0.8)  # round(3.4) = 3rd largest
    assert prior_threshold(p, 0.01) == math.inf  # round(0.1) = 0 voxels: none passes
    assert prior_threshold(p, 1.0) == pytest.approx(0.1)


def test_prior_rule_caps_a_flood_of_sigmoid_positives_by_hand():
    # channel 0 floods: 6 of 10 voxels at p >= 0.75; the source prior 0.2 keeps the top 2 (0.99, 0.97)
    # channel 1 is scarce: 1 voxel above delta 0.65, prior 0.3 would allow 3; the cap never adds any below delta
    p0 = [0.99, 0.97, 0.9, 0.85, 0.8, 0.76, 0.6, 0.3, 0.1, 0.2]
    p1 = [0.7, 0.6, 0.55, 0.5, 0.1, 0.1, 0.1, 0.1, 0.4, 0.3]
    p = torch.tensor([p0, p1]).reshape(1, 2, 10)
    label, conf = pseudo_label(torch.log(p / (1 - p)), "sigmoid", [0.75, 0.65], "prior", prior=[0.2, 0.3])
    assert label[0, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    # taught: the two positives and the negatives p <= 0.25; 0.3 .. 0.9 teach nothing
    assert conf[0, 0].tolist() == [True, True, False, False, False, False, False, False, True, True]
    assert label[0, 1].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert conf[0, 1].tolist() == [True, False, False, False, True, True, True, True, False, True]
    fixed_label, _ = pseudo_label(torch.log(p / (1 - p)), "sigmoid", [0.75, 0.65])
    assert int(fixed_label[0, 0].sum()) == 7  # p >= 0.5: the flood the prior rule caps
    with pytest.raises(ValueError, match="sigmoid heads only"):
        pseudo_label(torch.zeros(1, 2, 4), "softmax", 0.7, "prior", prior=[0.1])


def test_prior_rule_uses_the_running_source_fraction():
    from types import SimpleNamespace

    from masktwins3d.adapt.methods import MaskedConsistency

    run = SimpleNamespace(
        model=SimpleNamespace(head="sigmoid", out_channels=2, adain=False),
        mask=SimpleNamespace(kind="complementary"), loss=SimpleNamespace(threshold=[0.75], pos_weight=[1.0], debias_pos_weight=False, target_start=0),
        teacher=SimpleNamespace(ema=False, restart=False),
    )
    method = MaskedConsistency(nn.Conv3d(1, 2, 1), run, 0.0, torch.Generator())
    a = torch.zeros(1, 2, 10)
    a[0, 0, :2] = 1  # batch 1: 0.2 pre, 0.0 post
    b = torch.zeros(1, 2, 10)
    b[0, 1, :4] = 1  # batch 2: 0.0 pre, 0.4 post
    assert method.source_prior(a) == pytest.approx([0.2, 0.0])
    assert method.source_prior(b) == pytest.approx([0.1, 0.2])
    state = method.extra_state()
    fresh = MaskedConsistency(nn.Conv3d(1, 2, 1), run, 0.0, torch.Generator())
    fresh.load_extra_state(state)
    assert fresh.source_prior(a) == method.source_prior(a) == pytest.approx([0.2 / 1.5, 0.4 / 3])


def test_negative_threshold_by_hand():
    p = torch.tensor([0.99, 0.97, 0.9, 0.6, 0.4, 0.1]).reshape(1, 1, 6)
    logits = torch.log(p / (1 - p))
    # prior 1/3 keeps the top 2 as positives; negative_threshold 1.0: every other voxel is a taught negative
    label, conf = pseudo_label(logits, "sigmoid", [0.75], "prior", prior=[1 / 3], negative=1.0)
    assert label.flatten().tolist() == [1, 1, 0, 0, 0, 0] and conf.all()
    # 0.5: negatives up to p = 0.5 (0.4, 0.1); 0.9 and 0.6 teach nothing
    _, conf = pseudo_label(logits, "sigmoid", [0.75], "prior", prior=[1 / 3], negative=0.5)
    assert conf.flatten().tolist() == [True, True, False, False, True, True]
    # fixed rule: positives p >= 0.75 (0.99, 0.97, 0.9); with negative 0.7 the 0.6 voxel is a negative
    label, conf = pseudo_label(logits, "sigmoid", [0.75], negative=0.7)
    assert label.flatten().tolist() == [1, 1, 1, 0, 0, 0] and conf.all()


def test_negative_band_by_hand():
    from masktwins3d.adapt.losses import band_negatives

    p = torch.tensor([0.99, 0.97, 0.9, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01]).reshape(1, 1, 10)
    logits = torch.log(p / (1 - p))
    # prior 0.1: the top voxel (0.99) is the one positive; band 3: the top 3 (0.99, 0.97, 0.9) are not
    # negatives, so 0.6, 0.4 and 0.3 become negatives too (above 1 - 0.75 = 0.25); 0.97 and 0.9 teach nothing
    label, conf = pseudo_label(logits, "sigmoid", [0.75], "prior", prior=[0.1], band=3)
    assert label.flatten().tolist() == [1] + [0] * 9
    assert conf.flatten().tolist() == [True, False, False, True, True, True, True, True, True, True]
    # without the band only p <= 0.25 are negatives
    _, conf = pseudo_label(logits, "sigmoid", [0.75], "prior", prior=[0.1])
    assert conf.flatten().tolist() == [True, False, False, False, False, False, True, True, True, True]
    # per channel: channel 1's fraction rounds to no voxel (no band negatives), a fraction of 1 or more adds none
    two = torch.stack([p[0, 0], p[0, 0].flip(0)]).reshape(1, 2, 10)
    out = band_negatives(two, [0.2, 0.04])
    assert out[0, 0].tolist() == [False, False] + [True] * 8 and not out[0, 1].any()
    assert not band_negatives(two, [1.0, 5.0]).any()


def test_debias_choice_by_hand():
    from masktwins3d.adapt.losses import debias_choice

    assert debias_choice([0.0010, 0.0001], [0.0010, 0.0010], 0.25) == [True, False]  # 1.0x and 0.1x the source fraction
    assert debias_choice([0.00025, 0.0002499], [0.001, 0.001], 0.25) == [True, False]  # the boundary counts as enough
    assert debias_choice([0.0, 0.0], [0.001, 0.001], None) == [True, True]  # no fallback: always debiased


def test_debias_fallback_switches_a_channel_that_finds_nothing_debiased():
    import math as m
    from types import SimpleNamespace

    from masktwins3d.adapt.methods import MaskedConsistency

    loss = SimpleNamespace(threshold=[0.75, 0.65], pos_weight=[30.0], debias_pos_weight=True, debias_fallback=0.25, target_start=0,
                           threshold_rule="prior", cb_portion=0.5, negative_threshold=None, negative_band=None)
    run = SimpleNamespace(model=SimpleNamespace(head="sigmoid", out_channels=2, adain=False), mask=SimpleNamespace(kind="complementary"),
                          loss=loss, teacher=SimpleNamespace(ema=False, restart=False))
    method = MaskedConsistency(nn.Conv3d(1, 2, 1), run, 0.0, torch.Generator())
    shift = m.log(30.0)
    logits = torch.full((1, 2, 10), -6.0)
    logits[0, 0, 0] = shift + 4.0  # channel 0: debiased p = 0.98 >= 0.75, a positive either way
    logits[0, 1, 0] = 3.0  # channel 1: plain p = 0.95 >= 0.65, debiased p = 0.40: nothing debiased
    logs: dict = {}
    label, conf = method.pseudo_labels(logits, [0.1, 0.1], logs)
    assert label[0, 0].tolist() == [1] + [0] * 9 and label[0, 1].tolist() == [1] + [0] * 9  # channel 1 from the plain teacher
    assert float(logs["debiased_channels"]) == 1.0
    assert method.debiased_fg_sum == pytest.approx([0.1, 0.0]) and method.debiased_fg_count == 1
    off = MaskedConsistency(nn.Conv3d(1, 2, 1), SimpleNamespace(**{**vars(run), "loss": SimpleNamespace(**{**vars(loss), "debias_fallback": None})}),
                            0.0, torch.Generator())
    label_off, _ = off.pseudo_labels(logits, [0.1, 0.1], {})
    assert label_off[0, 1].sum() == 0  # without the fallback channel 1 teaches only background
    fresh = MaskedConsistency(nn.Conv3d(1, 2, 1), run, 0.0, torch.Generator())
    fresh.load_extra_state(method.extra_state())  # the running fraction goes into checkpoints
    assert fresh.debiased_fg_sum == method.debiased_fg_sum and fresh.debiased_fg_count == 1
