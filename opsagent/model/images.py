"""Container image references: what a pinned reference is, and which images a workload has run. Pure.

A reference names a registry path and either a tag or a digest
(`registry.internal/inference/embedder:2.3.0`, `repo@sha256:...`). opsagent
never writes an image without one, and never writes the tag `latest`: a tag
that moves is a guess at what will run, and nothing here guesses.
"""

from __future__ import annotations

import re

from opsagent.model.cluster import Workload

# registry[:port]/path[:tag][@sha256:digest], lower-case path components as the distribution spec has them.
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
IMAGE_RE = re.compile(rf"^(?:{_HOST}/)?{_PATH}(?:/{_PATH})*(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
IMAGE_PATTERN = IMAGE_RE.pattern
MAX_IMAGE_CHARS = 400


def unpinned(image: str) -> str | None:
    """Why `image` may not be written (no tag or digest, the tag `latest`, not a reference); None when it may."""
    if len(image) > MAX_IMAGE_CHARS:
        return f"an image reference is at most {MAX_IMAGE_CHARS} characters"
    m = IMAGE_RE.match(image)
    if m is None:
        return f"{image!r} is not an image reference (REGISTRY/REPO:TAG or REPO@sha256:DIGEST)"
    if m.group("tag") is None and m.group("digest") is None:
        return f"{image!r} names no tag or digest; name the exact image (a missing tag means :latest, which moves)"
    if m.group("tag") is not None and m.group("tag").lower() == "latest" and m.group("digest") is None:
        return f"{image!r} uses the tag latest, which moves; name the exact tag or digest"
    return None


def previous_images(workload: Workload) -> list[str]:
    """Images of the workload's earlier revisions (its rollout history, not the current revision), newest first.

    These are images the workload was rolled out with before the current
    revision: the current image counts only when an earlier revision had it
    too. The history records the first container's image, so only it is known.
    """
    seen: list[str] = []
    for rev in sorted(workload.history, key=lambda r: r.revision, reverse=True):
        if rev.revision != workload.revision and rev.image and rev.image not in seen:
            seen.append(rev.image)
    return seen


def rollback_image(workload: Workload) -> str | None:
    """The image the workload ran before the current one: the newest of `previous_images` other than the current image.

    Restarts of a broken release make new revisions of the same image; this skips them. None when the history holds
    no other image."""
    return next((image for image in previous_images(workload) if image != workload.image), None)


__all__ = ["IMAGE_PATTERN", "IMAGE_RE", "MAX_IMAGE_CHARS", "previous_images", "rollback_image", "unpinned"]
