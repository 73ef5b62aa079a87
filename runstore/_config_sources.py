"""Where init()'s config comes from: a dict, argparse.Namespace, absl flags or YAML files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._errors import UsageError

DEFAULTS_FILE = "config-defaults.yaml"


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a dict; wandb's `key: {value: v, desc: ...}` form is unwrapped."""
    import yaml  # pyyaml: imported here, it costs ~50 ms

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file {str(path)!r} must hold a mapping of keys to values")
    data.pop("wandb_version", None)
    out = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise UsageError(f"config file {str(path)!r}: key {key!r} is not a string")
        if "." in key:
            raise UsageError(f"config file {str(path)!r}: key {key!r} contains '.'; use '_' "
                             "or '-', or nest the value")
        if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]
        out[key] = value
    return out


def as_dict(config: Any) -> dict[str, Any]:
    """init(config=...) as a plain dict."""
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return dict(config)
    if isinstance(config, (str, Path)):
        return load_yaml(config)
    if hasattr(config, "flag_values_dict"):  # absl.flags.FLAGS
        return dict(config.flag_values_dict())
    if hasattr(config, "__dict__"):  # argparse.Namespace and plain objects
        return dict(vars(config))
    raise UsageError(
        f"config must be a dict, argparse.Namespace, absl flags or a YAML path, "
        f"not {type(config).__name__}"
    )


def build(
    config: Any,
    include: Sequence[str] | None,
    exclude: Sequence[str] | None,
    paths: Sequence[str] | None,
    cwd: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(defaults, explicit): config-defaults.yaml and config_paths, then init's config."""
    if include and exclude:
        raise UsageError("pass config_include_keys or config_exclude_keys, not both")
    defaults: dict[str, Any] = {}
    defaults_file = cwd / DEFAULTS_FILE
    if defaults_file.is_file():
        defaults.update(load_yaml(defaults_file))
    for path in paths or ():
        defaults.update(load_yaml(path))
    explicit = as_dict(config)
    if include:
        explicit = {k: v for k, v in explicit.items() if k in set(include)}
    if exclude:
        explicit = {k: v for k, v in explicit.items() if k not in set(exclude)}
    return defaults, explicit
