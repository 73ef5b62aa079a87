"""Integrations with other libraries, each imported only when a run asks for it.

Each module that init() starts exposes `start(run) -> stop | None`: it begins serving
`run` and returns the function that ends that (run when the run finishes), or None,
after a warning, when the library it needs is missing. Those that patch a library's
classes do it through `_patching`, so they share one set of rules.

- `tensorboard`: init(sync_tensorboard=True), scalars written to TensorBoard logged too;
- `gym`: init(monitor_gym=True), gymnasium's RecordVideo videos logged;
- `tensorboard_import`: `runstore import-tensorboard`, event files as finished runs.
"""
