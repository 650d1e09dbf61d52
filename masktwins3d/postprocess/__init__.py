"""From voxel probabilities to objects: mitochondria masks and instances (:mod:`.mito`), synapse
points by the AdaSyn protocol (:mod:`.synapse`), and both block by block for volumes larger than
memory (:mod:`.blockwise`, stitching numerics in :mod:`.stitch`), identical to the whole-volume result."""
