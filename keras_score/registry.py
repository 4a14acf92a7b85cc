"""Resolving objects given by name, config dict or instance."""

import keras


def resolve(identifier, registry, base_class, argument, **kwargs):
    """Returns an instance of `base_class` from a name, a config dict or an instance.

    Args:
        identifier: a key of `registry`, a dict made by
            `keras.saving.serialize_keras_object`, or an instance of `base_class`.
        registry: dict from names to classes; `kwargs` are passed to the class.
        base_class: the expected type.
        argument: the argument name, used in error messages.

    Returns:
        An instance of `base_class`.

    Example:
    >>> from keras_score import schedules
    >>> resolve("vp", {"vp": schedules.VPSchedule}, schedules.NoiseSchedule, "schedule")
    VPSchedule(beta_min=0.1, beta_max=20.0, t_min=0.001, t_max=1.0)
    """
    if isinstance(identifier, base_class):
        return identifier
    if isinstance(identifier, str):
        if identifier not in registry:
            raise ValueError(
                f"Unknown {argument} {identifier!r}; expected one of {sorted(registry)} "
                f"or a {base_class.__name__} instance."
            )
        return registry[identifier](**kwargs)
    if isinstance(identifier, dict):
        obj = keras.saving.deserialize_keras_object(identifier)
        if isinstance(obj, base_class):
            return obj
    raise ValueError(
        f"`{argument}` must be a name in {sorted(registry)}, a config dict or a "
        f"{base_class.__name__}; received {identifier!r}."
    )


class Configurable:
    """Mixin for the library's plain (non-layer) objects: config = constructor arguments.

    Subclasses whose constructor takes arguments override `get_config` to
    return them; `from_config` passes the config back to the constructor.
    """

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
