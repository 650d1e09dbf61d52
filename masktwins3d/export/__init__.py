"""Share trained models: a bioimage.io model package from a checkpoint (:mod:`.bioimageio`)."""

from .bioimageio import Exported, export_bioimageio

__all__ = ["Exported", "export_bioimageio"]
