"""transformers' Trainer(report_to="wandb") under the switch: a tiny BERT built from a
config (no download), trained 3 steps, WANDB_LOG_MODEL=checkpoint (the base model, each
checkpoint folder, the final model as artifact versions); then a second run of the same
script uses the final model and loads it back with from_pretrained."""

from __future__ import annotations

from switched import GATED, column, history, run_switched

pytestmark = GATED

TRAIN = """
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=32, num_labels=2)
torch.manual_seed(0)
model = BertForSequenceClassification(config)


class Data(torch.utils.data.Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"input_ids": torch.randint(0, 50, (8,), generator=g), "labels": torch.tensor(i % 2)}


args = TrainingArguments(output_dir="out", max_steps=3, per_device_train_batch_size=4,
                         logging_steps=1, report_to="wandb", save_strategy="steps", save_steps=3,
                         use_cpu=True, run_name="tiny-bert", learning_rate=1e-3)
Trainer(model=model, args=args, train_dataset=Data()).train()

# A second run, in the same process (one interpreter start less), uses the final model.
import wandb

wandb.finish()
run = wandb.init(project="hf", job_type="eval")
artifact = run.use_artifact("model-tiny-bert:final_model", type="model")
model = BertForSequenceClassification.from_pretrained(artifact.download())
print("PARAMS", model.num_parameters(), run.id)
wandb.finish()
"""

def test_trainer_report_to_wandb_logs_history_config_summary_and_the_model(tmp_path):
    result = run_switched(TRAIN, tmp_path, WANDB_PROJECT="hf", WANDB_LOG_MODEL="checkpoint")
    params, user = result.stdout.split("PARAMS")[1].split()
    import runstore

    api = runstore.Api(tmp_path / "store")
    (run,) = [r for r in api.runs("hf") if r.id != user]
    assert (run.name, run.state) == ("tiny-bert", "finished")
    rows = history(run)
    steps = column(rows, "train/global_step")
    assert steps[:3] == [1, 2, 3] and all(type(s) is int for s in steps)
    losses = column(rows, "train/loss")
    assert len(losses) == 3 and all(type(v) is float for v in losses)
    assert column(rows, "train/learning_rate")[0] == 1e-3
    assert [row["_step"] for row in rows] == list(range(len(rows)))
    # step_sync: every row carries the step metric transformers defines
    assert all("train/global_step" in row for row in rows)
    assert run.config["hidden_size"] == 16 and run.config["learning_rate"] == 1e-3
    assert run.config["max_steps"] == 3 and type(run.config["model/num_parameters"]) is int
    assert type(run.summary["train_runtime"]) is float and run.summary["train/global_step"] == 3
    assert run.summary["train_loss"] == sum(losses) / 3 or abs(
        run.summary["train_loss"] - sum(losses) / 3) < 1e-6

    assert int(params) == run.config["model/num_parameters"]
    from runstore._artifacts import load

    base = load(tmp_path / "store", "model-tiny-bert:base_model", run.entity, "hf")
    saved = load(tmp_path / "store", "model-tiny-bert:checkpoint_global_step_3", run.entity,
                 "hf")
    final = load(tmp_path / "store", "model-tiny-bert:latest", run.entity, "hf")
    assert (base.version, saved.version, final.version) == ("v0", "v1", "v2")
    assert "epoch_1.0" in saved.aliases
    on_disk = tmp_path / "out" / "checkpoint-3"
    assert {e.path for e in saved.files()} == {  # add_dir of the checkpoint folder
        p.relative_to(on_disk).as_posix() for p in on_disk.rglob("*") if p.is_file()}
    assert sorted(e.path for e in base.files()) == ["model_architecture.txt"]
    assert {"config.json", "model.safetensors"} <= {e.path for e in final.files()}
    assert final.logged_by() == run.id and final.used_by() == [user]
    assert final.metadata["final_model"] is True
    assert api.run(f"hf/{user}").job_type == "eval"
