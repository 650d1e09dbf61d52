"""masktwins3d: adapt EM segmentation networks to new, unlabelled volumes with MaskTwins."""

__version__ = "0.1.0"
