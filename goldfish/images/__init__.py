"""Images: base images (``goldfish-base-cpu``/``-gpu``) and project images (``<project>-cpu``/``-gpu``),
content-addressed, built on the local daemon, recorded in the store, pushed to a registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.images.recipes import base_tag, project_repo
    from goldfish.images.service import BuildStatus, Images, ManageImagesResult
    from goldfish.images.environment import ImageChoice, ensure_project_image

__all__ = [
    "BuildStatus",
    "ImageChoice",
    "Images",
    "ManageImagesResult",
    "base_tag",
    "ensure_project_image",
    "project_repo",
]

__getattr__ = lazy_face(__name__, {
    "Images": "service",
    "BuildStatus": "service",
    "ManageImagesResult": "service",
    "ImageChoice": "environment",
    "ensure_project_image": "environment",
    "base_tag": "recipes",
    "project_repo": "recipes",
})
