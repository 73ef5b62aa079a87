"""Datasette metadata for a store: facets and sort order of the run tables (served
by the get_metadata hook on 0.65, copied into configuration on 1.0: `_compat`)."""

from __future__ import annotations

from typing import Any

_RUN_TABLE: dict[str, Any] = {
    "facets": ["project", "state", "run_group", "job_type", {"array": "tags"}],
    "sort_desc": "created_at",
    "label_column": "name",
}

DESCRIPTION = (
    "Experiment runs recorded by runstore. Start with the run_list view; "
    "each run's name links to its page with charts."
)


def store_metadata() -> dict[str, Any]:
    """Metadata for one store database (the value under `databases.<name>`)."""
    return {
        "description": DESCRIPTION,
        "tables": {
            "runs": dict(_RUN_TABLE),
            "run_list": dict(_RUN_TABLE),
            "run_tags": {"facets": ["tag", "project"]},
            "config_values": {"facets": ["key", "project"]},
            "summary_values": {"facets": ["key", "project"]},
        },
    }


def metadata_for(names: list[str]) -> dict[str, Any]:
    """Instance-level metadata covering the store databases `names`."""
    return {"databases": {name: store_metadata() for name in names}}
