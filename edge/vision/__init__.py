"""Face detection, alignment, quality, embedding and 1:N search."""

from edge.vision.engine import FaceEngine
from edge.vision.face import Detection, Face, Quality
from edge.vision.gallery import Candidate, Gallery, Match
from edge.vision.image import ImageError, decode_image, load_image, to_bgr

__all__ = ["Candidate", "Detection", "Face", "FaceEngine", "Gallery", "ImageError", "Match", "Quality",
           "decode_image", "load_image", "to_bgr"]
