"""pyproject.toml's dependencies and envs/tensorflow.yaml must name the same packages, with the same bounds."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from conftest import ROOT

IGNORED = {"python", "pip"}
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def split_requirement(req: str) -> tuple[str, str]:
    """'scikit_image[x] >= 0.22' -> ('scikit-image', '>=0.22'); extras and markers dropped."""
    m = _REQ.match(req)
    assert m, f"cannot parse requirement {req!r}"
    return normalise(m.group(1)), re.sub(r"\s+", "", m.group(3))


def pyproject_requirements() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    return _as_dict(deps, "pyproject.toml")


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "envs" / "tensorflow.yaml").read_text())
    reqs = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"unexpected entry in envs/tensorflow.yaml: {dep}"
            reqs.extend(dep["pip"])
        else:
            reqs.append(dep)
    return _as_dict(reqs, "envs/tensorflow.yaml")


def _as_dict(reqs, where) -> dict[str, str]:
    out = {}
    for req in reqs:
        name, spec = split_requirement(str(req))
        assert name not in out, f"{where}: {name} listed twice"
        if name not in IGNORED:
            out[name] = spec
    return out


@pytest.mark.parametrize("req,expected", [
    ("numpy>=1.26", ("numpy", ">=1.26")),
    ("scikit_image >= 0.22", ("scikit-image", ">=0.22")),
    ("tensorflow[and-cuda]>=2.16", ("tensorflow", ">=2.16")),
    ("PyYAML", ("pyyaml", "")),
    ("snakemake-executor-plugin-slurm>=1.0,<2", ("snakemake-executor-plugin-slurm", ">=1.0,<2")),
    ("python=3.11", ("python", "=3.11")),
])
def test_split_requirement(req, expected):
    assert split_requirement(req) == expected


def test_same_packages():
    py, conda = pyproject_requirements(), conda_requirements()
    assert py, "pyproject.toml lists no dependencies"
    only_py = sorted(set(py) - set(conda))
    only_conda = sorted(set(conda) - set(py))
    assert not only_py and not only_conda, (
        f"only in pyproject.toml: {only_py}; only in envs/tensorflow.yaml: {only_conda}")


def test_same_version_bounds():
    py, conda = pyproject_requirements(), conda_requirements()
    differ = {name: (spec, conda.get(name)) for name, spec in py.items() if spec and conda.get(name) != spec}
    assert not differ, f"version bounds differ (pyproject, env): {differ}"


def test_env_pins_a_python_the_project_supports():
    env = yaml.safe_load((ROOT / "envs" / "tensorflow.yaml").read_text())
    pins = [d for d in env["dependencies"] if isinstance(d, str) and normalise(split_requirement(d)[0]) == "python"]
    assert len(pins) == 1
    m = re.search(r"(\d+)\.(\d+)", pins[0])
    with open(ROOT / "pyproject.toml", "rb") as f:
        floor = tomllib.load(f)["project"]["requires-python"]
    fm = re.fullmatch(r">=\s*(\d+)\.(\d+)", floor)
    assert m and fm and (int(m[1]), int(m[2])) >= (int(fm[1]), int(fm[2]))


def test_rule_files_are_formatted_with_snakefmt():
    """The snakemake-workflows catalogue's convention: `snakefmt rules Snakefile` leaves nothing to change."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", "rules", "Snakefile"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"run `snakefmt rules Snakefile`:\n{p.stdout[-3000:]}{p.stderr[-2000:]}"


def test_every_rule_that_runs_code_names_the_conda_environment():
    """`--software-deployment-method conda` builds envs/tensorflow.yaml for every job, so `snakemake --lint`
    has no rule without an environment."""
    rules = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=(?:rule|checkpoint) \w+:)", smk.read_text()):
            m = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if m and re.search(r"^\s+(script|shell|run):", block, re.M):
                rules[m[1]] = "conda:\n        CONDA_ENV" in block
    assert len(rules) >= 35 and all(rules.values()), sorted(r for r, ok in rules.items() if not ok)
    common = (ROOT / "rules" / "common.smk").read_text()
    assert 'CONDA_ENV = "../envs/tensorflow.yaml"' in common and (ROOT / "envs" / "tensorflow.yaml").exists()


def test_every_local_link_in_the_docs_points_at_a_tracked_file():
    """README.md and docs/ link committed snapshots (docs/results/...): each must be in git, not only on
    the machine that made it. Links into results/ are the run's own outputs and are skipped."""
    import subprocess
    from pathlib import PurePosixPath

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    if not tracked:
        pytest.skip("not a git checkout")
    tracked = set(tracked.splitlines())
    dirs = {str(p) for f in tracked for p in PurePosixPath(f).parents}
    missing = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)", md.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("results/"):
                continue
            rel = (md.parent / target).resolve().relative_to(ROOT).as_posix().rstrip("/")
            if rel not in tracked and rel not in dirs:
                missing.append(f"{md.relative_to(ROOT)} -> {target}")
    assert missing == []
