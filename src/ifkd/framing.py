"""Put any picture of one object into the framing the model was trained on (crop, recentre, rescale).

Why: the camera-free student projects its query points with the FIXED R2N2 camera
(:mod:`ifkd.geometry.camera`), so it reads the object's size and position in the frame as geometry. It
was trained on R2N2 renders only, where the object-frame origin projects to the image centre and a
bounding-box-diagonal-1 object fills a narrow band of the frame. Off that framing the reconstruction
falls apart: a genuine render of a car scored Chamfer-L1 x10 0.223 as it came, 2.35 pasted off-centre
on a canvas twice as large and 1.15 shrunk to two thirds (benchmarks/results/framing.md has the table
with framing off, always and auto).

What :func:`frame_image` does, in this order:

1. **Find the object** (:func:`find_object`). An image with real transparency (any alpha < 255): the
   pixels with alpha >= :data:`ALPHA_THRESHOLD` (half coverage: the anti-aliased edge where it really
   is, at any image size). Without transparency: the border's colour is the background if the border
   is plain -- its median colour, with at least :data:`PLAIN_BORDER_SHARE` of the border pixels within
   a tolerance of it (:data:`BACKGROUND_TOLERANCE`, wider for a noisy border) -- and the background is
   every pixel within that tolerance that is connected to the border (so white parts inside a
   white-backed object stay object); the background becomes transparent, so the model sees the object
   on its training background, and the object's anti-aliased edge pixels get their estimated coverage
   as alpha (so the same render with and without alpha frames to the same picture). A busy
   border (a photograph's surroundings) cannot be told from the object: the image is returned as it is
   with a warning, never cropped blindly. No object at all (a blank image): returned as is, with a
   warning.
2. **Decide what to change** (``mode="auto"``, the default): the object's bounding box is measured in
   the square frame of side max(w, h) centred on the image centre (the frame the model's loader would
   read): its size ``r0`` = the box's longest side / max(w, h), its offset ``o`` = (box centre - image
   centre) / that side (x right, y down). The image centre is kept when ``o`` lies within the training
   range (:data:`TRAINING_OFFSET_X_RANGE`, :data:`TRAINING_OFFSET_Y_RANGE`), else the box is recentred;
   the size is kept when ``r0`` lies within :data:`TRAINING_RATIO_RANGE`, else rescaled to
   :data:`TRAINING_FOREGROUND_RATIO` (an explicit ``foreground_ratio`` always rescales: the user asked
   for it). ``mode="always"`` recentres and rescales every picture (the policy before ``auto``).
3. **Crop, recentre, rescale, pad to square**: the output is a square canvas. Recentred, the box's
   centre lies :data:`TRAINING_CENTRE_OFFSET` from the canvas centre (the median framing of our
   R2N2-style renders); kept, the canvas centre is the image centre. Rescaled, the box's longest side is
   :data:`TRAINING_FOREGROUND_RATIO` of the width; kept, the canvas is max(w, h) wide. Both kept, a
   square picture comes back with its geometry unchanged (the same canvas; a non-square one is padded
   to the square around its centre) -- only a plain background became transparency, the model's
   training background. Pixels are copied, not resampled (the canvas is cut from the image at whole
   pixels and padded with transparency, so the position and size are right to half a pixel); only a
   canvas over :data:`MAX_FRAME_SIZE` pixels is scaled down (premultiplied alpha). The model's loader
   resizes the whole square frame to its input size afterwards, as for any image.

The output is what the model should be given; :class:`FramingInfo` says what was done (``kept_centre``,
``kept_size``). The mesh made from a reframed image is in the normalised object scale (bounding-box
diagonal about 1, as the training shapes), whatever the object's size in the picture: the picture's
scale is not kept.

What it costs, and why the policy is ``auto`` (benchmarks/results/framing.md; shipped weights,
camera-free, Chamfer-L1 x10 means): on 26 synthetic test renders recentring and rescaling every picture
(``always``) brings the off-centre 2x canvas from 2.49 to 0.54 and the 2/3 shrink from 0.77 to 0.58,
every variant (flattened on white too) within 8 % of the framed render; on 20 renders of 5 real CAPOD
meshes 2.65 -> 0.80 and 0.77 -> 0.81. But a genuine R2N2-style render loses: 0.32 -> 0.54 (real meshes
0.52 -> 0.80). Its framing carries two facts no picture states -- the origin exactly at the image
centre and the object's size at its true distance -- and a bounding box only estimates them: the box
centre's offset from the origin's projection varies by 0.10 rms in normalised image units (the frame is
2 wide; 0.08 median), the box size by +-11 % (median absolute log) at a given distance (measured on
1,560 renders like those of framing_stats). On the 13 test shapes' first views, framed 0.57 and
unframed 0.36, an oracle that restores the centre gives 0.39, the size 0.46, both 0.31: the centre is
most of the loss, and no statistic of the silhouette tried (box, centroid, median pixel, a regression on
the box's aspect) brings it below 0.09 rms. Hence ``auto``: a picture whose box already lies where the
training renders' boxes lie (5th-95th percentiles) keeps the image centre, which for such a picture is
the better estimate of where the origin projects, and its size; only what is out of range is changed.
Measured in the same table, ``auto`` gives 0.35 on the synthetic renders as they come (24 of 26 kept
as they are; off 0.32, always 0.54), 0.54 on the off-centre 2x canvas (always 0.54) and 0.52 on the 2/3
shrink, rescaled about the image centre (always 0.58, off 0.77); on the real meshes' renders 0.67 as
they come (13 of 20 keep their centre; off 0.52, always 0.80), 0.80 off-centre and 0.77 shrunk (always
0.81). What it still loses on genuine renders is those whose box lies outside the ranges: a quarter of
the training renders themselves (75 % have size and offset within them), more of the real meshes'. So
``--no-reframe`` (``reframe=False``) stays the choice for genuine R2N2-style renders: it reads a picture
exactly as it is.

Not for images whose camera is known: the R2N2 framing *is* the geometry of a known pose (the origin at
the centre, the distance in the metadata), so evaluation, training and multi-view fusion with known poses
read renders as they are (:meth:`ifkd.reconstruct.Reconstructor.reconstruct` leaves tensors untouched).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

TRAINING_FOREGROUND_RATIO = 0.679
"""The object's bounding box's longest side as a fraction of the image width in the renders the model
was trained on: the median over 2,496 views (quartiles 0.591 and 0.766; 137 px, so a step is 0.0073).

