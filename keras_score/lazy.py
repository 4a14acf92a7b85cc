"""The package's lazy import: `import keras_score` imports no Keras until Keras is needed.

The `keras-score` command line chooses the Keras backend and quiets
TensorFlow's start-up log before Keras is imported, and `keras-score --help`
works where no backend is installed; both need a package whose `__init__`
imports nothing heavy. Keras, though, finds a saved class only if the module
that registers it has run, so the moment Keras is imported, whether by the
user (`import keras` before `keras.saving.load_model`), by a keras_score
module or by the CLI, every keras_score module is imported too, and
`import keras_score` followed by `keras.saving.load_model(path)` loads any
keras_score model, in either import order.

That moment is observed by an import finder placed first on `sys.meta_path`
while the package is still lazy: it wraps the loader of `keras` and of each
`keras_score` submodule, and after each of them has run it completes the
package unless another keras_score module is still half-way through its own
import (a circular import otherwise); the last one to finish completes it.
The finder removes itself once the package is complete.

Example:
```python
import sys
import keras_score
assert "keras" not in sys.modules or keras_score.is_loaded()
model = keras_score.ScoreModel(keras_score.networks.MLP())  # imports Keras and the rest
```
"""

import importlib
import importlib.abc
import sys

PACKAGE = "keras_score"


class _CompletingLoader(importlib.abc.Loader):
    """A module's own loader that completes the package after the module has run."""

    def __init__(self, loader, complete):
        self._loader = loader
        self._complete = complete

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._complete(module.__name__)

    def __getattr__(self, name):  # resource readers, get_source, ...: the wrapped loader's
        return getattr(self._loader, name)


class _KerasImportFinder(importlib.abc.MetaPathFinder):
    """Finds `keras` and `keras_score.*` with the other finders and wraps their loaders."""

    def __init__(self, complete):
        self._complete = complete

    def find_spec(self, name, path, target=None):
        if name != "keras" and not name.startswith(PACKAGE + "."):
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _CompletingLoader(spec.loader, self._complete)
                return spec
        return None


class LazyPackage:
    """Imports the package's modules once, when Keras is imported, and resolves its public names.

    Args:
        modules: the package's submodules to import, in order, e.g. ["schedules", "model"].
        exports: {public name: submodule defining it}.
    """

    def __init__(self, modules, exports):
        self.modules = list(modules)
        self.exports = dict(exports)
        self.loaded = False
        self._finder = None

    def start(self):
        """Completes the package now if Keras is already imported, else on Keras' import."""
        if "keras" in sys.modules:
            self.load()
        else:
            self._finder = _KerasImportFinder(self._complete)
            sys.meta_path.insert(0, self._finder)

    def load(self):
        """Imports every module of the package (which registers its classes with Keras)."""
        if self.loaded:
            return
        self.loaded = True
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        for module in self.modules:
            importlib.import_module(f"{PACKAGE}.{module}")

    def attribute(self, name):
        """The package's public `name`: a submodule, or a name one of them defines."""
        if name in self.modules:
            return importlib.import_module(f"{PACKAGE}.{name}")
        if name in self.exports:
            return getattr(importlib.import_module(f"{PACKAGE}.{self.exports[name]}"), name)
        raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")

    def _complete(self, just_imported):
        if self.loaded or "keras" not in sys.modules:
            return
        for name, module in list(sys.modules.items()):
            if name.startswith(PACKAGE + ".") and name != just_imported:
                if getattr(getattr(module, "__spec__", None), "_initializing", False):
                    return  # that module completes the package when it has run
        self.load()
