"""Real data: readers for the ShapeNet formats users already have (R2N2, OccNet, IM-NET, binvox, meshes)
and the importer that converts them into our one on-disk format (``ifkd data import``)."""

from ifkd.data.shapenet.importer import (
    ImportSettings,
    add_import_parser,
    format_summary,
    import_meshes,
    import_occnet,
    import_r2n2,
)

__all__ = [
    "ImportSettings",
    "add_import_parser",
    "format_summary",
    "import_meshes",
    "import_occnet",
    "import_r2n2",
]