Measured once with ``python benchmarks/framing_stats.py --per-category 8 --views 24 --seed 0``, which
renders ``ifkd data synth --out DATA --per-category 8 --views 24 --seed 0`` (104 shapes of the 13
categories, every view; seed 0 is the shipped weights' training data's) and takes each view's foreground
(alpha >= :data:`ALPHA_THRESHOLD`, as :func:`find_object`) -> bounding box. The spread is the training
distribution's own: the distance ratio (0.65-0.9: median 0.80 at the nearest band, 0.61 at the farthest)
and the object's shape (airplanes 0.54, loudspeakers 0.75). Results: benchmarks/results/framing_stats.md.
"""

TRAINING_CENTRE_OFFSET = (0.0, 0.0446)
"""Where the bounding box's centre lies relative to the image point the camera looks at, in units of the
box's longest side, (x right, y down): the median over the same 2,496 views (x quartiles -0.036, 0.033;
y quartiles 0.000, 0.090).

In R2N2 renders the projection of the object-frame origin -- the centre of the reconstruction's query
frame, as the camera looks at it -- is exactly the image centre (measured: 0 for every view), while the
box's centre is not: seen from 25-30 degrees above, an object's box centre lies a little below it. So
:func:`frame_image` puts the box centre this far from the canvas centre (median y +0.045 side, i.e.
+0.061 in normalised units at the training ratio; x 0 by the symmetry of the azimuths): the origin then
falls where it falls in training, and the query frame is centred as the model expects.
"""

TRAINING_RATIO_RANGE = (0.474, 0.883)
"""The range of the training renders' object size (box longest side / image width) that ``auto`` framing
keeps as it is: the 5th and 95th percentiles (0.4744, 0.8832) of the same 2,496 views as
:data:`TRAINING_FOREGROUND_RATIO` (column 'ratio' of benchmarks/results/framing_stats.json). Recomputed
without rendering by ``python benchmarks/framing_stats.py --ranges``."""

TRAINING_OFFSET_X_RANGE = (-0.105, 0.101)
"""The range of the training renders' box-centre offset from the image centre, x (right), in units of the
box's longest side, that ``auto`` framing keeps: the 5th and 95th percentiles (-0.1048, 0.1014) of the same
2,496 views (column 'offset_x' of benchmarks/results/framing_stats.json: box centre - projection of the
origin, which is the image centre in every R2N2 render). Recomputed by ``framing_stats.py --ranges``."""

TRAINING_OFFSET_Y_RANGE = (-0.037, 0.148)
"""As :data:`TRAINING_OFFSET_X_RANGE`, y (down): the 5th and 95th percentiles (-0.0366, 0.1484) of column
'offset_y' (seen from above, a box's centre lies a little below the origin's projection)."""

FRAMING_MODES = ("auto", "always")
"""``auto``: change only what lies outside the training ranges (the default; see the module docstring);
``always``: recentre and rescale every picture."""
DEFAULT_FRAMING_MODE = "auto"

ALPHA_THRESHOLD = 128
"""Foreground where alpha >= this (of 255): half coverage, the anti-aliased edge's true place."""
BACKGROUND_TOLERANCE = (8, 32)
"""(least, most) per-channel difference (of 255) from the border's median colour that still counts as
background, for images without transparency: the least for a clean border (a render flattened on white:
a tight tolerance keeps the object's light, shaded parts), plus 4x the border's median deviation for a
noisy one (JPEG ringing, a photographed backdrop), up to the most."""
PLAIN_BORDER_SHARE = 0.9
"""The border is plain when at least this share of its pixels is within the tolerance of its median
colour (an object may touch the border along the rest)."""
BUSY_BACKGROUND = (
    "busy background and no transparency: the object cannot be told from its surroundings, so the image "
    "was NOT reframed and may reconstruct as a blob; give a cut-out (PNG with alpha) or a plain background"
)
"""The warning for an image that cannot be framed (followed by the border's measured plainness)."""
MAX_FRAME_SIZE = 1024
"""A framed canvas larger than this (pixels per side) is scaled down to it: the model's input is far
smaller anyway (64 or 137 px), and a 4096 px photograph should not become a 7000 px canvas."""


