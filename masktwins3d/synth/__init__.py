"""Procedural EM-like volumes with mitochondria labels and a controllable domain shift.

The package's embedded default data: :func:`generate_volume` draws one volume of a
:class:`DomainStyle` (cells, mitochondria, vesicles, imaging), :func:`write_demo_data` writes
the demo's ``source_train``, ``target_train`` and ``target_test`` volumes.
"""

from .demo import DEMO_SHAPES, DEMO_VOLUMES, write_demo_data
from .generate import generate_volume
from .style import STYLES, DomainStyle, get_style

__all__ = ["DomainStyle", "STYLES", "get_style", "generate_volume", "write_demo_data", "DEMO_SHAPES", "DEMO_VOLUMES"]
