"""Procedural EM-like volumes with labels and a controllable domain shift.

The package's embedded default data, one generator per track:

* mitochondria (anisotropic serial sections): :func:`generate_volume` draws one volume of a
  :class:`DomainStyle` (cells, mitochondria, vesicles, imaging), :func:`write_demo_data` writes
  the demo's ``source_train``, ``target_train`` and ``target_test`` volumes;
* synapses (8 nm isotropic, fly-like neuropil): :func:`generate_synapse_volume` draws one volume
  of a :class:`SynapseStyle` with its WASPSYN ``pre`` / ``post`` points,
  :func:`write_synapse_demo_data` writes the synapse demo's three volumes and point files.
"""

from .demo import DEMO_SHAPES, DEMO_VOLUMES, write_demo_data
from .generate import generate_volume
from .style import STYLES, DomainStyle, get_style
from .synapse import generate_synapse_volume
from .synapse_demo import SYNAPSE_DEMO_SHAPES, SYNAPSE_DEMO_VOLUMES, write_synapse_demo_data
from .synapse_style import SYNAPSE_STYLES, SynapseStyle, get_synapse_style

__all__ = [
    "DomainStyle",
    "STYLES",
    "get_style",
    "generate_volume",
    "write_demo_data",
    "DEMO_SHAPES",
    "DEMO_VOLUMES",
    "SynapseStyle",
    "SYNAPSE_STYLES",
    "get_synapse_style",
    "generate_synapse_volume",
    "write_synapse_demo_data",
    "SYNAPSE_DEMO_SHAPES",
    "SYNAPSE_DEMO_VOLUMES",
]
