"""Formula images as stroke tokens: each connected component of ink becomes one token.

An image has no pen order, so `StrokeRecognizer.recognize_images` reads it by its connected
components instead of its strokes: each component is thinned to its one-pixel skeleton
(scikit-image's `skeletonize`), and the skeleton's neighbouring pixels, joined as short
segments, are the polylines the stroke drawing draws again at the model's own scale. The
typical symbol size is estimated from the components exactly as from strokes
(`reference_size`), so a formula photographed large or small reads the same. Components are
ordered left to right (by their left edge, then their top), the order most strokes of a
formula are written in. Where no two strokes touch, the components are the strokes and the
tokens are the ink's own. Where symbols touch, one component holds several of them;
``split_junctions=True`` cuts each component's skeleton where its lines meet instead, into
pieces closer to the strokes (a model must be trained on images cut that way to read them).
``symbol_cutter=`` (a `SymbolCutter`, a small net trained on the ink's trace groups) cuts
each component only where it predicts that two symbols meet (`cut_components`), and the
model reads the parts as it reads whole components. ``order="layout"`` puts the tokens in the
order a caption reads the layout instead of left to right (`layout_order`: a fraction's bar
before its numerator and denominator, as ``\\frac`` comes first); a model reads images in the
order its image draws were trained in (`StrokeRecognizer.image_order`).

Example:
>>> import numpy as np
>>> image = np.zeros((40, 80), np.uint8)
>>> image[10:30, 10:13] = 255   # a stroke
>>> image[18:21, 40:70] = 255   # another, to its right
>>> tokens = image_tokens(image)
>>> len(tokens)
2
>>> [round(float(np.concatenate(t)[:, 0].min())) for t in tokens]
[11, 40]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter

#: Components with fewer ink pixels than this are taken for specks and dropped.
MIN_COMPONENT_PIXELS = 3
#: The orders `image_tokens` can put an image's tokens in (`layout_order`).
TOKEN_ORDERS = ("left-to-right", "layout")
_NEIGHBOURS = ((1, 0), (0, 1), (1, 1), (-1, 1))  # (dx, dy): each pair of 8-neighbours once


def image_tokens(
    image: np.ndarray,
    *,
    threshold: int = 128,
    split_junctions: bool = False,
    symbol_cutter: SymbolCutter | None = None,
    order: str = "left-to-right",
) -> list[list[np.ndarray]]:
    """An expression image's ink as tokens (left to right by default): its strokes as shown.

    Each connected component of ink is thinned to its one-pixel skeleton (scikit-image's
    `skeletonize`) and is one token. With `split_junctions`, each skeleton is instead cut
    where its lines meet: symbols that touch (a minus whose end runs into a ``1``) become
    separate tokens, and a line that runs straight through a crossing stays one (see
    `_pieces`). A model reads images as its image draws were cut in training
    (`StrokeRecognizer.split_junctions`).

    Args:
        image: uint8 ``(H, W)``, ink 255 on background 0 (`expression_ink`'s).
        threshold: int. Pixels at or above it are ink.
        split_junctions: bool. Cut each component where its lines meet (True) or read each
            component whole (False).
        symbol_cutter: `SymbolCutter` or None. Cut each component where it predicts that
            two symbols meet (`cut_components`), each part thinned alone; not with
            `split_junctions`.
        order: one of `TOKEN_ORDERS`. ``"left-to-right"``: by each token's left edge, then
            its top. ``"layout"``: as a caption reads the layout (`layout_order`: a fraction
            bar before its numerator and denominator).

    Returns:
        One token per piece (per component without `split_junctions`), in `order`: a list
        of polylines (float ``(n, 2)`` arrays of X, Y in pixels),
        the first a single point at its leftmost skeleton pixel and the last one at its
        rightmost (where a stroke would start and end).

    Raises:
        ValueError: for an image that is not 2-D uint8, or that has no ink.

    Example:
    >>> image = np.zeros((20, 20), np.uint8); image[5:15, 9:11] = 255
    >>> token = image_tokens(image)[0]
    >>> len(token) > 2, token[0].shape
    (True, (1, 2))
    >>> cross = np.zeros((60, 60), np.uint8)
    >>> cross[28:31, 5:55] = 255; cross[5:55, 28:31] = 255   # two lines crossing: two tokens
    >>> len(image_tokens(cross)), len(image_tokens(cross, split_junctions=True))
    (1, 2)
    """
    pieces = _image_pixels(image, threshold, split_junctions, symbol_cutter)
    return [_polylines(pieces[i]) for i in _order_of(pieces, order)]


def _image_pixels(image, threshold: int, split_junctions: bool, symbol_cutter) -> list:
    """Each token's skeleton pixels (``(n, 2)`` Y, X), left to right, however the image is
    cut: what `image_tokens` and `component_owners` share."""
    if symbol_cutter is not None:
        if split_junctions:
            raise ValueError(
                "Cut an image where its lines meet (split_junctions) or where a symbol cutter "
                "says symbols touch, not both. Received: split_junctions=True and a "
                "symbol_cutter"
            )
        return _cut_pixels(image, threshold, symbol_cutter)
    return _token_pixels(image, threshold, split_junctions)


def _order_of(pieces: list, order: str) -> list[int]:
    """Indices of `pieces` (left to right, each ``(n, 2)`` Y, X pixels) in `order`."""
    checked_token_order(order)
    if order == "left-to-right" or len(pieces) < 3:  # stacking takes three tokens
        return list(range(len(pieces)))
    boxes = [[p[:, 1].min(), p[:, 0].min(), p[:, 1].max(), p[:, 0].max()] for p in pieces]
    return layout_order(boxes)


def stroke_layout_order(strokes: Sequence[np.ndarray]) -> list[int]:
    """The strokes' indices in the order `image_tokens(..., order="layout")` gives an image's
    tokens: left to right by left edge, then top, then `layout_order` over their boxes.

    For training a model on ink in an image's order (`train_strokes`' ``layout_draws``): an
    image has no pen order, and a model that reads only the writer's order reads ink put
    in the image's order about five points worse (CROHME 2016 test, `docs/formulas.md`).

    Args:
        strokes: each an ``(n, 2)`` array of X, Y (Y down).

    Returns:
        A permutation of ``range(len(strokes))``.

    Example:
    >>> bar, numerator, denominator = (np.array([[0., 5.], [10., 5.]]),
    ...     np.array([[5., 0.], [5., 3.]]), np.array([[5., 7.], [5., 10.]]))
    >>> stroke_layout_order([numerator, bar, denominator])   # the bar first
    [1, 0, 2]
    """
    boxes = np.array(
        [[*np.min(s, axis=0), *np.max(s, axis=0)] for s in (np.asarray(s, float) for s in strokes)]
    ).reshape(-1, 4)
    by_left = np.lexsort((boxes[:, 1], boxes[:, 0]))
    return [int(by_left[i]) for i in layout_order(boxes[by_left])]


def checked_token_order(order: str) -> str:
    """`order` if it is one of `TOKEN_ORDERS`, else a ValueError that lists them.

    Example:
    >>> checked_token_order("layout")
    'layout'
    >>> checked_token_order("right-to-left")
    Traceback (most recent call last):
    ...
    ValueError: `order` must be one of ('left-to-right', 'layout'). Received: 'right-to-left'
    """
    if order not in TOKEN_ORDERS:
        raise ValueError(f"`order` must be one of {TOKEN_ORDERS}. Received: {order!r}")
    return order


def layout_order(boxes) -> list[int]:
    """The order a LaTeX caption reads tokens laid out in `boxes`: indices into `boxes`.

    An image has no pen order. Left to right puts a fraction's numerator or denominator
    before its bar, where the caption writes ``\\frac`` (the bar) first. This order walks the
    tokens in the order given (left to right, as `image_tokens` finds them), but a token that
    has others wholly above and below it within its width (a fraction bar, a sum's sign with
    its limits) comes first, then what lies above and then below it for a bar
    (``\\frac { num } { den }``), below and then above for any other token
    (``\\sum _ { i } ^ { n }``), each part ordered the same way, recursively.
    Where nothing is stacked, the order is left to right.

    Args:
        boxes: ``(n, 4)`` floats, each token's ``(x0, y0, x1, y1)`` (Y down), left to right.

    Returns:
        A permutation of ``range(n)``.

    Example:
    >>> # a numerator 0, a bar 1 below it, a denominator 2 below that, then a plus 3
    >>> layout_order([[2, 0, 8, 6], [0, 8, 10, 9], [2, 11, 8, 17], [12, 6, 16, 10]])
    [1, 0, 2, 3]
    >>> layout_order([[0, 0, 4, 4], [6, 0, 10, 4]])   # side by side: left to right
    [0, 1]
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    centres = (boxes[:, 0] + boxes[:, 2]) / 2

    def ordered(indices: list[int]) -> list[int]:
        remaining = sorted(indices)  # in the order given: left to right
        result: list[int] = []
        while remaining:
            first = remaining[0]
            best = None  # (width, stacking token, above, below)
            for candidate in remaining:
                x0, y0, x1, y1 = boxes[candidate]
                if candidate != first and not x0 <= centres[first] <= x1:
                    continue
                margin = 0.1 * (x1 - x0)
                middle = (y0 + y1) / 2
                inside = [
                    other
                    for other in remaining
                    if other != candidate
                    and x0 <= centres[other] <= x1
                    and boxes[other, 0] >= x0 - margin
                    and boxes[other, 2] <= x1 + margin
                ]
                above = [other for other in inside if boxes[other, 3] <= middle]
                below = [
                    other for other in inside if boxes[other, 1] >= middle and other not in above
                ]
                if above and below and (best is None or x1 - x0 > best[0]):
                    best = (x1 - x0, candidate, above, below)
            if best is None:
                result.append(first)
                remaining.remove(first)
                continue
            _, stacking, above, below = best
            x0, y0, x1, y1 = boxes[stacking]
            bar = x1 - x0 > 2.5 * max(1.0, y1 - y0)
            result.append(stacking)
            for part in (above, below) if bar else (below, above):
                result += ordered(part)
            taken = {stacking, *above, *below}
            remaining = [i for i in remaining if i not in taken]
        return result

    return ordered(list(range(len(boxes))))


