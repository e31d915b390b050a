"""Optional dependencies: each comes with an extra of the package, and a missing one is a
MissingExtraError whose message is the `pip install` that brings it."""

from __future__ import annotations

import importlib.util

# the extra that installs each optional module, and what gpunet uses it for
EXTRAS = {"matplotlib": ("plot", "plots")}


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str) -> None:
        self.extra, purpose = EXTRAS[module]
        super().__init__(
            f"{purpose} need {module}, which is not installed: pip install 'gpunet[{self.extra}]' "
            f"(from a gpunet checkout: pip install '.[{self.extra}]')",
            name=module,
        )


def require(module: str) -> None:
    """MissingExtraError unless `module` can be imported: a check before the work that needs it."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(module)
