"""Training: the ``train()`` entry (run), the one loop for teachers and students (loop), validation IoU
(validate), the recon -> recon+KD schedule (schedule), run folders and checkpoints (checkpoint) with
their optimizer/RNG state (state), and single-process / torchrun DDP set-up (distributed).

The losses are the methods' own: the loop calls ``method.training_losses(batch, kd_active, teacher)``;
the KD loss is in :meth:`ifkd.models.student.IFKDStudent.training_losses`."""

from ifkd.train.checkpoint import CheckpointError, load_model
from ifkd.train.loop import NonFiniteLossError, TrainingInterrupted, fit
from ifkd.train.run import train

__all__ = ["CheckpointError", "NonFiniteLossError", "TrainingInterrupted", "fit", "load_model", "train"]
