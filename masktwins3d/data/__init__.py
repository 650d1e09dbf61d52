"""Data: intensity normalisation, crop sampling and batches for training."""
