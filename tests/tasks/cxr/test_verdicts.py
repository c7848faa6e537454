"""The PASS/MISS lines of 'evaluate enhance' and 'evaluate segment': each states the measured value, the target
and whether it was met, in words true either way (built from scores directly: no model runs)."""

from medvae.tasks.cxr.evaluate_enhance import CLASSICAL, EnhanceEvaluation, format_enhance
from medvae.tasks.cxr.evaluate_segment import ImageScores, SegmentEvaluation, format_segment


def _verdicts(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("PASS: ", "MISS: "))]


def test_enhance_verdicts_say_the_values_the_target_and_the_outcome():
    rows = {("noise", 0.3): {"degraded": (20.0, 0.5), "medvae": (25.0, 0.8), **{m: (24.0, 0.7) for m in CLASSICAL}},
            ("noise", 0.9): {"degraded": (15.0, 0.4), "medvae": (18.0, 0.6), **{m: (18.5, 0.6) for m in CLASSICAL}},
            ("contrast", 0.5): {"degraded": (27.29, 0.9), "medvae": (22.15, 0.8),
                                **{m: (24.0, 0.7) for m in CLASSICAL}}}
    noise, contrast, clean = _verdicts(format_enhance(EnhanceEvaluation(["a.png"], rows, clean_psnr=[41.0, 39.5])))
    assert noise.startswith("MISS: noise: at 0.3 enhanced 25.00 dB is 1.00 dB above the best tuned baseline")
    assert "at 0.9 enhanced 18.00 dB is 0.50 dB below the best tuned baseline" in noise
    assert noise.endswith("target: above the best baseline at every severity: not met at 0.9")
    assert contrast == ("MISS: contrast: at 0.5 enhanced 22.15 dB is 5.14 dB below degraded (27.29 dB); target: no "
                        "worse than degraded at every severity: not met at 0.5")
    assert clean.startswith("MISS: ") and "39.50 dB at worst, 0.50 dB below the target" in clean
    assert clean.endswith("for every film: not met")
    rows = {("contrast", 0.5): {"degraded": (20.0, 0.9), "medvae": (21.0, 0.8), **{m: (24.0, 0.7) for m in CLASSICAL}}}
    contrast, clean = _verdicts(format_enhance(EnhanceEvaluation(["a.png"], rows, clean_psnr=[42.0])))
    assert contrast.startswith("PASS: ") and "21.00 dB is 1.00 dB above degraded (20.00 dB)" in contrast
    assert contrast.endswith(": met") and clean.startswith("PASS: ") and "2.00 dB above the target" in clean
    assert "1 clean film;" in format_enhance(EnhanceEvaluation(["a.png"], rows))  # not "1 clean films"


def _film(name, clean, degraded, enhanced, reduced=None):
    return ImageScores(name, 0, (clean, 1.0), (clean, 1.0), (reduced if reduced is not None else clean, 1.0),
                       {("noise", 0.9): {"degraded": (degraded, 5.0), "enhanced": (enhanced, 2.0)}})


def test_segment_verdicts_say_the_values_the_target_and_the_outcome():
    ev = SegmentEvaluation(["m.safetensors"], [_film("a", 0.97, 0.80, 0.95), _film("b", 0.96, 0.70, 0.94)])
    mean, worst, recovery = _verdicts(format_segment(ev))
    assert mean == "PASS: mean Dice on clean films is 0.9650, 0.0150 above the target; target: at least 0.95: met"
    assert worst.startswith("PASS: the worst clean film has Dice 0.9600, 0.1100 above the target") and "met" in worst
    assert recovery.startswith("PASS: degradation costs 0.2150 Dice") and "wins back 0.1950, 91% of it" in recovery
    assert recovery.endswith(": met")
    ev = SegmentEvaluation(["m.safetensors"], [_film("a", 0.90, 0.80, 0.82), _film("b", 0.80, 0.70, 0.72)])
    mean, worst, recovery = _verdicts(format_segment(ev))
    assert mean.startswith("MISS: mean Dice on clean films is 0.8500, 0.1000 below the target")
    assert worst.startswith("MISS: ") and worst.endswith("0.0500 below the target; target: none below 0.85: not met")
    assert recovery.startswith("MISS: ") and "20% of it" in recovery and recovery.endswith("not met")


def test_a_degenerate_segmenter_misses_recovery_instead_of_passing_it():
    """A segmenter that finds no lungs on clean films loses no Dice to degradation: that is a MISS on recovery,
    never a PASS 'nothing to recover'."""
    ev = SegmentEvaluation(["m.safetensors"], [_film("a", 0.10, 0.10, 0.10), _film("b", 0.05, 0.06, 0.06)])
    verdicts = _verdicts(format_segment(ev))
    assert len(verdicts) == 3 and all(v.startswith("MISS: ") for v in verdicts)
    assert "the segmenter fails on clean films (mean Dice 0.0750, below 0.5)" in verdicts[2]
    assert verdicts[2].endswith("not met")
    assert not any(c["pass"] for c in ev.to_dict()["checks"])
    # recovery that looks complete on a degenerate segmenter is still a MISS
    ev = SegmentEvaluation(["m.safetensors"], [_film("a", 0.30, 0.10, 0.30), _film("b", 0.30, 0.10, 0.30)])
    assert ev.recovered() == 1.0 and not ev.checks()[2][1]
    # a working segmenter that degradation does not hurt: recovery cannot be measured, so not met
    ev = SegmentEvaluation(["m.safetensors"], [_film("a", 0.97, 0.97, 0.97), _film("b", 0.96, 0.96, 0.96)])
    text, ok = ev.checks()[2]
    assert not ok and "nothing to win back" in text and text.endswith("not met (not measurable)")
