"""The plugin's pages and JSON routes, one module per page (routed in `routes.ROUTES`):
`run` (the run page, its chart data and status), `run_output` (its media, system
metrics and console), `media` (the blob route), `edit` (edits of name, tags, notes),
`compare` (runs side by side) and `home` (the run list as a store's home)."""