@dataclass
class FramingInfo:
    """What :func:`frame_image` did to one image."""

    reframed: bool
    """True when an object was found and the framing policy applied to it -- also when that policy kept the
    picture's geometry (:attr:`kept_centre` and :attr:`kept_size`); False when the image was returned as
    it came because no object could be found (a blank image, a busy background)"""
    source: str
    """how the object was found: 'alpha' (transparency), 'background' (a plain border colour), or
    'none' (not found)"""
    input_size: tuple[int, int]
    """(width, height) of the image given"""
    bbox: tuple[int, int, int, int] | None = None
    """the object's bounding box in the input, pixels (left, top, right, bottom; right/bottom exclusive)"""
    crop: tuple[int, int, int, int] | None = None
    """the input region that became the output canvas (left, top, right, bottom); it may reach beyond
    the image (that part is transparent padding)"""
    scale: float = 1.0
    """output pixels per input pixel (1 unless the canvas was over :data:`MAX_FRAME_SIZE`)"""
    output_size: int | None = None
    """side of the square output, pixels"""
    foreground_ratio: float = TRAINING_FOREGROUND_RATIO
    """the bounding box's longest side as a fraction of the output's width"""
    object_ratio: float | None = None
    """the bounding box's longest side as a fraction of the input's longer side (before framing)"""
    background: tuple[int, int, int] | None = None
    """the plain background colour that was made transparent (source 'background')"""
    mode: str = DEFAULT_FRAMING_MODE
    """the policy asked for (:data:`FRAMING_MODES`)"""
    kept_centre: bool = False
    """the image centre stayed the canvas centre (the box's offset from it was in the training range)"""
    kept_size: bool = False
    """the object kept its size in the frame (its ratio was in the training range, no ratio was asked for)"""
    offset: tuple[float, float] | None = None
    """the box centre's offset from the image centre in the input, in units of the box's longest side
    (x right, y down): what ``auto`` compares with the training range"""
    warnings: list[str] = field(default_factory=list)
    """what the caller should tell the user (a busy background, no object, an object cut by the edge)"""

    @property
    def warning(self) -> str | None:
        """The warnings as one line, or None."""
        return "; ".join(self.warnings) or None

    @property
    def action(self) -> str:
        """A few words: 'framing kept', 'reframed (recentred, size kept)', 'reframed (rescaled, centre
        kept)', 'reframed (recentred and rescaled)' or 'not reframed'."""
        if not self.reframed:
            return "not reframed"
        if self.kept_centre and self.kept_size:
            return "framing kept"
        if self.kept_centre:
            return "reframed (rescaled, centre kept)"
        if self.kept_size:
            return "reframed (recentred, size kept)"
        return "reframed (recentred and rescaled)"

    def summary(self) -> str:
        """One line: what was done."""
        if not self.reframed:
            return f"not reframed ({self.warning or 'reframing off'})"
        w, h = self.input_size
        side = max(self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1])
        how = "transparency" if self.source == "alpha" else f"plain background {self.background}"
        centre = "centre kept" if self.kept_centre else "recentred"
        size = "size kept" if self.kept_size else "rescaled"
        cut = "" if self.source == "alpha" else "; background made transparent"
        return (
            f"{self.action}: object {side} px of {w}x{h} (found by {how}), {self.object_ratio:.2f} of the "
            f"frame, offset ({self.offset[0]:+.3f}, {self.offset[1]:+.3f}) box sides -> {centre}, {size}: "
            f"{self.foreground_ratio:.2f} of a {self.output_size} px square ({self.mode} framing{cut})"
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "warning": self.warning}


