"""Optional dependencies: each comes with an extra of the package, and a missing one is a
MissingExtraError whose message is the `pip install` that brings it."""

from __future__ import annotations

import importlib.util

# the extra that installs each optional module, and what gpunet uses it for
EXTRAS = {"matplotlib": ("plot", "plots")}


class MissingExtraError(ModuleNotFoundError):
    """An optional package is not installed; the message names the extra that brings it."""


def missing_extra(module: str) -> MissingExtraError:
    """The error for a missing optional `module`: what needs it, and its extra's pip install."""
    extra, purpose = EXTRAS[module]
    return MissingExtraError(
        f"{purpose} need {module}, which is not installed: pip install 'gpunet[{extra}]' "
        f"(from a gpunet checkout: pip install '.[{extra}]')",
        name=module,
    )


def require(module: str) -> None:
    """MissingExtraError unless `module` can be imported: a check before the work that needs it."""
    if importlib.util.find_spec(module) is None:
        raise missing_extra(module)
