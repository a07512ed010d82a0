"""The Python side of the comparison scripts: bench/.venv, with torch, numpy and safetensors.

`ensure(script)` re-executes `script` inside bench/.venv, creating the venv and installing
the packages on first use. CI does not use it.
"""

import os
import subprocess
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv"
PACKAGES = ["torch", "numpy", "safetensors"]


def ensure(script):
    """Re-executes `script` inside bench/.venv unless this interpreter already is that venv."""
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    missing = subprocess.run([str(py), "-c", "import " + ", ".join(PACKAGES)], capture_output=True)
    if missing.returncode != 0:
        subprocess.check_call([str(py), "-m", "pip", "install", "--quiet", *PACKAGES])
    os.execv(str(py), [str(py), script] + sys.argv[1:])
