"""The networks: the voxel teacher (:mod:`~ifkd.models.teacher`), the IFKD student
(:mod:`~ifkd.models.student`) and the baselines (:mod:`~ifkd.models.baselines`), on shared pieces
(:mod:`~ifkd.models.unet`, :mod:`~ifkd.models.decoder`, :mod:`~ifkd.models.sampling`).

Each method computes its own losses in ``training_losses``: the KD loss (recon + lambda * L1 to the
frozen teacher's z2) is :meth:`ifkd.models.student.IFKDStudent.training_losses`.
"""
