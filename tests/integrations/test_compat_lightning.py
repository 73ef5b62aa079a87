"""Lightning's WandbLogger (log_model=True, watch) under the switch: a tiny model, two
epochs; the checkpoint artifact is downloaded and loaded back."""

from __future__ import annotations

from switched import GATED, column, history, only_run, run_switched

pytestmark = GATED

TRAIN = """
import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger


class Tiny(L.LightningModule):
    def __init__(self, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, i):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


torch.manual_seed(0)
x = torch.randn(32, 4)
data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
logger = WandbLogger(project="pl", log_model=True, save_dir="logs", name="tiny")
model = Tiny()
logger.watch(model, log="all", log_freq=2)
trainer = L.Trainer(max_epochs=2, logger=logger, log_every_n_steps=1, enable_progress_bar=False,
                    enable_model_summary=False, accelerator="cpu",
                    callbacks=[ModelCheckpoint(monitor="val_loss", dirpath="ckpt")])
trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=8),
            torch.utils.data.DataLoader(data, batch_size=8))
print("BEST", trainer.checkpoint_callback.best_model_path, logger.experiment.id)

# Then, with no run (wandb.Api, in the same process: one interpreter start less), the
# best checkpoint back from the store WandbLogger(save_dir="logs") made.
import os
import wandb

wandb.finish()
os.environ.update(RUNSTORE_DIR="logs", WANDB_PROJECT="pl")
path = WandbLogger.download_artifact(f"model-{logger.experiment.id}:best", save_dir="restored")
state = torch.load(path + "/model.ckpt", weights_only=False)
print("WEIGHT", state["state_dict"]["layer.weight"].tolist())
"""

def test_wandb_logger_logs_metrics_hparams_histograms_and_checkpoints(tmp_path):
    result = run_switched(TRAIN, tmp_path)
    best, run_id = result.stdout.split("BEST")[1].split("WEIGHT")[0].split()
    run = only_run(tmp_path / "logs", "pl")  # WandbLogger(save_dir=...) is the store's dir
    assert (run.id, run.name, run.state) == (run_id, "tiny", "finished")
    assert run.config == {"lr": 0.05}
    rows = history(run)
    steps = column(rows, "trainer/global_step")
    assert steps[0] == 0 and steps[-1] == 7 and all(type(s) is int for s in steps)
    assert len(column(rows, "train_loss")) == 8 and len(column(rows, "val_loss")) == 2
    assert all(type(v) is float for v in column(rows, "train_loss"))
    assert column(rows, "epoch") == sorted(column(rows, "epoch"))
    grads = column(rows, "gradients/layer.weight")
    params = column(rows, "parameters/layer.weight")
    assert len(grads) == 4 and len(params) >= 4  # every 2nd backward / forward
    assert grads[0]["_type"] == "histogram" and sum(grads[0]["values"]) == 4  # 4 weights
    assert run.summary["val_loss"] == column(rows, "val_loss")[-1]

    from runstore._artifacts import load

    artifact = load(tmp_path / "logs", f"model-{run_id}:latest", run.entity, "pl")
    assert artifact.type == "model" and {"best", "latest"} <= set(artifact.aliases)
    assert [e.path for e in artifact.files()] == ["model.ckpt"]
    assert artifact.metadata["original_filename"] == best.rsplit("/", 1)[-1]
    assert artifact.metadata["score"] == min(column(rows, "val_loss"))

    weight = result.stdout.split("WEIGHT")[1].strip()
    import torch

    saved = torch.load(best, weights_only=False)["state_dict"]["layer.weight"]
    assert weight == str(saved.tolist())