def _cut_pixels(image, threshold: int, symbol_cutter) -> list[np.ndarray]:
    """Each token's skeleton pixels (``(n, 2)`` Y, X) once `symbol_cutter` has cut the ink:
    each part is thinned alone, so a part's skeleton never runs into its neighbour's."""
    from skimage.morphology import skeletonize

    image = np.asarray(image)
    boundary = symbol_cutter.boundaries(image, threshold=threshold)  # checks the image
    skeletons = []
    for pixels in cut_components(image, boundary, symbol_cutter.threshold, threshold=threshold):
        low = pixels.min(axis=0)
        mask = np.zeros(tuple(pixels.max(axis=0) - low + 3), bool)  # a pixel of margin
        mask[tuple((pixels - low + 1).T)] = True
        thin = np.argwhere(skeletonize(mask))
        skeletons.append(thin + low - 1 if len(thin) else pixels.mean(axis=0, keepdims=True))
    return skeletons


def cut_components(
    image: np.ndarray, boundary: np.ndarray, cut_threshold: float, *, threshold: int = 128
) -> list[np.ndarray]:
    """Each token's ink pixels (``(n, 2)`` Y, X) once the pixels at `boundary` are cut.

    The ink without its pixels at or above `cut_threshold` falls into parts; parts smaller
    than 0.4 of a pen's square are dropped; each ink pixel joins its nearest part within its own
    component (a component without a part stays whole). Tokens are ordered by left edge,
    then top, as `image_tokens` orders them.

    Example:
    >>> image = np.zeros((20, 40), np.uint8); image[8:12, 2:38] = 255
    >>> boundary = np.zeros(image.shape, np.float32); boundary[:, 19:21] = 1.0
    >>> [int(p[:, 1].min()) for p in cut_components(image, boundary, 0.5)]
    [2, 20]
    """
    import cv2
    from skimage.morphology import skeletonize

    ink = np.asarray(image) >= threshold
    labels, kept = _components(ink)
    is_kept = np.zeros(int(labels.max()) + 1, bool)
    is_kept[kept] = True
    ink &= is_kept[labels]
    core = ink & (np.asarray(boundary) < cut_threshold)
    count, parts, stats, _ = cv2.connectedComponentsWithStats(core.astype(np.uint8), connectivity=8)
    pen = max(1.0, ink.sum() / max(1, skeletonize(ink).sum()))  # ink area over skeleton length
    small = stats[:, cv2.CC_STAT_AREA] < max(3.0, 0.4 * pen * pen)
    small[0] = True
    parts = np.where(small[parts], 0, parts)
    grown = nearest_labels(parts)  # each ink pixel takes its nearest part's label
    # a token is a (component, part) pair: parts never join across components
    token = np.where(ink, labels.astype(np.int64) * (count + 1) + grown, 0)
    pieces = [np.argwhere(token == value) for value in np.unique(token[token > 0])]
    return sorted(pieces, key=lambda pixels: (pixels[:, 1].min(), pixels[:, 0].min()))


