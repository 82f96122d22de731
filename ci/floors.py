"""Print ``name==floor`` for every requirement of pyproject.toml (project, [test], [docs]).

The oldest versions the project declares, as pip constraints: ``ci/versions oldest``
installs them all (what uv's ``--resolution lowest-direct`` does). With package names as
arguments, only those. Runs on Python 3.10 too (pip's vendored tomli).
"""

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import pip._vendor.tomli as tomllib


def floors():
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = project["dependencies"] + [
        req for extra in ("test", "docs") for req in project["optional-dependencies"][extra]
    ]
    pins = {}
    for req in reqs:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?\s*>=\s*([0-9][0-9A-Za-z.]*)", req)
        if m is None:
            sys.exit(f"ci/floors.py: cannot read a floor from {req!r}")
        name, floor = m.group(1).lower(), m.group(3)
        pins[name] = max(pins.get(name, floor), floor,
                         key=lambda v: tuple(int(p) for p in re.findall(r"\d+", v)))
    return pins


if __name__ == "__main__":
    pins = floors()
    for name in sys.argv[1:] or sorted(pins):
        print(f"{name}=={pins[name]}")
