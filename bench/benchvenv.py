"""The Python side of the comparison scripts: bench/.venv, with torch, numpy and safetensors,
and bench/.venv-jax, with jax, optax and numpy (JAX in its own venv, apart from torch).

`ensure(script)` re-executes `script` inside bench/.venv (`ensure(script, JAX)` inside
bench/.venv-jax), creating the venv and installing the packages on first use. CI does not
use it.
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (venv folder, packages to install, the modules they provide)
TORCH = (HERE / ".venv", ["torch", "numpy", "safetensors"], ["torch", "numpy", "safetensors"])
JAX = (HERE / ".venv-jax", ["jax", "optax", "numpy"], ["jax", "optax", "numpy"])


def ensure(script, env=TORCH):
    """Re-executes `script` inside the venv of `env` unless this interpreter already is it."""
    venv, packages, modules = env
    py = venv / "bin" / "python"
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        subprocess.check_call([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    missing = subprocess.run([str(py), "-c", "import " + ", ".join(modules)], capture_output=True)
    if missing.returncode != 0:
        subprocess.check_call([str(py), "-m", "pip", "install", "--quiet", *packages])
    os.execv(str(py), [str(py), script] + sys.argv[1:])
