"""Real data: readers for the ShapeNet formats users already have (R2N2, OccNet, IM-NET, binvox, meshes)
and the importer that converts them into our one on-disk format (``ifkd data import``; its command
line is :mod:`ifkd.commands.data_import`)."""

from ifkd.data.shapenet.importer import (
    ImportSettings,
    format_summary,
    import_meshes,
    import_occnet,
    import_r2n2,
)

__all__ = [
    "ImportSettings",
    "format_summary",
    "import_meshes",
    "import_occnet",
    "import_r2n2",
]
