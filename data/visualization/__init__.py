"""Drawing results for people; one module per kind of picture (panels, boxes, masks, depth, volumes)."""
from .panels import label_panels, put_label
from .depth import colorize_depth, depth_panel  # noqa: F401  (issue 4)

__all__ = ['label_panels', 'put_label']
from .masks import colorize, draw_segmentation  # noqa: F401,E402  (issue 3)
from .volumes import draw_axial_slices  # noqa: F401,E402  (issue 5)
