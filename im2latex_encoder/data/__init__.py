"""Data: InkML files -> strokes -> images -> prepared caches.

The public names of the data modules are re-exported here.
"""

from im2latex_encoder.data.cache import (
    CACHE_FORMAT_VERSION,
    PreparedDataset,
    hash_json,
    load_if_current,
    load_prepared,
    save_prepared,
)
from im2latex_encoder.data.errors import CacheError, DataError, GroundTruthError, InkMLError
