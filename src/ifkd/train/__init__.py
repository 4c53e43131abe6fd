"""Training: the ``train()`` entry (run), the one loop for teachers and students (loop), validation IoU
(validate), the recon -> recon+KD schedule (schedule), run folders and checkpoints (checkpoint) with
their optimizer/RNG state (state), and single-process / torchrun DDP set-up (distributed)."""

from ifkd.train.checkpoint import CheckpointError, load_model
from ifkd.train.loop import NonFiniteLossError, TrainingInterrupted, fit, train

__all__ = ["CheckpointError", "NonFiniteLossError", "TrainingInterrupted", "fit", "load_model", "train"]
