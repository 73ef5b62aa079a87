"""Datasette metadata for a store: facets, sort order and titles of the run tables
(served by the get_metadata hook on 0.65; on 1.0, table options are copied into
configuration and titles and the description into the metadata tables: `compat`)."""

from __future__ import annotations

from typing import Any

RUN_LIST = "run_list"
RUN_LIST_TITLE = "Runs"

_RUN_TABLE: dict[str, Any] = {
    "facets": ["project", "state", "run_group", "job_type", {"array": "tags"}],
    "sort_desc": "created_at",
    "label_column": "name",
    # ?_search= over names, notes, tags and config (schema 012: FTS5 set up by sqlite-utils;
    # its rowid is the run_key)
    "fts_table": "run_records_fts",
    "fts_pk": "run_key",
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
            RUN_LIST: {**_RUN_TABLE, "title": RUN_LIST_TITLE},
            "run_tags": {"facets": ["tag", "project"]},
            "config_values": {"facets": ["key", "project"]},
            "summary_values": {"facets": ["key", "project"]},
        },
    }


def metadata_for(names: list[str]) -> dict[str, Any]:
    """Instance-level metadata covering the store databases `names` (metadata given
    to Datasette still wins: 0.65 merges it last)."""
    return {"databases": {name: store_metadata() for name in names}}
