"""Data: InkML files -> strokes -> images -> prepared caches.

The public names of the data modules are re-exported here.
"""

from im2latex_encoder.data.cache import (
    CACHE_FORMAT_VERSION,
    PreparedDataset,
    crohme_source_hash,
    hash_json,
    load_if_current,
    load_prepared,
    save_prepared,
)
from im2latex_encoder.data.crohme import (
    SKIP_REASONS,
    CrohmeSample,
    CrohmeScan,
    GroundTruth,
    SkipReport,
    list_crohme_files,
    read_ground_truth,
    scan_crohme_folder,
)
from im2latex_encoder.data.crohme_preparer import prepare_crohme
from im2latex_encoder.data.errors import CacheError, DataError, GroundTruthError, InkMLError
from im2latex_encoder.data.ink import (
    InkAugment,
    InkBatches,
    InkDataset,
    load_ink,
    prepare_crohme_ink,
    save_ink,
)
from im2latex_encoder.data.inkml import (
    MAX_ABS_COORDINATE,
    MAX_FILE_BYTES,
    MAX_POINTS_PER_TRACE,
    MAX_TOTAL_POINTS,
    MAX_TRACES,
    InkMLDocument,
    InkSymbol,
    read_inkml,
    read_symbol_strokes,
)
from im2latex_encoder.data.render import RenderSettings, render_strokes, render_strokes_uint8

__all__ = [
    "CACHE_FORMAT_VERSION",
    "PreparedDataset",
    "crohme_source_hash",
    "hash_json",
    "load_if_current",
    "load_prepared",
    "prepare_crohme",
    "save_prepared",
    "SKIP_REASONS",
    "CrohmeSample",
    "CrohmeScan",
    "GroundTruth",
    "SkipReport",
    "list_crohme_files",
    "read_ground_truth",
    "scan_crohme_folder",
    "CacheError",
    "DataError",
    "GroundTruthError",
    "InkMLError",
    "InkAugment",
    "InkBatches",
    "InkDataset",
    "load_ink",
    "prepare_crohme_ink",
    "save_ink",
    "MAX_ABS_COORDINATE",
    "MAX_FILE_BYTES",
    "MAX_POINTS_PER_TRACE",
    "MAX_TOTAL_POINTS",
    "MAX_TRACES",
    "InkMLDocument",
    "InkSymbol",
    "read_inkml",
    "read_symbol_strokes",
    "RenderSettings",
    "render_strokes",
    "render_strokes_uint8",
]
