"""Why masktwins loses synapses on the demo pair: a screen of one-change variants on
calibration seeds that the reported tables never use.

The 3-seed demo tables (`benchmarks/demo_seeds.py`, seeds 0, 1, 2) show masktwins losing
0.18-0.34 synapse F1 against noadapt continued, and the learning curves show most of the loss in
the first 50 warm-started iterations. This screen regenerates the synthetic synapse pair for
calibration seeds (default 10, 11, 12: disjoint from the reporting seeds), trains each seed's
noadapt source model exactly as the demo does, then warm-starts every variant from it with the
demo's adapt settings (``masktwins3d.demo.ADAPT_SETTINGS["synapse"]``, the demo's schedule over
``--schedule`` iterations) and stops after ``--steps`` of them, where the curves show the
collapse already happened. Each variant differs from the demo's masktwins in one setting a
hypothesis about the collapse names (:data:`VARIANTS`, fixed before any was scored). Scores:
WASPSYN F1 of the EMA and last-student weights on the seed's held-out synthetic target, and
paired per-seed differences against noadapt and masktwins stopped at the same step. Resumable:
a run whose scores exist is read, not retrained. A run folder keeps the volumes it was made with:
folders made before the demo's held-out target grew to 64x256x256 (commit 09fd7e3) score on the
earlier 64x128x128 one, so compare scores within one folder. Usage::

    .venv/bin/python benchmarks/synapse_calibration.py --seeds 10 11 12 --out runs/synapse_calibration
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from masktwins3d.atomic import atomic_write_json, discard, restore_on_error  # noqa: E402
from masktwins3d.demo import ADAPT_ITERATIONS, ADAPT_SETTINGS, WEIGHTS, default_config  # noqa: E402
from masktwins3d.evaluate.paired import format_difference, paired_difference  # noqa: E402

VARIANTS = {
    "noadapt": ["method=noadapt"],
    # the target's own labels (L_sup on the target): how much a shift-closing model can gain at this budget
    "oracle": ["method=oracle"],
    "masktwins": [],
    # the teacher's positives (false ones included) are taught 30x as hard as its negatives: plain BCE in L_cl
    "cl_pos_weight_1": ["loss.cl_pos_weight=[1.0]"],
    # the teacher's logits without the log(pos_weight) bias BCE puts into them, before thresholding
    "debias": ["loss.debias_pos_weight=true"],
    # positives capped at the source labels' foreground fraction (the batch's most confident voxels
    # only): the flood of 13-15 % pseudo-labelled foreground against 0.1 % cannot be taught
    "prior": ["loss.threshold_rule=prior"],
    # and AdaIN left off: the warm-started source model was trained without it, and switching it
    # on restyles the source features L_sup has been fitting (added after prior halved the loss
    # on the reported seeds 0-2 but left it negative)
    "prior_no_adain": ["loss.threshold_rule=prior", "model.adain=false"],
    # and every voxel under the cap taught as a negative, as the source labels teach every voxel
    # away from a point (with prior the students still inflate p >= 0.5 on the target: the band
    # between 1 - delta and the cap was taught nothing)
    "prior_all_negative": ["loss.threshold_rule=prior", "loss.negative_threshold=1.0"],
    # prior, with the teacher's logits debiased by log(pos_weight) before the cap: a crop without
    # a synapse still has its cap filled by inflated background voxels (p >= delta on 14-21 % of
    # the target under pos_weight 30), which the student learns as extra post blobs (added after
    # prior's students predicted 2-3x noadapt's post points on the reported seeds 0-2)
    "prior_debias": ["loss.threshold_rule=prior", "loss.debias_pos_weight=true"],
    # prior, with plain BCE in L_cl: the capped positives, false ones included, taught 30x as hard
    # as the negatives (same added-after note as prior_debias)
    "prior_cl_pos_weight_1": ["loss.threshold_rule=prior", "loss.cl_pos_weight=[1.0]"],
    # prior_debias, with a label-free switch per channel: while the debiased teacher labels less
    # than a quarter (the collapse guard's ratio) of the source labels' running foreground
    # fraction positive, that channel's pseudo-labels come from the plain teacher (added after
    # prior_debias won on seeds 12 and 13 and collapsed on seed 10, where the debiased
    # pseudo-label foreground was 0)
    "prior_debias_fallback": ["loss.threshold_rule=prior", "loss.debias_pos_weight=true", "loss.debias_fallback=0.25"],
    # the shipped config, with every voxel outside the teacher's top 10x source fraction taught as a
    # negative (loss.negative_band; 10 is loss.flood_ratio's default, not tuned): the adapted students
    # raised their own target p >= 0.5 fraction from 6-7 % to 8-15 % while taught 0.1 % positives,
    # because the band between the cap and 1 - delta was taught nothing; all-negative below the cap
    # (prior_all_negative) collapsed seed 10, so the teacher's next-most-confident voxels stay untaught
    # (added after the seeds 0-2 tables of prior_debias_fallback; decision rule in BENCHMARKS.md)
    "band_10": ["loss.negative_band=10"],
    # cells of 6 voxels (48^3 crop / 8): the paper's cell edge in voxels at the same voxel size (96^3 / 16)
    "patch_6": ["mask.patch=6"],
    # no cross-mask consistency (L_cl on both masked views only)
    "no_cm": ["loss.cm=false"],
    # no masks: mean-teacher self-training on the whole target crop (is masking the cause?)
    "no_mask": ["mask.kind=none", "loss.cm=false"],
    # no AdaIN: the source model was trained without it, the warm-started student switches it on
    "no_adain": ["model.adain=false"],
    # L_sup at a tenth of its weight in masktwins (noadapt and the oracle keep 1): on seeds 0-2 the
    # continued runs end below the source model on the target while noadapt continued holds or gains
    # on held-out source data, so further source supervision may specialise the model to the source
    # (the value the mito calibration picked; added after the test-volume noise measurement)
    "sup_weight_0.1": ["loss.sup_weight=0.1"],
    # L_cm with a weight that lets it act: on probabilities (the sigmoid head's cm_space) the two views'
    # MSE is about 0.005, so at lambda_cm 0.1 it is under 0.1 % of the loss (the mito track's L_cm, on
    # logits at 0.01, is about 5 %); 1 and 10 bracket the mito share (added after the logs of the
    # demo's seed-0 run showed it; decision rule in BENCHMARKS.md)
    "lambda_cm_1": ["loss.lambda_cm=1"],
    "lambda_cm_10": ["loss.lambda_cm=10"],
    # the official code's L_cm: MSE on logits at the paper's synapse lambda_cm 0.1
    "cm_logits": ["loss.cm_space=logits"],
    # the independent-mask twin of lambda_cm_10 (rmask's masks, same weights): whether complementary masks
    # matter once L_cm carries weight
    "independent_lambda_cm_10": ["mask.kind=independent", "loss.lambda_cm=10"],
    # lambda_cm 10 with loss.cm_guard: the step's lambda_cm scaled by the pseudo-labels' foreground over the
    # source labels', so L_cm stops pressing once it has drained the foreground (added after lambda_cm_10 gave the
    # best F1 yet on seeds 12 and 13 and no synapse on 10 and 11; judged on fresh seeds, BENCHMARKS.md)
    "lambda_cm_10_guard": ["loss.lambda_cm=10", "loss.cm_guard=true"],
    # lambda_cm 10 only on the channels whose pseudo-labels come from the debiased teacher (loss.debias_fallback
    # has not switched them back), the shipped 0.1 on the others: the runs' own `debiased_channels` log was 2 on
    # seeds 12 and 13, where lambda_cm 10 gave the best F1, and 0 on 10 and 11, where it left no synapse (added
    # after those runs; judged on fresh seeds, BENCHMARKS.md)
    "lambda_cm_10_debiased": ["loss.lambda_cm_debiased=10"],
}
MASK_GRID = {"lambda_cm": (0.01, 0.1), "patch": (3, 6), "kind": ("complementary", "independent")}
"""The synapse λ_cm × b sweep (issue 13, item 5), each cell with complementary and with independent
masks: the paper's 0.1 and the mito default 0.01; cells of 3 voxels (the shipped crop / 16) and of 6
(the paper's 48 nm at 8 nm voxels). Cells are named ``<kind>_l<lambda_cm>_b<patch>``; the shipped
config is ``complementary_l0.1_b3`` (the ``masktwins`` variant)."""
for _lam in MASK_GRID["lambda_cm"]:
    for _b in MASK_GRID["patch"]:
        for _kind in MASK_GRID["kind"]:
            VARIANTS[f"{_kind}_l{_lam:g}_b{_b}"] = [f"mask.kind={_kind}", f"loss.lambda_cm={_lam:g}",
                                                     f"mask.patch={_b}"]
DEFAULT_VARIANTS = ("noadapt", "masktwins", "cl_pos_weight_1", "debias", "no_mask")
"""Run by default (the others on request): the references, the two pos_weight hypotheses, and
masking switched off. Chosen after the first calibration runs logged a pseudo-label foreground
of 13 % against 0.09 % in the source labels (a flood, not a collapse), before any variant but
masktwins and noadapt was scored."""


def source_model(seed: int, out: Path, target_shift: float = 1.0, shift_fields: str = "all",
                 source_iterations: int | None = None) -> tuple[Path, dict]:
    """The seed's synthetic synapse volumes and noadapt source model, as `masktwins3d demo` makes them;
    the target drawn ``target_shift`` of the way from the source style to the demo's target style
    (1: the demo's target), along every style parameter or (``shift_fields="imaging"``) only along
    the imaging ones, the rest as the demo's target."""
    from masktwins3d.config import load_config
    from masktwins3d.synth import write_synapse_demo_data
    from masktwins3d.synth.style import IMAGING_FIELDS, shifted_style
    from masktwins3d.synth.synapse_style import SYN_SOURCE, SYN_TARGET
    from masktwins3d.train import train

    seed_dir = out / f"seed{seed}"
    specs_path = seed_dir / "specs.json"
    ckpt = seed_dir / "source" / "checkpoint.pt"
    wanted = (target_shift, shift_fields if target_shift != 1.0 else "all")  # s = 1 is the demo's target either way
    its = source_iterations or load_config(default_config("synapse_demo.yaml")).optim.iterations
    if specs_path.is_file() and ckpt.is_file():
        specs = json.loads(specs_path.read_text())
        held = (specs.get("target_shift", 1.0), specs.get("shift_fields", "all"))
        if held != wanted:
            sys.exit(f"{specs_path} holds volumes of target shift {held}; use another --out for {wanted}")
        if specs.get("source_iterations", its) != its:
            sys.exit(f"{specs_path} holds a source model of {specs['source_iterations']} iterations; use another --out for {its}")
        return ckpt, specs
    only = IMAGING_FIELDS if wanted[1] == "imaging" else None
    style = "syn_target" if target_shift == 1.0 else shifted_style(SYN_SOURCE, SYN_TARGET, target_shift, only=only)
    specs = write_synapse_demo_data(seed_dir / "volumes", seed=seed, overwrite=True, target_style=style)
    specs["target_shift"], specs["shift_fields"], specs["source_iterations"] = (*wanted, its)
    if not ckpt.is_file():  # the source model trains on the source alone, so one from another target shift serves
        run = load_config(default_config("synapse_demo.yaml"), [
            "method=noadapt", f"train.out_dir={seed_dir / 'source'}", f"train.seed={seed}", f"optim.iterations={its}",
            f"data.source.raw={specs['source_train']['raw']}", f"data.source.points={specs['source_train']['points']}",
            f"data.target.raw={specs['target_train']['raw']}", "train.progress=false",
        ])
        ckpt = train(run, overwrite=True)
    atomic_write_json(specs_path, specs)
    return ckpt, specs


HELD_OUT_SOURCE_SHAPE = (64, 128, 128)
"""The held-out source volume of each seed (older run folders only; newer ones hold the demo data's
``source_test``, of this shape)."""


def source_health(seed: int, out: Path, source: Path) -> dict:
    """The source model's F1 (both weights) on a held-out volume of the *source* style, never
    trained on: a score that needs source labels only, which a user has. The volume is the one
    `masktwins3d demo` writes as ``source_test`` for the same seed (drawn here too, for run folders
    made before the demo had it). Cached in ``<seed>/source/health.json``."""
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.io import create_volume
    from masktwins3d.io.points import SynapsePoints, read_points, write_points_h5
    from masktwins3d.postprocess.synapse import probabilities_to_points
    from masktwins3d.evaluate.synapse import score_synapses
    from masktwins3d.synth.synapse import generate_synapse_volume
    from masktwins3d.synth.synapse_style import SYN_SOURCE

    seed_dir = out / f"seed{seed}"
    path = seed_dir / "source" / "health.json"
    if path.is_file():
        return json.loads(path.read_text())
    vol = seed_dir / "volumes" / "source_test.zarr"
    points = seed_dir / "volumes" / "source_test_points.h5"
    if not (vol.is_dir() and points.is_file()):  # index 3 of the seed sequence, as in write_synapse_demo_data
        rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
        raw, pre, post = generate_synapse_volume(SYN_SOURCE, HELD_OUT_SOURCE_SHAPE, rng)
        create_volume(str(vol / "raw"), raw.shape, raw.dtype, voxel_size=tuple(SYN_SOURCE.voxel_size), offset=(0, 0, 0),
                      overwrite=True)[...] = raw
        write_points_h5(points, SynapsePoints(pre, post), SYN_SOURCE.voxel_size)
    gt = read_points(points)
    result = {}
    for w in WEIGHTS:
        prob = predict_with_checkpoint(source, str(vol / "raw"), seed_dir / "source" / f"prob_source_test_{w}.zarr",
                                       overlap=0.25, progress=False, weights=w, overwrite=True)
        points = probabilities_to_points(np.asarray(prob[:]))
        s = score_synapses(points, gt)
        result[w] = {"f1": float(s["f1"]), "f1_pre": float(s["f1_pre"]), "f1_post": float(s["f1_post"]),
                     "n_pre": int(len(points.pre)), "n_post": int(len(points.post))}
    result["gt"] = {"n_pre": int(len(gt.pre)), "n_post": int(len(gt.post))}
    atomic_write_json(path, result)
    return result


def run_variant(seed: int, out: Path, name: str, source: Path, specs: dict, steps: int, schedule: int,
                init_weights: str = "ema") -> dict:
    """Both weights' F1 and point counts of one variant stopped after ``steps`` of a ``schedule``-long run,
    warm-started from the source checkpoint's ``init_weights`` (ema or student)."""
    from masktwins3d.config import load_config
    from masktwins3d.evaluate.synapse import score_synapses
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.io.points import read_points
    from masktwins3d.postprocess.synapse import probabilities_to_points
    from masktwins3d.train import build_trainer

    run_dir = out / f"seed{seed}" / name
    scores = run_dir / "scores.json"
    if scores.is_file():
        cached = json.loads(scores.read_text())
        if cached.get("init_weights", "ema") != init_weights:
            sys.exit(f"{scores} started from the source's {cached.get('init_weights', 'ema')} weights; "
                     f"use another --out for {init_weights}")
        return cached
    overrides = [
        "method=masktwins", f"train.out_dir={run_dir}", f"train.seed={seed}", f"optim.iterations={schedule}",
        f"train.init={source}", f"train.init_weights={init_weights}", "loss.target_start=0", *ADAPT_SETTINGS["synapse"], "train.progress=false",
        f"data.source.raw={specs['source_train']['raw']}", f"data.source.points={specs['source_train']['points']}",
        f"data.target.raw={specs['target_train']['raw']}", *VARIANTS[name],
    ]
    if name == "oracle":  # the only variant that reads the target's labels
        overrides.append(f"data.target.points={specs['target_train']['points']}")
    run = load_config(default_config("synapse_demo.yaml"), overrides)
    t = time.perf_counter()
    trainer = build_trainer(run, overwrite=True)
    trainer.iterations = steps  # the schedule of a `schedule`-long run, stopped early (its checkpoint is written)
    with restore_on_error(trainer.out_dir, trainer.replaced):  # as train.train settles an --overwrite
        ckpt = trainer.run()
    discard(trainer.replaced)
    seconds = time.perf_counter() - t
    gt = read_points(specs["target_test"]["points"])
    result = {"seconds": seconds, "init_weights": init_weights}
    for w in WEIGHTS:
        prob = predict_with_checkpoint(ckpt, specs["target_test"]["raw"], run_dir / f"prob_{w}.zarr", patch_size=tuple(run.data.crop),
                                       overlap=0.25, progress=False, weights=w, overwrite=True)
        points = probabilities_to_points(np.asarray(prob[:]))
        s = score_synapses(points, gt)
        result[w] = {"f1": float(s["f1"]), "f1_pre": float(s["f1_pre"]), "f1_post": float(s["f1_post"]),
                     "n_pre": int(len(points.pre)), "n_post": int(len(points.post))}
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    result["label_free"] = {k: float(np.mean([r[k] for r in log if k in r])) for k in ("pl_foreground", "pred_foreground", "source_foreground", "quality")
                            if any(k in r for r in log)}
    result["gt"] = {"n_pre": int(len(gt.pre)), "n_post": int(len(gt.post))}
    atomic_write_json(scores, result)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/synapse_calibration")
    p.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    p.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=50, help="warm-started iterations run (default 50)")
    p.add_argument("--schedule", type=int, default=ADAPT_ITERATIONS["synapse"], help="length of the schedule they follow")
    p.add_argument("--target-shift", type=float, default=1.0,
                   help="the target style this far from the source style towards the demo's target "
                        "(1: the demo's; default 1)")
    p.add_argument("--init-weights", choices=(*WEIGHTS, "best"), default="ema",
                   help="the source weights every variant starts from (best: those with the higher F1 on the "
                        "held-out source volume; default ema, as the demo)")
    p.add_argument("--source-iterations", type=int, default=None,
                   help="length of the source phase (default: configs/synapse_demo.yaml's)")
    p.add_argument("--shift-fields", choices=("all", "imaging"), default="all",
                   help="which style parameters --target-shift moves "
                        "(imaging: blur, intensity mapping, noise; default all)")
    args = p.parse_args()
    out = Path(args.out)
    results: dict[str, dict[int, dict]] = {name: {} for name in args.variants}
    for seed in args.seeds:
        source, specs = source_model(seed, out, args.target_shift, args.shift_fields, args.source_iterations)
        h = source_health(seed, out, source)
        results.setdefault("source_health", {})[seed] = h
        print(f"seed {seed} source model on held-out source: " + "  ".join(
            f"{w} F1 {h[w]['f1']:.3f} ({h[w]['n_pre']}/{h[w]['n_post']})" for w in WEIGHTS) + f"  of {h['gt']['n_pre']}/{h['gt']['n_post']}", flush=True)
        init = args.init_weights if args.init_weights != "best" else max(WEIGHTS, key=lambda w: h[w]["f1"])
        for name in args.variants:
            r = run_variant(seed, out, name, source, specs, args.steps, args.schedule, init)
            results[name][seed] = r
            lf = r.get("label_free", {})
            print(f"seed {seed} {name:<16} " + "  ".join(f"{w} F1 {r[w]['f1']:.3f} ({r[w]['n_pre']}/{r[w]['n_post']})" for w in WEIGHTS)
                  + (f"  pseudo-label fg {lf['pl_foreground']:.5f} / source {lf['source_foreground']:.5f}" if "pl_foreground" in lf else "")
                  + f"  ({r['seconds']:.0f} s)", flush=True)
    seeds = args.seeds
    print(f"\nsynapse calibration: seeds {seeds}, {args.steps} of {args.schedule} warm-started iterations; WASPSYN F1 (mean over seeds)")
    print(f"{'variant':<18}" + "".join(f"{w + ' F1':>11}" for w in WEIGHTS) + "   minus noadapt (EMA), mean [95 % t]     minus masktwins (EMA)")
    paired = {}
    for name in args.variants:
        vals = [results[name][s]["ema"]["f1"] for s in seeds]
        row = f"{name:<18}" + "".join(f"{np.mean([results[name][s][w]['f1'] for s in seeds]):>11.3f}" for w in WEIGHTS)
        d = {}
        for ref in ("noadapt", "masktwins"):
            if ref in results and ref != name:
                d[ref] = paired_difference(vals, [results[ref][s]["ema"]["f1"] for s in seeds])
        paired[name] = d
        print(row + "   " + "   ".join(format_difference(d[r], 1, 3) if r in d else f"{'-':>30}" for r in ("noadapt", "masktwins")))
    atomic_write_json(out / "summary.json", {"seeds": seeds, "steps": args.steps, "schedule": args.schedule,
                                             "init_weights": args.init_weights,
                                             "target_shift": args.target_shift, "shift_fields": args.shift_fields,
                                             "variants": {k: VARIANTS[k] for k in args.variants},
                                             "results": {k: {str(s): v for s, v in r.items()} for k, r in results.items()},
                                             "paired": paired})
    print(f"\nsummary: {out / 'summary.json'}")


if __name__ == "__main__":
    main()
