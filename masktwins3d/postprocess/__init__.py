"""From voxel probabilities to objects: synapse points (AdaSyn protocol)."""
