"""Single-view 3D reconstruction by implicit field knowledge distillation (IFKD).

Where things are: the methods and their roles (teacher / student / baseline) in :mod:`ifkd.methods`;
the networks in :mod:`ifkd.models` -- the voxel teacher (``models.teacher``), the IFKD student
(``models.student``), whose ``IFKDStudent.training_losses`` holds the reconstruction and the KD loss
(L1 between the student's projected feature and the teacher's z2); training in :mod:`ifkd.train`,
evaluation in :mod:`ifkd.eval`, reconstruction of user images in :mod:`ifkd.reconstruct`, the command
line in :mod:`ifkd.commands` (entry :mod:`ifkd.cli`).
"""
