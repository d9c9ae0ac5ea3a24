"""The request body of `set_image`: `kubectl set image`'s strategic-merge patch of one container. Pure, no I/O.

The container is matched by name (the strategic merge key of `containers`),
so the patch changes that container's image and nothing else of the template.
"""

from __future__ import annotations

from typing import Any

from opsagent.cluster.port import Invalid
from opsagent.model.images import unpinned


def containers_of(workload: dict[str, Any]) -> list[str]:
    """The names of the pod template's containers, in template order."""
    spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [str(c.get("name")) for c in spec.get("containers") or () if c.get("name")]


def image_body(workload: dict[str, Any], *, image: str, container: str | None = None) -> tuple[dict[str, Any], str, str]:
    """(patch, container name, its image now) for setting `container`'s image (the first container when None)."""
    why = unpinned(image)
    if why is not None:
        raise Invalid(why)
    names = containers_of(workload)
    if not names:
        raise Invalid("the workload's pod template has no containers")
    name = container or names[0]
    if name not in names:
        raise Invalid(f"no container {name!r} in the pod template; containers: {', '.join(names)}")
    spec = workload["spec"]["template"]["spec"]
    before = next(str(c.get("image", "")) for c in spec["containers"] if c.get("name") == name)
    return {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}, name, before
