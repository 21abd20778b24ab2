"""Loads a folder written by `signalkit finetune` with Hugging Face transformers and prints the
softmax class probabilities of the given texts as JSON (the test compares them with signalkit's
own outputs for the same folder).

usage: python scripts/check_finetune_reload.py FOLDER MAX_LEN TEXT...
"""
import json
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main() -> None:
    folder, max_len, texts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    out = []
    with torch.no_grad():
        for t in texts:  # one at a time: no padding in play
            enc = tok(t, truncation=True, max_length=max_len, return_tensors="pt")
            out.append(torch.softmax(model(**enc).logits[0], -1).tolist())
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    print(json.dumps({"labels": labels, "probs": out}))


if __name__ == "__main__":
    main()