def as_rgba(arr: np.ndarray) -> np.ndarray:
    """uint8 grey (H, W) or (H, W, 1), grey+alpha (H, W, 2), RGB (H, W, 3) or RGBA (H, W, 4) -> RGBA
    (H, W, 4); a missing alpha is opaque (the whole frame is the object's view)."""
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image array, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or min(arr.shape[:2]) < 2:
        raise ValueError(f"expected an image array (H, W[, 1|2|3|4]) of at least 2x2, got shape {arr.shape}")
    if arr.shape[2] <= 2:  # grey (+ alpha): repeat the grey level into RGB
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
    if arr.shape[2] == 3:
        arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(arr)


def _rgba(image: np.ndarray) -> np.ndarray:
    """An RGBA uint8 array as it is (any size, 1x1 too: :func:`ifkd.data.format.load_image` reads such
    files), anything else through :func:`as_rgba`."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 4 and min(arr.shape[:2]) >= 1:
        return arr
    return as_rgba(arr)


def _border(a: np.ndarray) -> np.ndarray:
    """The one-pixel ring of an (H, W, ...) array, (K, ...)."""
    if min(a.shape[:2]) <= 2:
        return a.reshape((-1,) + a.shape[2:])
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


@dataclass
class FoundObject:
    """Where the object is in an image (:func:`find_object`)."""

    mask: np.ndarray
    """(H, W) bool: the object's pixels at half coverage or more (its bounding box is the object's)"""
    rgba: np.ndarray
    """(H, W, 4) uint8: the image to frame -- the one given, or (source 'background') the object cut out:
    the background transparent, its edge pixels' alpha their estimated coverage"""
    source: str
    """'alpha' (the image has transparency), 'background' (no transparency, a plain border colour), or
    'none' (a busy border without transparency: nothing can be told apart; the mask is empty)"""
    background: tuple[int, int, int] | None = None
    """the plain background's colour (source 'background')"""
    warnings: list[str] = field(default_factory=list)


