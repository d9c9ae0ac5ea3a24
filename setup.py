"""Build hook: ship the policies, playbooks and eval scenarios inside the wheel.

They live at the top of the repository, where people edit them. A wheel
carries them as package data under `opsagent/defaults/` (see opsagent/shipped.py),
so `pip install opsagent` then `opsagent demo` works from any directory.
Project metadata is in pyproject.toml; this file only adds the copy step.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("policies", "playbooks", "evals/scenarios")


class BuildWithDefaults(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the checkout's own folders
            return
        here = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "opsagent" / "defaults"
        for folder in SHIPPED:
            shutil.copytree(here / folder, target / folder, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithDefaults})
