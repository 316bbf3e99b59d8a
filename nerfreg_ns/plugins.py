"""The plugin manager: built-in plugins first, then third-party entry points (group `nerfreg`).

Entry points are loaded here, inside a function, never at import time; setting
NERFREG_NO_PLUGIN_AUTOLOAD=1 skips them. Each plugin registers all or nothing: one that fails
to import, raises in a hook, registers a name another plugin has, or hands over something that
is not a plugin entry is recorded by name in `Registry.broken`, and the others keep working.
"""

from __future__ import annotations

import importlib
import keyword
import os
import re
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

import pluggy

from nerfreg_ns import hookspecs
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.registry import Entry, Kind, Registry

ENTRY_POINT_GROUP = hookspecs.PROJECT
NO_AUTOLOAD_ENV = "NERFREG_NO_PLUGIN_AUTOLOAD"
BUILTIN_PLUGINS = (
    "nerfreg_ns.default_plugins.embedding_pnp",
    "nerfreg_ns.default_plugins.fpfh",
    "nerfreg_ns.default_plugins.silhouette_search",
    "nerfreg_ns.default_plugins.silhouette_fit",
    "nerfreg_ns.default_plugins.verifiers",
    "nerfreg_ns.default_plugins.refiners",
)
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
"""A plugin's name: it becomes a flag group (`--NAME.OPTION`) and a YAML key."""
HOOKS: dict[Kind, str] = {
    "generator": "nerfreg_register_generators",
    "verifier": "nerfreg_register_verifiers",
    "refiner": "nerfreg_register_refiners",
}


def get_plugin_manager(extra: Iterable[object] = (), autoload: bool | None = None) -> tuple[pluggy.PluginManager, dict[str, str]]:
    """A plugin manager with the built-ins, `extra` plugin objects, and (unless turned off) the
    entry points; returns it with the plugins that failed to load (name -> reason)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
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


class _Registrar:
    """The `register` callback handed to one plugin's hook: exactly (name, config_class,
    factory), collecting entries of one kind for that plugin."""

    def __init__(self, kind: Kind, plugin: str, staged: list[Entry]) -> None:
        self._kind, self._plugin, self._staged = kind, plugin, staged

    def __call__(self, name: str, config_class: type, factory: Callable[[Any], Any]) -> None:
        if not isinstance(name, str) or not NAME.fullmatch(name) or keyword.iskeyword(name.replace("-", "_")):
            raise NerfregError(f"registers a {self._kind} named {name!r}: names are lower-case words joined by hyphens "
                               "(they become command-line flags)")
        self._staged.append(Entry(self._kind, name, config_class, factory, self._plugin))


def load_registry(extra: Iterable[object] = (), autoload: bool | None = None) -> Registry:
    """Calls every plugin's registration hooks, plugin by plugin in the order they were added
    (built-ins first), and keeps each plugin's entries only if all its hooks succeeded."""
    pm, broken = get_plugin_manager(extra, autoload)
    registry = Registry(broken=broken)
    impls = {kind: getattr(pm.hook, hook).get_hookimpls() for kind, hook in HOOKS.items()}
    for plugin_name, plugin in pm.list_name_plugin():
        staged: list[Entry] = []
        try:
            for kind, kind_impls in impls.items():
                for impl in kind_impls:
                    if impl.plugin is plugin:
                        impl.function(register=_Registrar(kind, plugin_name, staged))
            trial = Registry({k: dict(v) for k, v in registry.entries.items()})
            for entry in staged:  # names clash with earlier plugins' and among this plugin's own
                trial.add(entry)
        except Exception as e:  # reported by name, never fatal to the others
            registry.broken[plugin_name] = str(e) if isinstance(e, NerfregError) else f"{type(e).__name__}: {e}"
            continue
        registry.entries = trial.entries
    return registry
