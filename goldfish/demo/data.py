"""The demo's data: scikit-learn's bundled digits, exported as one npz with strict metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from goldfish.fsutil import atomic_write

DESCRIPTION = (
    "scikit-learn's bundled handwritten digits (UCI optdigits test set): 1797 grayscale 8x8 images "
    "flattened to 64 pixel intensities 0-16, with their digit labels 0-9."
)


def export_digits(path: Path) -> dict[str, Any]:
    """Write ``images`` (float32 [n, 64]) and ``labels`` (int64 [n]) to ``path``; return the metadata
    document register_source needs."""
    import io

    import numpy as np

    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # the demo extra
        from goldfish.errors import ConfigError

        raise ConfigError(
            "scikit-learn is not installed, and the demo's data comes from it.",
            fix="pip install 'goldfish-ml[demo]' (make demo does this for you).",
        ) from exc

    bunch = load_digits()
    images = np.asarray(bunch.data, dtype=np.float32)
    labels = np.asarray(bunch.target, dtype=np.int64)
    buf = io.BytesIO()
    np.savez(buf, images=images, labels=labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.getvalue())
    n = len(labels)
    return {
        "schema_version": 1,
        "description": DESCRIPTION,
        "source": {
            "format": "npz",
            "size_bytes": path.stat().st_size,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "schema": {
            "kind": "tensor",
            "arrays": {
                "images": {
                    "role": "features", "shape": [n, 64], "dtype": "float32",
                    "feature_names": {"kind": "pattern", "template": "pixel_{i}", "start": 0, "count": 64,
                                      "sample": ["pixel_0", "pixel_1", "pixel_63"]},
                },
                "labels": {
                    "role": "labels", "shape": [n], "dtype": "int64",
                    "feature_names": {"kind": "pattern", "template": "image_{i}", "start": 0, "count": n,
                                      "sample": ["image_0", "image_1"]},
                },
            },
            "primary_array": "images",
        },
    }
