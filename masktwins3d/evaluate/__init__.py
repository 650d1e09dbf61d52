"""Scoring with the published protocols: mitochondria (DA-ISC) and, later, synapses (WASPSYN)."""

from .binary import Counts, binary_counts, f1_from_counts, iou_from_counts, mcc_from_counts
from .mito import EmptyRule, EmptySectionWarning, EvalMode, evaluate_mito
from .ranking import ScoreTally, average_precision, average_precision_from_tally, merge_tallies, score_tally
from .report import write_mito_report

__all__ = [
    "Counts",
    "EmptyRule",
    "EmptySectionWarning",
    "EvalMode",
    "ScoreTally",
    "average_precision",
    "average_precision_from_tally",
    "binary_counts",
    "evaluate_mito",
    "f1_from_counts",
    "iou_from_counts",
    "mcc_from_counts",
    "merge_tallies",
    "score_tally",
    "write_mito_report",
]
