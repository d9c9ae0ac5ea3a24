"""Enough of kustomize to render deploy/overlays in tests: resources, components and JSON 6902 patches.

The real tool (`kubectl apply -k`) reads the same files; this keeps the test suite free of a Go binary.
It refuses what it does not implement, so a kustomization using more fails loudly here rather than rendering
something different from what kubectl would.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

_KNOWN = {"apiVersion", "kind", "resources", "components", "patches"}


def render(directory: Path) -> list[dict]:
    docs: list[dict] = []
    _apply(Path(directory), docs)
    return docs


def _apply(directory: Path, docs: list[dict]) -> None:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - _KNOWN
    if unknown:
        raise ValueError(f"{directory}/kustomization.yaml: fields this renderer does not implement: {sorted(unknown)}")
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            _apply(path, docs)
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for entry in spec.get("components", []):
        _apply(directory / entry, docs)
    for patch in spec.get("patches", []):
        ops = yaml.safe_load((directory / patch["path"]).read_text())
        target = patch["target"]
        matched = [d for d in docs if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]]
        if len(matched) != 1:
            raise ValueError(f"{directory}: patch {patch['path']} matches {len(matched)} objects")
        for op in ops:
            _json_patch(matched[0], op)


def _json_patch(doc: dict, op: dict) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].strip("/").split("/")]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if op["op"] == "add":
        value = copy.deepcopy(op["value"])
        if isinstance(parent, list):
            parent.append(value) if last == "-" else parent.insert(int(last), value)
        else:
            parent[last] = value
    elif op["op"] == "replace":
        if isinstance(parent, list):
            parent[int(last)] = copy.deepcopy(op["value"])
        else:
            if last not in parent:
                raise KeyError(op["path"])
            parent[last] = copy.deepcopy(op["value"])
    else:
        raise ValueError(f"JSON patch op {op['op']!r} is not implemented here")
