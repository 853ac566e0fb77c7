"""Screenshot of the Segment panel with its preview, for the README:

    xvfb-run -a python docs/images/make_segment_panel.py docs/images/segment_panel.png
"""
import sys, time
import numpy as np
import napari
from qtpy.QtWidgets import QApplication
from napari_lazyproc._qt.segment import SegmentWidget
from napari_lazyproc._qt.live_layers import live_states
from napari_lazyproc.synthetic_nuclei import touching_nuclei

image = touching_nuclei((96, 256, 256), seed=4)[0]
viewer = napari.Viewer(show=True)
viewer.window._qt_window.resize(1400, 850)
viewer.add_image(image, name="nuclei", colormap="gray")
w = SegmentWidget(viewer)
viewer.window.add_dock_widget(w, name="Segment", area="right")
w.block.value = 64
viewer.dims.set_point(0, 48)
w.preview.value = True
layer = w.preview_layer
app = QApplication.instance()
t = time.time()
while time.time() - t < 60:
    app.processEvents()
    time.sleep(0.05)
    if not any(s.busy for s in live_states(layer)) and time.time() - t > 2:
        break
for _ in range(20):
    app.processEvents(); time.sleep(0.05)
img = viewer.screenshot(path=sys.argv[1], canvas_only=False, flash=False)
print("saved", img.shape, time.time() - t)