def nearest_labels(labels: np.ndarray) -> np.ndarray:
    """Every pixel given the label of its nearest labelled (non-zero) pixel: int64, same shape.

    OpenCV's distance transform with pixel labels (L2, 5x5 mask) finds each pixel's nearest
    labelled pixel; an image without a label comes back all zeros. `cut_components` gives the
    cut pixels back to their nearest part with it, and `boundary_targets` gives anti-aliased
    ink the symbol of its nearest stroke.

    Example:
    >>> nearest_labels(np.array([[1, 0, 0, 0, 2]], np.int32)).tolist()
    [[1, 1, 1, 2, 2]]
    >>> nearest_labels(np.zeros((1, 3), np.int32)).tolist()
    [[0, 0, 0]]
    """
    import cv2

    labels = np.asarray(labels)
    if not labels.any():
        return np.zeros(labels.shape, np.int64)
    _, nearest = cv2.distanceTransformWithLabels(
        (labels == 0).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    ys, xs = np.nonzero(labels)
    lookup = np.zeros(int(nearest.max()) + 1, np.int64)
    lookup[nearest[ys, xs]] = labels[ys, xs]
    return lookup[nearest]


def _token_pixels(image, threshold: int, split_junctions: bool) -> list[np.ndarray]:
    """Each token's skeleton pixels (``(n, 2)`` Y, X), left to right, for an image read whole
    or cut at its junctions (`_image_pixels` adds the symbol cutter's cut)."""
    from skimage.morphology import skeletonize

    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(
            "An expression image must be uint8 (H, W), ink 255 on 0. Received: "
            f"{image.dtype} of shape {image.shape}"
        )
    binary = image >= threshold
    labels, kept = _components(binary)
    if not kept:
        raise ValueError("The image has no ink to read (no pixel at or above the threshold)")
    is_kept = np.zeros(int(labels.max()) + 1, bool)
    is_kept[kept] = True
    binary &= is_kept[labels]  # without the specks
    skeleton = skeletonize(binary)
    if split_junctions:
        return _pieces(binary, labels, kept, skeleton)
    pieces = []
    for label in kept:
        pixels = np.argwhere(skeleton & (labels == label))
        if not len(pixels):  # thinning left nothing: the component's centre
            pixels = np.argwhere(labels == label).mean(axis=0, keepdims=True)
        pieces.append(pixels)
    return pieces


def _polylines(pixels: np.ndarray) -> list[np.ndarray]:
    """A piece's skeleton pixels (``(n, 2)`` Y, X) as a token: its leftmost point, a segment
    per pair of 8-neighbouring pixels, its rightmost point (all X, Y)."""
    points = pixels[:, ::-1].astype(np.float64)
    left = points[np.lexsort((points[:, 1], points[:, 0]))[0]]
    right = points[np.lexsort((points[:, 1], -points[:, 0]))[0]]
    segments = []
    if len(pixels) > 1:
        # one pass per neighbour direction: the pixel pairs of this piece that touch
        codes = (pixels[:, 0].astype(np.int64) << 32) + pixels[:, 1].astype(np.int64)
        known = np.sort(codes)
        for dx, dy in _NEIGHBOURS:
            target = codes + (np.int64(dy) << 32) + dx
            found = np.searchsorted(known, target)
            linked = (found < len(known)) & (known[np.minimum(found, len(known) - 1)] == target)
            for x, y in points[linked]:
                segments.append(np.array([[x, y], [x + dx, y + dy]], np.float64))
    return [left[None], *(segments or [points]), right[None]]


#: Two lines at a junction continue each other when their directions are at least this far
#: from each other: cosine at most -0.8, about 143 degrees (a straight line is 180).
CONTINUATION_COSINE = -0.8
_RING = np.ones((3, 3), np.float32)
_RING[1, 1] = 0


def _pieces(binary, labels, kept, skeleton) -> list[np.ndarray]:
    """The skeleton cut where its lines meet: each piece's pixels (``(n, 2)`` Y, X), ordered
    by left edge, then top.

    Written here, not taken from a skeleton-graph library (`skan`), because it is a few
    array passes over OpenCV's connected components and adds no dependency.

    A junction is a run of skeleton pixels with three or more skeleton neighbours; the
    skeleton without its junctions falls into branches. At each junction, branches whose
    directions (from the junction to their pixels within two pen widths) are nearly opposite
    (`CONTINUATION_COSINE`) pair up, most opposite first: the two halves of a line that runs
    through. A junction is cut into its pairs and lone branches where that cut, made alone,
    separates the skeleton (a loop keeps its junctions whole); all such cuts are then made
    together. Each piece keeps the junction pixels it touches, so pieces meet where the ink
    met. Components the thinning left without a pixel are kept whole.
    """
    import cv2

    def count(mask):
        return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)

    pen = max(1.0, binary.sum() / max(1, skeleton.sum()))  # ink area over skeleton length
    radius = max(3.0, 2.0 * pen)
    neighbours = cv2.filter2D(
        skeleton.astype(np.float32), -1, _RING, borderType=cv2.BORDER_CONSTANT
    )
    junction = skeleton & (neighbours >= 3)
    junctions, junction_labels = count(junction)
    branches, branch_labels = count(skeleton & ~junction)
    # Which branches touch each junction: pairs (junction pixel, 8-neighbour branch pixel).
    height, width = skeleton.shape
    ys, xs = np.nonzero(junction_labels)
    touching: set[tuple[int, int]] = set()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            y2, x2 = np.clip(ys + dy, 0, height - 1), np.clip(xs + dx, 0, width - 1)
            found = branch_labels[y2, x2]
            touching.update(
                zip(junction_labels[ys, xs][found > 0].tolist(), found[found > 0].tolist())
            )
    incident: list[list[int]] = [[] for _ in range(junctions)]
    for j, b in sorted(touching):
        incident[j].append(b)
    by, bx = np.nonzero(branch_labels)
    order = np.argsort(branch_labels[by, bx], kind="stable")
    by, bx = by[order], bx[order]
    starts = np.searchsorted(branch_labels[by, bx], np.arange(branches + 1))
    branch_pixels = [np.stack([by[a:b], bx[a:b]], axis=1) for a, b in zip(starts[:-1], starts[1:])]
    junction_pixels = [np.argwhere(junction_labels == j) for j in range(junctions)]

    def groups_at(j: int) -> list[list[int]]:
        centre = junction_pixels[j].mean(axis=0)
        directions = {}
        for b in incident[j]:
            pixels = branch_pixels[b]
            distance = np.hypot(*(pixels - centre).T)
            near = distance <= radius
            if not near.any():
                near = distance <= distance.min() + 1
            dy, dx = pixels[near].mean(axis=0) - centre
            step = np.array([dx, dy])  # contiguous (X, Y): the cosines below round as trained
            norm = np.linalg.norm(step)
            if norm > 0:  # a branch without a direction (a loop around it) goes alone
                directions[b] = step / norm
        with_direction = list(directions)
        pairs = sorted(
            (float(directions[a] @ directions[c]), a, c)
            for i, a in enumerate(with_direction)
            for c in with_direction[i + 1 :]
        )
        used: set = set()
        groups = []
        for cosine, a, c in pairs:
            if cosine > CONTINUATION_COSINE:
                break
            if a not in used and c not in used:
                used.update((a, c))
                groups.append([a, c])
        return groups + [[b] for b in with_direction if b not in used]

    def groups_of(j: int, cuts: dict) -> list[list[int]]:
        """Junction `j`'s branches as it joins them: its groups where cut, else all together."""
        return cuts.get(j) or [incident[j]]

    def joined(cuts: dict) -> dict:
        """Branches joined through the junctions (each cut one by its groups): root -> branches."""
        parent = list(range(branches))

        def root(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for j in range(1, junctions):
            for group in groups_of(j, cuts):
                for b in group[1:]:
                    parent[root(b)] = root(group[0])
        parts: dict = {}
        for b in range(1, branches):
            parts.setdefault(root(b), []).append(b)
        return parts

    whole = len(joined({}))
    cuts = {}
    for j in range(1, junctions):
        if len(incident[j]) >= 3:
            groups = groups_at(j)
            if len(groups) > 1 and len(joined({j: groups})) > whole:
                cuts[j] = groups
    # Junction pixels go with every piece holding a branch the junction (or its group) joins.
    touches: dict = {}
    for j in range(1, junctions):
        for group in groups_of(j, cuts):
            for b in group:
                touches.setdefault(b, []).append(j)
    pieces = []
    for members in joined(cuts).values():
        parts = [branch_pixels[b] for b in members]
        parts += [junction_pixels[j] for b in members for j in touches.get(b, [])]
        pieces.append(np.unique(np.concatenate(parts), axis=0))
    pieces += [junction_pixels[j] for j in range(1, junctions) if not incident[j]]
    covered = np.zeros(labels.max() + 1, bool)
    for pixels in pieces:
        covered[labels[pixels[:, 0], pixels[:, 1]]] = True
    pieces += [np.argwhere(labels == label) for label in kept if not covered[label]]
    return sorted(pieces, key=lambda pixels: (pixels[:, 1].min(), pixels[:, 0].min()))


def _components(binary: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """8-connected components: the label image and the labels kept in token
    order (specks of fewer than `MIN_COMPONENT_PIXELS` dropped; left edge, then top)."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=8
    )
    kept = [
        label for label in range(1, count) if stats[label, cv2.CC_STAT_AREA] >= MIN_COMPONENT_PIXELS
    ]
    kept.sort(key=lambda label: (stats[label, cv2.CC_STAT_LEFT], stats[label, cv2.CC_STAT_TOP]))
    return labels, kept


def component_owners(
    image: np.ndarray,
    owner_image: np.ndarray,
    *,
    threshold: int = 128,
    split_junctions: bool = False,
    symbol_cutter: SymbolCutter | None = None,
    order: str = "left-to-right",
) -> np.ndarray:
    """Which stroke drew each of the image's tokens (`image_tokens`' order), or -1.

    Training labels for tokens read from a drawn formula: each token takes the stroke that
    drew most of its pixels in `owner_image` (`draw_expression_image(..., owners=True)`): of
    its skeleton pixels for a piece (`split_junctions`), of all its pixels for a whole
    component. So a token carries that stroke's symbol, and two tokens of one symbol (the
    bars of ``=``, the halves of a ``+``) are known to belong together.

    Args:
        image: uint8 ``(H, W)``, ink 255 on 0, as `image_tokens` reads it.
        owner_image: int ``(H, W)``: 0 where no stroke drew, ``k + 1`` where stroke ``k`` did.
        threshold: int. As `image_tokens`.
        split_junctions: bool. As `image_tokens`: the tokens are its pieces (True) or its
            whole components (False).
        symbol_cutter: `SymbolCutter` or None. As `image_tokens`: the tokens are the parts
            it cuts (each takes the stroke that drew most of its skeleton pixels).
        order: one of `TOKEN_ORDERS`, as `image_tokens`.

    Returns:
        int64 ``(tokens,)``: a stroke index per token, -1 where no stroke's pixel lies in it.

    Raises:
        ValueError: for images of different shapes, or an image without ink.

    Example:
    >>> strokes = [np.array([[0., 0.], [0., 10.]]), np.array([[8., 0.], [8., 10.]])]
    >>> image, owners = draw_expression_image(strokes[::-1], 40, owners=True)
    >>> component_owners(image, owners).tolist()   # left to right: the second stroke first
    [1, 0]
    """
    image, owner_image = np.asarray(image), np.asarray(owner_image)
    if image.shape != owner_image.shape or image.ndim != 2:
        raise ValueError(
            "`image` and `owner_image` must be 2-D and of one shape. Received: "
            f"{image.shape} and {owner_image.shape}"
        )
    strokes = int(owner_image.max()) + 1
    if split_junctions or symbol_cutter is not None:
        # each piece: the stroke that drew most of its skeleton pixels
        pieces = _image_pixels(image, threshold, split_junctions, symbol_cutter)
        pieces = [pieces[i] for i in _order_of(pieces, order)]
        votes = np.stack(
            [
                np.bincount(owner_image[y, x].astype(np.int64), minlength=strokes)
                for y, x in (pixels.astype(np.int64).T for pixels in pieces)
            ]
        )[:, 1:]
    else:  # whole components need no skeleton: one joint count of (component, stroke)
        labels, kept = _components(image >= threshold)
        if not kept:
            raise ValueError("The image has no ink to read (no pixel at or above the threshold)")
        both = (labels > 0) & (owner_image > 0)
        votes = np.bincount(
            labels[both].astype(np.int64) * strokes + owner_image[both].astype(np.int64),
            minlength=(int(labels.max()) + 1) * strokes,
        ).reshape(-1, strokes)[kept][:, 1:]
        if checked_token_order(order) != "left-to-right":
            votes = votes[_order_of(_token_pixels(image, threshold, False), order)]
    return np.where(votes.max(axis=1) > 0, votes.argmax(axis=1), -1).astype(np.int64)


def draw_expression_image(
    strokes,
    symbol_size: float,
    *,
    line_width: float | None = None,
    padding: int = 8,
    owners: bool = False,
) -> Any:
    """Draw an expression's strokes as a formula image: uint8 ``(H, W)``, ink 255 on 0.

    The typical symbol (estimated from the strokes, `reference_size`) is `symbol_size` pixels
    and the pen `line_width` pixels (default: a twelfth of it): a formula written on paper and
    photographed at that scale, for reading images at several scales. With `owners`, also
    which stroke drew each pixel: uint16 ``(H, W)``, ``k + 1`` for stroke ``k`` (the later
    stroke where two cross), 0 for none; `component_owners` reads it.

    Example:
    >>> image = draw_expression_image([np.array([[0., 0.], [0., 10.]]),
    ...                                np.array([[8., 0.], [8., 10.]])], 40)
    >>> image.dtype, image.shape[0] > 40, int(image.max())
    (dtype('uint8'), True, 255)
    """
    import cv2

    from im2latex_encoder.recognizer.stroke_tokens import normalize_expression

    units = normalize_expression(strokes)
    width = max(1, int(round(line_width if line_width is not None else symbol_size / 12)))
    every = np.concatenate([part for parts in units for part in parts])
    high = every.max(axis=0) * symbol_size
    shape = (
        int(np.ceil(high[1])) + 2 * padding + width,
        int(np.ceil(high[0])) + 2 * padding + width,
    )
    image = np.zeros(shape, np.uint8)
    shift = 4
    offset = padding + width / 2
    polylines = [
        np.rint((part * symbol_size + offset) * (1 << shift)).astype(np.int32)
        for parts in units
        for part in parts
    ]
    cv2.polylines(image, polylines, False, 255, width, cv2.LINE_AA, shift)
    for line in polylines:  # a one-point stroke (a dot) is drawn as a filled circle
        if len(line) == 1:
            cv2.circle(
                image,
                tuple(int(v) for v in line[0]),
                max(1, width // 2) << shift,
                255,
                -1,
                cv2.LINE_AA,
                shift,
            )
    if not owners:
        return image
    # Drawn again without anti-aliasing, each stroke in its own value: pixel ownership.
    owner_image = np.zeros(shape, np.uint16)
    stroke_of_line = [k for k, parts in enumerate(units, start=1) for _ in parts]
    for index, line in zip(stroke_of_line, polylines):
        if len(line) == 1:
            cv2.circle(
                owner_image,
                tuple(int(v) for v in line[0]),
                max(1, width // 2) << shift,
                index,
                -1,
                cv2.LINE_8,
                shift,
            )
        else:
            cv2.polylines(owner_image, [line], False, index, width, cv2.LINE_8, shift)
    return image, owner_image
