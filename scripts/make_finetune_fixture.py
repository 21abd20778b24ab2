"""Training-parity fixture for `signalkit finetune` (run with .venv-fixtures' python, after
make_fixtures.py has written data/fixtures/tiny-finbert).

Writes data/fixtures/finetune-reference.json: from the tiny FinBERT-shaped checkpoint, on one
fixed batch of four headlines (dropout off: model.eval()), transformers + torch take AdamW steps
(betas 0.9/0.999, eps 1e-8, weight decay 0.01 on every parameter), with
get_linear_schedule_with_warmup and clip_grad_norm_(1.0) — the recipe signalkit implements.
Two runs: "one" (1 step, no warm-up, 10 total) and "five" (5 steps, 2 warm-up, 10 total). For
each: the loss before every step, every parameter's sum after the last step, and the full values
of a few small parameters.
"""
import json
import sys

import torch
from transformers import BertForSequenceClassification, BertTokenizer, get_linear_schedule_with_warmup

OUT = sys.argv[1] if len(sys.argv) > 1 else "data/fixtures"
MODEL = f"{OUT}/tiny-finbert"
TEXTS = [
    "Apple beats estimates and raises guidance",
    "Shares fall after the profit warning",
    "Company holds annual meeting",
    "Regulator fines the bank over reporting failures in its trading unit",
]
LABELS = [0, 1, 2, 1]
LR, WD, MAX_NORM = 1e-3, 0.01, 1.0
VALUES = [
    "classifier.weight",
    "classifier.bias",
    "bert.pooler.dense.bias",
    "bert.embeddings.LayerNorm.weight",
    "bert.encoder.layer.0.attention.self.query.weight",
    "bert.encoder.layer.1.output.LayerNorm.bias",
]


def run(steps, warmup, total):
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(MODEL, attn_implementation="eager").float()
    model.eval()  # dropout off
    tok = BertTokenizer.from_pretrained(MODEL)
    batch = tok(TEXTS, padding="longest", truncation=True, max_length=64, return_tensors="pt")
    batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    labels = torch.tensor(LABELS)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WD)
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, MAX_NORM)
        opt.step()
        sched.step()
        losses.append(loss.item())
    named = dict(model.named_parameters())
    return {
        "steps": steps,
        "warmup_steps": warmup,
        "total_steps": total,
        "losses": losses,
        "sums": {k: v.detach().double().sum().item() for k, v in named.items()},
        "values": {k: named[k].detach().flatten().tolist() for k in VALUES},
    }


out = {
    "texts": TEXTS,
    "labels": LABELS,
    "lr": LR,
    "weight_decay": WD,
    "max_grad_norm": MAX_NORM,
    "runs": {"one": run(1, 0, 10), "five": run(5, 2, 10)},
}
with open(f"{OUT}/finetune-reference.json", "w") as f:
    json.dump(out, f)
print(f"wrote {OUT}/finetune-reference.json")
