"""Share trained models: a bioimage.io model package from a checkpoint (:mod:`.bioimageio`)."""

from .bioimageio import Exported, export_bioimageio, test_package

__all__ = ["Exported", "export_bioimageio", "test_package"]
