"""The plugin manager: built-in plugins first, then third-party entry points (group `nerfreg`).

Entry points are loaded here, inside a function, never at import time. Setting
NERFREG_NO_PLUGIN_AUTOLOAD=1 skips them. A plugin that fails to import or to register is
recorded by name in `Registry.broken`; the others keep working. Duplicate names are an error.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from typing import Iterable

import pluggy

from nerfreg_ns import hookspecs
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.registry import Entry, Kind, Registry

hookimpl = pluggy.HookimplMarker("nerfreg")

ENTRY_POINT_GROUP = "nerfreg"
NO_AUTOLOAD_ENV = "NERFREG_NO_PLUGIN_AUTOLOAD"
BUILTIN_PLUGINS = (
    "nerfreg_ns.default_plugins.embedding_pnp",
    "nerfreg_ns.default_plugins.fpfh",
    "nerfreg_ns.default_plugins.silhouette_search",
    "nerfreg_ns.default_plugins.silhouette_fit",
    "nerfreg_ns.default_plugins.verifiers",
    "nerfreg_ns.default_plugins.refiners",
)
_HOOKS: dict[Kind, str] = {
    "generator": "nerfreg_register_generators",
    "verifier": "nerfreg_register_verifiers",
    "refiner": "nerfreg_register_refiners",
}


def get_plugin_manager(extra: Iterable[object] = (), autoload: bool | None = None) -> tuple[pluggy.PluginManager, dict[str, str]]:
    """A plugin manager with the built-ins, `extra` plugin objects, and (unless turned off) the
    entry points; returns it with the plugins that failed to load (name -> reason)."""
    pm = pluggy.PluginManager("nerfreg")
    pm.add_hookspecs(hookspecs)
    broken: dict[str, str] = {}
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    for plugin in extra:
        pm.register(plugin, name=getattr(plugin, "__name__", None))
    if autoload is None:
        autoload = os.environ.get(NO_AUTOLOAD_ENV, "") in ("", "0")
    if autoload:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as e:  # a broken third-party plugin must not take the others down
                broken[ep.name] = f"{type(e).__name__}: {e}"
    return pm, broken


def load_registry(extra: Iterable[object] = (), autoload: bool | None = None) -> Registry:
    """Calls every plugin's registration hooks and collects what they register."""
    pm, broken = get_plugin_manager(extra, autoload)
    registry = Registry(broken=broken)
    for kind, hook_name in _HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin_name = impl.plugin_name

            def register(name: str, config_class: type, factory, _kind: Kind = kind, _plugin: str = plugin_name) -> None:
                registry.add(Entry(_kind, name, config_class, factory, _plugin))

            try:
                impl.function(register=register)
            except NerfregError:
                raise  # duplicates and malformed registrations are the user's to fix, loudly
            except Exception as e:
                registry.broken[plugin_name] = f"{type(e).__name__}: {e}"
    return registry
