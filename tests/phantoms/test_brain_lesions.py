"""Brain phantoms with lesions: every kind is there, bright or dark where it should be, and the anatomy elsewhere
is the subject's own (the lesions come from a random stream of their own)."""

from __future__ import annotations

import numpy as np

from medvae.phantoms.brain import brain_subject, load_templates


def test_lesions_are_labelled_with_their_contrast_and_leave_the_rest_of_the_subject_as_it_was():
    templates = load_templates()
    healthy, _ = brain_subject(5, templates=templates)
    sick, _ = brain_subject(5, templates=templates, lesions=True)
    labels = sick["lesion"]
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4}
    wm = (healthy["wm"] > 0.8) & (labels == 0)
    for label, contrast, brighter in ((1, "flair", True), (2, "t1", False), (2, "t2", True), (3, "flair", True),
                                      (4, "t1", True)):
        inside = float(sick[contrast][labels == label].mean())
        assert (inside > 1.15 * float(healthy[contrast][labels == label].mean())) == brighter, (label, contrast)
    assert abs(float(sick["t2"][labels == 4].mean()) / float(healthy["t2"][labels == 4].mean()) - 1) < 0.1
    from scipy.ndimage import binary_dilation

    far = ~binary_dilation(labels > 0, iterations=3)
    for name in ("t1", "t2", "flair", "cbf"):
        assert np.array_equal(sick[name][far], healthy[name][far]), name
    assert wm.any()
