"""`set_image`: roll a workload's container forward or back to a named image.

The tool only changes what it is told to. Whether a call may run is the
policy's: the shipped policy lets the daemon go back to an image the workload
ran before, and sends any image it never ran to a platform lead, whoever
proposes it (see docs/tools.md, "Images").

Without `image` the call means "roll back": the newest image of the rollout
history that differs from the one running now. That is read from the
workload's own history (its ReplicaSets), never from event text or
annotations, and an image reference must carry a tag or digest other than
`latest` (opsagent.model.images): nothing here guesses a tag. Roll back
refuses, with the reason, when the image before is unpinned or the history
shows it was already rolled back from (no bouncing between two bad releases).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from opsagent.model.images import MAX_IMAGE_CHARS, previous_images, rollback_target, unpinned

from tools.args import DNS_LABEL, WorkloadArgs, find_workload
from tools.base import ChatForm, Outcome, ToolContext, WriteData
from tools.show import plain, quoted, shows


class SetImageIn(WorkloadArgs):
    image: str | None = Field(
        default=None, min_length=3, max_length=MAX_IMAGE_CHARS,
        description="The exact image, REGISTRY/REPO:TAG or REPO@sha256:DIGEST (never :latest); omit to roll back to "
                    "the image the workload ran before the current one.")
    container: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=DNS_LABEL,
        description="Container to change when the pod template has several; omit for the first.")

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str | None) -> str | None:
        if value is not None and (why := unpinned(value)) is not None:
            raise ValueError(why)
        return value


class ImageSet(WriteData):
    """The image set (or, refused, `why`); `image_before` is the first container's, when that one changed."""

    workload: str
    container: str | None = None
    image: str | None = None
    image_before: str | None = None
    revision_before: int | None = None
    ran_before: bool | None = None
    why: str | None = None


def set_image(ctx: ToolContext, args: SetImageIn) -> Outcome:
    from tools.write import _done  # the write family's result shape (it imports this module)

    w = find_workload(ctx.observe(), args.namespace, args.name)
    image = args.image
    earlier = previous_images(w)
    if image is None:
        if args.container is not None:
            return Outcome(status="error", message=f"name the image for container {args.container} of {w.key}: the "
                                                   "rollout history records the first container's image only",
                           data={"workload": w.key, "container": args.container})
        target = rollback_target(w)
        if target.image is None:
            return Outcome(status="error", message=f"{w.key} is not rolled back: {target.why}",
                           data={"workload": w.key, "image_before": w.image, "why": target.why})
        image = target.image
    first = args.container is None
    where = f"container {args.container} of {w.key}" if not first else w.key
    before = w.image if first else None
    result = ctx.cluster.set_image(ref=w.ref, image=image, container=args.container, dry_run=ctx.dry_run)
    return _done(result, f"set the image of {where} to {image}" + (f" (was {before})" if before else ""),
                 workload=w.key, container=args.container, image=image, image_before=before,
                 revision_before=w.revision, ran_before=image in earlier)


RETURNS = ("workload, container, image, image_before (the first container's, when it was changed), revision_before, "
           "`ran_before` (the image is in the workload's rollout history), dry_run.")


def phrase(ref: str, args: dict[str, Any]) -> str:
    if not args.get("image"):
        return f"roll `{ref}` back to the image it ran before"
    container = f" (container {plain(args['container'], 63)})" if args.get("container") else ""
    return f"set the image of `{ref}`{container} to `{plain(args['image'], 200)}`"


def _shown(data: ImageSet) -> tuple[str, str]:
    where = f"container {plain(data.container, 63)}: " if data.container else ""
    was = f" (was {quoted(data.image_before)})" if data.image_before else ""
    again = ", an image it ran before" if data.ran_before else ""
    return data.workload, f"{where}image {quoted(data.image)}{was}{again}"


show = shows(ImageSet, _shown)


def _chat(ref: str, groups: dict[str, Any]) -> tuple[dict[str, Any], str]:
    extra: dict[str, Any] = {}
    if groups.get("container"):
        extra["container"] = groups["container"].lower()
    if groups.get("image"):
        extra["image"] = groups["image"]
        where = f" container {extra['container']}" if "container" in extra else ""
        return extra, f"set image {ref}{where} to {groups['image']}"
    return extra, f"roll back {ref}"


# "set image NS/NAME [container C] to REPO:TAG", or "roll back NS/NAME" (the image it ran before).
# "rollback NS/NAME to REV" and "undo NS/NAME" stay undo_rollout's (a revision, not an image).
CHAT = ChatForm(
    verb="set", form="set image NS/NAME [container C] to REPO:TAG  |  roll back NS/NAME", aliases=("roll",),
    particles=("image", "back"),
    pattern=(r"^(?:(?P<set>set\s+(?:the\s+)?image\s+(?:of\s+)?)|roll\s*back\s+){WL}"
             r"(?(set)(?:\s+container\s+(?P<container>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?))?\s+to\s+(?P<image>\S{3,400}))$"),
    hint="set image NS/NAME to REPO:TAG, e.g. 'set image inference/embedder to registry.internal/inference/embedder:2.5.0'; "
         "or 'roll back inference/embedder'",
    build=_chat)


__all__ = ["CHAT", "RETURNS", "ImageSet", "SetImageIn", "phrase", "set_image", "show"]
