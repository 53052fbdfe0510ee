"""A Matrix Synapse module that puts an imlimits app's plan in front of a homeserver (docs/synapse.md).

Loaded by Synapse as `imlimits_synapse.LimitsModule`. The rest of the
package (config, ids, translate, refusals, the import command) does not
import Synapse, so it runs and is tested without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imlimits_synapse.module import LimitsModule

__all__ = ["LimitsModule"]


def __getattr__(name: str) -> Any:
    # Synapse imports the package, then takes LimitsModule from it (synapse/util/module_loader.py, load_module).
    if name == "LimitsModule":
        from imlimits_synapse.module import LimitsModule

        return LimitsModule
    raise AttributeError(f"module 'imlimits_synapse' has no attribute {name!r}")
