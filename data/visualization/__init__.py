"""Drawing results for people; one module per kind of picture (panels, boxes, masks, depth, volumes)."""
from .panels import label_panels, put_label
from .masks import colorize, draw_segmentation
from .depth import colorize_depth, depth_panel
from .volumes import draw_axial_slices

__all__ = ['label_panels', 'put_label', 'colorize', 'draw_segmentation', 'colorize_depth', 'depth_panel',
           'draw_axial_slices']
