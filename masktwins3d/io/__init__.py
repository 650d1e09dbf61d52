"""Volume I/O: open zarr, OME-Zarr, HDF5, TIFF, Neuroglancer precomputed and N5 volumes lazily; create OME-Zarr or precomputed outputs.

>>> from masktwins3d.io import open_volume, create_volume
>>> vol = open_volume("data.h5:/volumes/raw")   # Volume: lazy, ZYX, voxel_size (nm), offset (voxels)
>>> section = vol[10]                           # reads one section only
"""

from .spec import FORMATS, open_volume
from .volume import Volume
from .zarr_io import create_volume

__all__ = ["FORMATS", "Volume", "create_volume", "open_volume"]
