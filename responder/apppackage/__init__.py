"""The Teams app package: the manifest filled in for one deployment, and its icons, zipped."""

from responder.apppackage.build import (
    AppPackageError,
    build_manifest,
    build_package,
    manifest_problems,
    package_problems,
)

__all__ = [
    "AppPackageError",
    "build_manifest",
    "build_package",
    "manifest_problems",
    "package_problems",
]