def find_object(rgba: np.ndarray) -> FoundObject:
    """An image (RGBA uint8 (H, W, 4), or any array :func:`as_rgba` takes) -> the object's pixels, by
    transparency or a plain background (see the module docstring for the rules).

    Without transparency the background is the border-connected region within the tolerance of the
    border's colour and becomes transparent; the object's edge pixels (next to the background) get an
    alpha, their estimated coverage -- their difference from the background over that of their most
    different 3x3 neighbour -- and the background's colour unmixed from them. The mask is alpha >= 128
    as for a transparent image, so a render and the same render flattened on white get the same box.
    """
    rgba = _rgba(rgba)
    alpha = rgba[..., 3]
    if (alpha < 255).any():
        mask = alpha >= ALPHA_THRESHOLD
        warnings = [] if mask.any() else ["no object: every pixel is (nearly) transparent"]
        return FoundObject(mask, rgba, "alpha", None, warnings)
    rgb = rgba[..., :3].astype(np.int16)
    border = _border(rgb)
    colour = np.median(border, axis=0)
    deviation = np.abs(border - colour).max(axis=1)
    least, most = BACKGROUND_TOLERANCE
    tolerance = min(most, least + 4.0 * float(np.median(deviation)))
    near = deviation <= tolerance
    if near.mean() < PLAIN_BORDER_SHARE:
        share = f"only {100 * near.mean():.0f} % of the border is one colour"
        empty = np.zeros(alpha.shape, bool)
        return FoundObject(empty, rgba, "none", None, [f"{BUSY_BACKGROUND} ({share})"])
    from scipy import ndimage  # here: the CLI imports this module to print its --help

    difference = np.abs(rgb - colour).max(axis=2)
    labels, _ = ndimage.label(difference <= tolerance)  # 4-connected
    outer = np.unique(_border(labels))
    background = np.isin(labels, outer[outer > 0])
    # An edge pixel (next to the background) is a blend of the object and the background: its coverage
    # is about its difference from the background over its most different neighbour's (inside the object).
    edge = ~background & ndimage.binary_dilation(background, structure=np.ones((3, 3), bool))
    peak = ndimage.maximum_filter(difference, size=3).astype(np.float64)
    coverage = np.where(edge, np.clip(difference / np.maximum(peak, 1.0), 0.0, 1.0), 1.0)
    coverage[background] = 0.0
    cut = rgba.copy()
    blend = np.clip((rgb - colour) / np.maximum(coverage, 1.0 / 255.0)[..., None] + colour, 0, 255)
    cut[..., :3] = np.where(edge[..., None], np.rint(blend), rgb).astype(np.uint8)  # the background unmixed
    cut[..., 3] = np.rint(coverage * 255.0).astype(np.uint8)
    cut[cut[..., 3] == 0] = 0  # transparent as the padding is: (0, 0, 0, 0)
    mask = cut[..., 3] >= ALPHA_THRESHOLD
    bg = tuple(int(round(c)) for c in colour)
    warnings = [] if mask.any() else [f"no object: the whole image is the background colour {bg}"]
    return FoundObject(mask, cut, "background", bg, warnings)


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of a bool mask's True pixels (right/bottom exclusive), or None."""
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if len(cols) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _downscale(rgba: np.ndarray, size: int) -> np.ndarray:
    """Square RGBA uint8 -> (size, size, 4), resampled with premultiplied alpha (no colour bleeding from
    transparent pixels), as the loader resizes (:func:`ifkd.data.loader.premultiplied`)."""
    arr = rgba.astype(np.float32) / 255.0
    alpha = arr[..., 3:4]
    premul = np.concatenate([arr[..., :3] * alpha, alpha], axis=-1)
    chans = [
        np.asarray(Image.fromarray(premul[..., c]).resize((size, size), Image.BILINEAR, reducing_gap=None))
        for c in range(4)
    ]
    out = np.stack(chans, axis=-1)
    a = np.clip(out[..., 3:4], 0.0, 1.0)
    rgb = np.where(a > 1e-6, out[..., :3] / np.maximum(a, 1e-6), 0.0)
    res = np.concatenate([np.clip(rgb, 0.0, 1.0), a], axis=-1)
    return np.rint(res * 255.0).astype(np.uint8)


def in_range(value: float, bounds: tuple[float, float]) -> bool:
    """``bounds[0] <= value <= bounds[1]`` (false for nan)."""
    return bool(bounds[0] <= value <= bounds[1])


def framed_size(side: int, ratio: float = TRAINING_FOREGROUND_RATIO) -> int:
    """Side (pixels) of the square canvas on which a box of longest side ``side`` fills ``ratio``."""
    return max(2, int(round(side / ratio)))


