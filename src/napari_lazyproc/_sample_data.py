"""npe2 sample data: a synthetic light-sheet time series, large (200 GB virtual) and small."""

from __future__ import annotations

from ._layer_data import LayerData, image_layer_data
from ._reader import watch_viewer
from .synthetic import LARGE, SMALL, lightsheet


def lightsheet_large() -> list[LayerData]:
    """T=100, Z=256, Y=X=2048 uint16, generated plane by plane as it is viewed."""
    return watch_viewer(image_layer_data(lightsheet(LARGE)))


def lightsheet_small() -> list[LayerData]:
    """T=10, Z=64, Y=X=256: the same generator, for quick looks and tests."""
    return watch_viewer(image_layer_data(lightsheet(SMALL, levels=1)))
