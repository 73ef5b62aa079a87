"""monitor_gym when it cannot attach: the warning names the gymnasium that is installed
(issue 14; CleanRL's gymnasium 0.29 used to be reported as "not installed")."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_a_gymnasium_without_a_known_recorder_is_named_in_the_warning(tmp_path):
    fake = tmp_path / "site" / "gymnasium"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('__version__ = "0.21.0"\n')
    code = textwrap.dedent(f"""
        import warnings, runstore
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = runstore.init(dir={str(tmp_path / "store")!r}, project="p", monitor_gym=True)
        run.log({{"x": 1}})
        run.finish()
        print([str(w.message) for w in caught])
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    env.update(PYTHONPATH=str(tmp_path / "site"), RUNSTORE_SILENT="true")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "gymnasium 0.21.0 has no RecordVideo runstore can attach to" in result.stdout
    assert "0.26 to 0.29" in result.stdout
