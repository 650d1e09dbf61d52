"""napari plugin (npe2): a reader for every format masktwins3d reads, and the Predict,
Post-process, Evaluate and Export dock widgets. Install with ``pip install masktwins3d[napari]``.

The conventions between masktwins3d data and napari layers are in :mod:`.layers`; numerics the
widgets show (error overlays, point outcomes) are in :mod:`.overlay`; neither needs Qt.
"""
