"""Screenshot of the Segment panel with its preview, for the README.

Run: ``xvfb-run -a python docs/images/make_segment_panel.py docs/images/segment_panel.png``
"""

import sys
import time

import napari
from qtpy.QtWidgets import QApplication

from napari_lazyproc._qt.live_layers import live_states
from napari_lazyproc._qt.segment import SegmentWidget
from napari_lazyproc.synthetic_nuclei import touching_nuclei

image = touching_nuclei((96, 256, 256), seed=4)[0]
viewer = napari.Viewer(show=True)
viewer.window._qt_window.resize(1400, 850)
viewer.add_image(image, name="nuclei", colormap="gray")
widget = SegmentWidget(viewer)
viewer.window.add_dock_widget(widget, name="Segment", area="right")
widget.block.value = 64
viewer.dims.set_point(0, 48)
widget.preview.value = True
app = QApplication.instance()
start = time.time()
while time.time() - start < 60:  # until the blocks on screen have landed
    app.processEvents()
    time.sleep(0.05)
    landed = widget.showing.value == "3D preview"  # the 3D look replaced the 2D one
    if landed and not any(s.busy for s in live_states(widget.preview_layer)):
        break
for _ in range(20):
    app.processEvents()
    time.sleep(0.05)
viewer.screenshot(path=sys.argv[1], canvas_only=False, flash=False)
