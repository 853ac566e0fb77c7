"""The Qt side of the plugin: everything here may import napari, qtpy and magicgui."""
