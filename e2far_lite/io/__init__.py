"""Files: atomic writes (JSON, text, pictures), safe unpickling, landmark annotations, mesh files.

The lowest stage: plain file formats that know nothing about faces or networks.
"""

from .atomic import atomic_write, write_figure, write_text
from .json_files import write_json
from .landmark_files import (
    DEV_FACES_ENV,
    NUM_LANDMARKS,
    AnnotatedFace,
    dev_annotations,
    read_annotations,
    read_dlib_xml,
    read_pts,
)
from .mesh_files import read_obj, save_mesh
from .safe_pickle import ChumpyArray, RefusedGlobal, RestrictedUnpickler, load

__all__ = [
    "AnnotatedFace",
    "ChumpyArray",
    "DEV_FACES_ENV",
    "NUM_LANDMARKS",
    "RefusedGlobal",
    "RestrictedUnpickler",
    "atomic_write",
    "dev_annotations",
    "load",
    "read_annotations",
    "read_dlib_xml",
    "read_obj",
    "read_pts",
    "save_mesh",
    "write_figure",
    "write_json",
    "write_text",
]