def recentred_origin(
    box: tuple[int, int, int, int], size: int, centre_offset: tuple[float, float] = TRAINING_CENTRE_OFFSET
) -> tuple[int, int]:
    """(left, top), input pixels, of the ``size`` canvas that puts the box's centre ``centre_offset`` box
    sides from the canvas centre (x right, y down)."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    left = int(round((x0 + x1) / 2.0 - centre_offset[0] * side - size / 2.0))
    top = int(round((y0 + y1) / 2.0 - centre_offset[1] * side - size / 2.0))
    return left, top


def always_framing_affine(alpha: np.ndarray) -> tuple[float, float, float] | None:
    """The normalised affine (s, dx, dy) by which ``frame_image(mode="always")`` moves a square image
    whose alpha channel is ``alpha`` (H, H) uint8: what was at u (in [-1, 1], ``align_corners=False``)
    lands at ``s * u + (dx, dy)`` of the framed image. None without an object (or for a non-square image).

    The training loader applies it (``data.aug_frame``) with the projection following it, so a model can
    be trained on exactly the framing that inference gives any picture -- the same canvas rule
    (:func:`framed_size`, :func:`recentred_origin`) as :func:`frame_image`."""
    h, w = alpha.shape[:2]
    box = bounding_box(alpha >= ALPHA_THRESHOLD)
    if box is None or h != w:
        return None
    size = framed_size(max(box[2] - box[0], box[3] - box[1]))
    left, top = recentred_origin(box, size)
    # u_out = 2 (x - left) / size - 1 with x = (u + 1) w / 2.
    return w / size, (w - 2.0 * left) / size - 1.0, (h - 2.0 * top) / size - 1.0


def frame_image(
    rgba: np.ndarray,
    foreground_ratio: float | None = None,
    *,
    mode: str = DEFAULT_FRAMING_MODE,
    centre_offset: tuple[float, float] | None = None,
    max_size: int = MAX_FRAME_SIZE,
) -> tuple[np.ndarray, FramingInfo]:
    """An image of one object -> (the same object in the training framing, RGBA uint8 (S, S, 4); info).

    ``rgba``: any uint8 image array (see :func:`as_rgba`; RGBA as :func:`ifkd.data.format.load_image`
    returns it). ``mode``: ``"auto"`` keeps the image centre and the object's size where they lie within
    the training ranges and changes only the rest, ``"always"`` recentres and rescales every picture (see
    the module docstring). ``foreground_ratio``: the object's bounding box's longest side as a fraction of
    the output's width when it is rescaled (default :data:`TRAINING_FOREGROUND_RATIO`, measured on our
    renders); given, it is always applied. ``centre_offset``: where the box's centre goes relative to the
    canvas centre when it is recentred, in units of the box's longest side (x right, y down; default
    :data:`TRAINING_CENTRE_OFFSET`). When no object can be found (a busy background without transparency,
    a blank image) the image comes back unchanged (as RGBA) with ``info.reframed`` False and the reason in
    ``info.warnings``.
    """
    if mode not in FRAMING_MODES:
        raise ValueError(f"framing mode {mode!r}: choose one of {', '.join(FRAMING_MODES)}")
    rgba = _rgba(rgba)
    ratio = TRAINING_FOREGROUND_RATIO if foreground_ratio is None else float(foreground_ratio)
    if not 0.0 < ratio <= 1.0:  # also false for nan
        raise ValueError(f"foreground ratio {ratio:g}: must be in (0, 1] (the object's share of the width)")
    off_x, off_y = TRAINING_CENTRE_OFFSET if centre_offset is None else centre_offset
    h, w = rgba.shape[:2]
    found = find_object(rgba)
    info = FramingInfo(
        False,
        found.source,
        (w, h),
        foreground_ratio=ratio,
        background=found.background,
        mode=mode,
        warnings=found.warnings,
    )
    box = bounding_box(found.mask)
    if box is None:
        return rgba, info
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    if x0 == 0 or y0 == 0 or x1 == w or y1 == h:
        info.warnings.append("the object touches the image's edge: it may be cut off (framed as seen)")
    work = found.rgba  # a plain background became transparency: the model's own background
    # Measured in the square frame of side max(w, h) around the image centre (the canvas when both are kept).
    frame = max(w, h)
    object_ratio = side / frame
    offset = (((x0 + x1) / 2.0 - w / 2.0) / side, ((y0 + y1) / 2.0 - h / 2.0) / side)
    auto = mode == "auto"
    keep_centre = (
        auto and in_range(offset[0], TRAINING_OFFSET_X_RANGE) and in_range(offset[1], TRAINING_OFFSET_Y_RANGE)
    )
    keep_size = auto and foreground_ratio is None and in_range(object_ratio, TRAINING_RATIO_RANGE)
    size, ratio = (frame, object_ratio) if keep_size else (framed_size(side, ratio), ratio)
    # Canvas origin (input pixels): its centre on the image centre (kept), or where it puts the box centre
    # (off_x, off_y) * side from the canvas centre (recentred).
    if keep_centre:
        left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    else:
        left, top = recentred_origin(box, size, (off_x, off_y))
    canvas = np.zeros((size, size, 4), np.uint8)
    sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + size, w), min(top + size, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = work[sy0:sy1, sx0:sx1]
    scale = 1.0
    if size > max_size:
        canvas, scale = _downscale(canvas, max_size), max_size / size
    info.reframed = True
    info.bbox, info.crop = box, (left, top, left + size, top + size)
    info.scale, info.output_size = scale, int(canvas.shape[0])
    info.foreground_ratio, info.object_ratio = ratio, object_ratio
    info.kept_centre, info.kept_size, info.offset = keep_centre, keep_size, offset
    return canvas, info
