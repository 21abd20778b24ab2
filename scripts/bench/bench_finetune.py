"""PyTorch side of bench-finetune.sh: the labelled texts, and transformers' training throughput.

  python bench_finetune.py prepare DIR N                  # N distinct real headlines, seeded labels
  python bench_finetune.py torch DIR MODEL BATCH MAXLEN EPOCHS   # texts/s per epoch

The batches are the ones `signalkit finetune` trains on: signalkit shuffles, sorts by token
length within windows of 50 batches and cuts batches; with N <= 50 x BATCH that is one window,
so its batches have exactly the shapes (rows x padded length) of the length-sorted texts cut in
order, which is what this side runs (the order of the batches does not change the work).
Same model (a new 3-class head on MODEL), AdamW (lr 2e-5, weight decay 0.01 on every
parameter), linear warm-up 10 % then decay, clip_grad_norm_(1.0), dropout at the config's rates
(model.train()). Env: THREADS (torch.set_num_threads), REAL (headlines parquet).
"""
import os
import sys
import time

import pyarrow.parquet as pq
import torch
from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup

REAL = os.environ.get("REAL") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "data", "real-2011-2013", "headlines.parquet")
LABELS = ["negative", "neutral", "positive"]


def prepare(d, n):
    import numpy as np
    import pandas as pd
    os.makedirs(d, exist_ok=True)
    t = pq.read_table(REAL, columns=["headline"]).to_pandas()
    t["headline"] = [" ".join(str(h).split()) for h in t["headline"]]
    t = t[t["headline"] != ""].drop_duplicates("headline").sample(n=n, random_state=0)
    labels = np.random.default_rng(0).integers(0, 3, size=n)
    pd.DataFrame({"text": t["headline"].to_numpy(), "label": [LABELS[k] for k in labels]}).to_csv(
        f"{d}/labelled.csv", index=False)
    print(f"prepared {n} distinct real headlines with seeded labels in {d}/labelled.csv")


def bench(d, model_dir, batch, max_len, epochs):
    import pandas as pd
    threads = int(os.environ.get("THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    df = pd.read_csv(f"{d}/labelled.csv")
    texts, ys = list(df["text"]), [LABELS.index(v) for v in df["label"]]
    if len(texts) > 50 * batch:
        sys.exit(f"needs N <= 50 x batch ({50 * batch}) for the batches to be signalkit's")
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    model.train()
    lens = [len(ids) for ids in tok(texts, truncation=True, max_length=max_len)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lens[i])
    batches = []
    for s in range(0, len(order), batch):  # tokenised ahead, as signalkit's training loop has them
        idx = order[s:s + batch]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        batches.append((enc, torch.tensor([ys[i] for i in idx])))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    total = epochs * len(batches)
    sched = get_linear_schedule_with_warmup(opt, round(total * 0.1), total)

    def step(enc, y):
        loss = model(**enc, labels=y).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        return loss.item()

    shapes = sorted((tuple(e["input_ids"].shape) for e, _ in batches), key=lambda s: (s[1], s[0]))
    print(f"pytorch {torch.__version__} transformers, attention {model.config._attn_implementation}, {threads} threads, "
          f"{len(texts)} texts in {len(batches)} batches, padded tokens {sum(a * b for a, b in shapes)}", flush=True)
    print(f"pytorch kernels: cpu capability {torch.backends.cpu.get_cpu_capability()}, "
          f"mkldnn {torch.backends.mkldnn.is_available()}, mkl {torch.backends.mkl.is_available()}", flush=True)
    for epoch in range(1, epochs + 1):
        t0, loss = time.perf_counter(), 0.0
        for enc, y in batches:
            loss += step(enc, y)
        dt = time.perf_counter() - t0
        print(f"pytorch epoch {epoch}: {len(texts) / dt:.1f} texts/s (loss {loss / len(batches):.4f}, {dt:.1f} s)", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], int(sys.argv[3]))
    else:
        bench(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
