"""Procedural PA chest radiograph phantoms with lung masks, for segmentation and enhancement work.

Each image is built in a canonical frame (normalised coordinates ``u`` left to right on screen and ``v``
top to bottom, both in [0, 1]) as a projected *density* map, the sum of what an X-ray beam crosses, and then
placed with its own pose (a rotation of a few degrees, a scaling and a shift) and displayed with bright =
dense. Anatomy, every part drawn afresh for each image:

* body: a torso with neck and sloping shoulders, thicker (brighter) in the middle, and air outside it
  (the darkest part of the image); humeral heads and a faint scapula at the shoulders;
* lungs: the classic outlines from splines (rounded apices, sharp costophrenic angles, diaphragm domes,
  the right dome higher; the left lung narrower), each lowering the density by its air content, which
  grows inward from the lung edge;
* heart: a cardiac silhouette (right atrium, left ventricle, aortic knob) over the medial lungs; the lung
  masks exclude what it hides, as hand-drawn lung masks do, which gives the left lung its cardiac notch;
* mediastinum and spine: soft tissue between the lungs, the trachea and main bronchi as an air column,
  vertebral bodies with disc spaces and pedicles;
* ribs (posterior ribs with their lateral and fainter anterior parts) and clavicles, drawn as bone with
  a brighter cortex;
* lung markings: branching vessels from the hila, tapering outward, and a fine band-pass texture;
* the stomach bubble under the left dome (in most images);
* a smooth intensity nonuniformity, a gamma and contrast per image, a Gaussian blur of about 1.5 pixels
  at 512 (the system's sharpness) and a little fine noise.

Masks come from the same geometry, binary and before the blur: label 1 is the patient's right lung, which
a PA radiograph shows on the viewer's left (small ``x``), label 2 the left lung.

Everything is numpy/scipy/scikit-image: polygons and splines for outlines, a polyline-distance renderer
for bones and airways, ``line_aa`` plus Gaussian blur for vessels, and one ``affine_transform`` for the pose.
MONAI has no anatomical phantom generator, hence our own.

The code lives in five modules and is gathered here: the settings and result types in
:mod:`~medvae.phantoms.cxr_config`, the canvas drawing in :mod:`~medvae.phantoms.drawing`, the parts in
:mod:`~medvae.phantoms.cxr_anatomy`, their composition, pose and display in
:mod:`~medvae.phantoms.cxr_render`, and the files in :mod:`~medvae.phantoms.cxr_files`.
"""

from __future__ import annotations

from medvae.phantoms.cxr_config import (FIELD_OF_VIEW_MM, LEFT_LUNG, MAX_SIZE, MIN_SIZE, RIGHT_LUNG, CXRPhantom,
                                        CXRPhantomConfig, check_size)
from medvae.phantoms.cxr_files import FORMATS, phantom_dicom, write_cxr_phantoms
from medvae.phantoms.cxr_render import cxr_phantom, cxr_phantom_anatomy

__all__ = ["FIELD_OF_VIEW_MM", "MIN_SIZE", "MAX_SIZE", "RIGHT_LUNG", "LEFT_LUNG", "FORMATS", "CXRPhantomConfig",
           "CXRPhantom", "check_size", "cxr_phantom", "cxr_phantom_anatomy", "phantom_dicom", "write_cxr_phantoms"]
