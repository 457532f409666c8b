"""Object detection on a trained encoder (the ``detection`` pipeline; README, "Detection").

Box-annotated images (``canvases``: pasted from a labelled image set; ``coco``: a
user's COCO-format folder), an FCOS detector on the encoder's feature maps
(``detector``), its training and detections (``train``), COCO mAP (``scoring``), the
comparison of encoders (``comparison``) and the stage that ties them (``stage``).
"""
