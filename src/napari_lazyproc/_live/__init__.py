"""Display arrays that never block the viewer: a missing region is computed in the background.

napari slices layers on the main thread. A ``LiveArray`` answers each slice at once: with
the values when they are ready (or cached), otherwise with a placeholder (the previous
values of that region, or zeros) while a background thread computes the region. When it
is done, ``on_ready`` is called (from that thread) and the GUI refreshes the layer, which
then finds the values. Asking for another region, or replacing the array (a parameter
changed), cancels the work for the old one: queued work never starts, and running work
stops before its next tile.

Frames ahead (playback): each state watches how its slider moves. Stepping one way
computes the next planes that way while idle, more of them the longer it goes on; while
napari plays an axis (``LiveState.play``, set by the GUI), the next frames in the play
direction are read or computed at once, nearest first, as far as the prefetch budget
(``set_prefetch_budget``, shared by every layer) allows. Frames computed ahead are held
until shown; playback stopping or the view changing drops that work.

No napari import here: the GUI sets ``on_ready`` and says when playback starts and stops.

Modules: ``_display_queue`` (the display threads), ``_prefetch`` (the budget shared by
every layer), ``_regions`` (region keys and tiles), ``_state`` (``LiveState``: what a
layer has computed), ``_playback`` (its frames ahead), ``_live_array`` (``LiveArray``).
"""

from ._display_queue import _queue, submit
from ._live_array import SYNC_VOXELS, LiveArray, layer_levels, live_levels
from ._playback import AHEAD_AFTER_UPDATE
from ._prefetch import PREFETCH, PrefetchBudget, get_prefetch_budget, set_prefetch_budget
from ._regions import TILE, aligned
from ._state import KEEP, LiveState

__all__ = [
    "AHEAD_AFTER_UPDATE",
    "KEEP",
    "PREFETCH",
    "SYNC_VOXELS",
    "TILE",
    "LiveArray",
    "LiveState",
    "PrefetchBudget",
    "_queue",
    "aligned",
    "get_prefetch_budget",
    "layer_levels",
    "live_levels",
    "set_prefetch_budget",
    "submit",
]
