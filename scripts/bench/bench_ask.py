"""Benchmark helper for scripts/bench/bench-ask.sh: signalkit ask against transformers on a
Qwen2-0.5B-shaped random checkpoint.

  prepare DIR N     writes DIR/model (Qwen2: hidden 896, 24 layers, 14 heads, 2 KV heads,
                    intermediate 4864, random weights; SIZE=1.5b: Qwen2.5-1.5B's hidden 1536, 28 layers,
                    12 heads, 2 KV heads, intermediate 8960, saved by save_pretrained in 2 GB shards with
                    model.safetensors.index.json; a 4,096-token byte-level BPE trained on the
                    sample headlines and a ChatML template), DIR/headlines.csv (the first N
                    distinct headlines of data/sample/headlines.csv) and DIR/questions.toml.
  torch DIR BATCH   prompts/s of transformers (sdpa attention, f32 or with TORCH_DTYPE=bf16 bf16
                    weights and activations, the logits of the last position only) over the same
                    prompts signalkit renders, shortest first in batches of BATCH, left-padded:
                    whole prompts, then with the question's shared prefix run once and its cache
                    expanded over each batch. Writes DIR/torch.json (f32 answers; torch-bf16.json).
  check DIR STORE [REF]   largest |p - p_transformers| over signalkit's stored answers (REF: the
                    answers file in DIR, default torch.json).
  gguf DIR TYPE     writes DIR/model-TYPE.gguf (q8_0, q4_0, …: what gguf-py quantises) of DIR/model
                    with llama.cpp's gguf-py writer, as convert_hf_to_gguf.py names and lays it out.
"""
import copy
import csv
import json
import os
import sys
import time

import torch

ANSWERS = ["YES", "NO", "UNKNOWN"]
QUESTION = ("Answer YES if good news, NO if bad news, or UNKNOWN if uncertain. "
            "Is this headline good or bad for the stock price of the company in the next month?\n{headline}")
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def normalise(text):
    return " ".join(text.split())


def sample_headlines():
    with open("data/sample/headlines.csv", newline="") as f:
        return [normalise(r["headline"]) for r in csv.DictReader(f)]


def prepare(d, n):
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    heads = sample_headlines()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(heads[:20000] + [QUESTION] * 5 + ANSWERS * 20 + ["user assistant"] * 10, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  chat_template=CHATML, padding_side="left")
    big = os.environ.get("SIZE", "0.5b") == "1.5b"
    shape = (dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12) if big
             else dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14))
    cfg = Qwen2Config(vocab_size=len(tok), **shape, num_key_value_heads=2, max_position_embeddings=32768,
                      rope_theta=1000000.0, tie_word_embeddings=True, rms_norm_eps=1e-6,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).eval()
    m = os.path.join(d, "model")
    os.makedirs(m, exist_ok=True)
    cfg.save_pretrained(m)
    tok.save_pretrained(m)
    tc_path = os.path.join(m, "tokenizer_config.json")
    tc = json.load(open(tc_path))
    tc["chat_template"] = CHATML
    json.dump(tc, open(tc_path, "w"), indent=2)
    jinja = os.path.join(m, "chat_template.jinja")
    if os.path.exists(jinja):
        os.remove(jinja)
    if big:
        model.save_pretrained(m, max_shard_size="2GB")
        cfg.save_pretrained(m)
    else:
        state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
        save_file(state, os.path.join(m, "model.safetensors"), metadata={"format": "pt"})
    seen, rows = set(), []
    for h in heads:
        if h and h not in seen:
            seen.add(h)
            rows.append(h)
        if len(rows) == n:
            break
    with open(os.path.join(d, "headlines.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ticker", "published_at", "headline"])
        for i, h in enumerate(rows):
            w.writerow([f"T{i}", "2024-01-02", h])
    with open(os.path.join(d, "questions.toml"), "w") as f:
        f.write(f"[[ask.question]]\nname = \"good_news\"\nprompt = {json.dumps(QUESTION)}\n")
    print(f"prepared {m}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters, vocab {len(tok)}; "
          f"{len(rows)} headlines")


def torch_dtype():
    return {"f32": torch.float32, "bf16": torch.bfloat16}[dtype_name()]


def dtype_name():
    """TORCH_DTYPE (bench-ask.sh --all), else DTYPE (bench-ask.sh's single run), else f32."""
    return os.environ.get("TORCH_DTYPE", os.environ.get("DTYPE", "f32"))


def load(d):
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(os.path.join(d, "model"))
    model = Qwen2ForCausalLM.from_pretrained(os.path.join(d, "model"), dtype=torch_dtype(),
                                             attn_implementation="sdpa").eval()
    with open(os.path.join(d, "headlines.csv"), newline="") as f:
        heads = [normalise(r["headline"]) for r in csv.DictReader(f)]
    prompts = [tok.apply_chat_template([{"role": "user", "content": QUESTION.replace("{headline}", h)}],
                                       add_generation_prompt=True, tokenize=False) for h in heads]
    # signalkit's order: shortest rendered prompt (bytes) first, ties in file order.
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i].encode()), i))
    return tok, model, heads, prompts, order


def probs(logits, answer_ids):
    return torch.softmax(logits[:, answer_ids].double(), -1).tolist()


def whole(tok, model, prompts, order, batch, answer_ids):
    out = {}
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        enc = tok([prompts[i] for i in idx], add_special_tokens=False, padding=True, return_tensors="pt")
        pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        logits = model(**enc, position_ids=pos, logits_to_keep=1, use_cache=False).logits[:, -1]
        out.update(zip(idx, probs(logits, answer_ids)))
    return out


def with_prefix(tok, model, prompts, order, batch, answer_ids):
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    p = 0
    while all(len(r) > p + 1 and r[p] == ids[0][p] for r in ids):
        p += 1
    prefix = model(torch.tensor([ids[0][:p]]), use_cache=True).past_key_values
    out = {}
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        rest = [ids[i][p:] for i in idx]
        n = max(len(r) for r in rest)
        input_ids = torch.tensor([[tok.pad_token_id] * (n - len(r)) + r for r in rest])
        suffix_mask = torch.tensor([[0] * (n - len(r)) + [1] * len(r) for r in rest])
        mask = torch.cat([torch.ones(len(idx), p, dtype=torch.long), suffix_mask], 1)
        pos = p + (suffix_mask.cumsum(-1) - 1).clamp(min=0)
        cache = copy.deepcopy(prefix)
        cache.batch_repeat_interleave(len(idx))
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                       logits_to_keep=1, use_cache=True).logits[:, -1]
        out.update(zip(idx, probs(logits, answer_ids)))
    return out, p


def bench(d, batch):
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    tok, model, heads, prompts, order = load(d)
    answer_ids = [tok.encode(a, add_special_tokens=False)[0] for a in ANSWERS]
    with torch.inference_mode():
        whole(tok, model, prompts, order[:batch], batch, answer_ids)  # warm-up
        t = time.perf_counter()
        full = whole(tok, model, prompts, order, batch, answer_ids)
        t_full = time.perf_counter() - t
        t = time.perf_counter()
        cached, p = with_prefix(tok, model, prompts, order, batch, answer_ids)
        t_cached = time.perf_counter() - t
    worst = max(abs(a - b) for i in full for a, b in zip(full[i], cached[i]))
    n = len(prompts)
    toks = sum(len(tok(x, add_special_tokens=False)["input_ids"]) for x in prompts) / n
    dt = dtype_name()
    print(f"transformers {dt} whole prompts: {n / t_full:.2f} prompts/s")
    print(f"transformers {dt} prefix cache: {n / t_cached:.2f} prompts/s (prefix {p} of {toks:.1f} tokens on average; "
          f"max |dp| vs whole {worst:.1e})")
    import resource
    print(f"transformers peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GiB")
    name = "torch.json" if dt == "f32" else f"torch-{dt}.json"
    json.dump({h: full[i] for i, h in enumerate(heads)}, open(os.path.join(d, name), "w"))


def check(d, store, ref_name="torch.json"):
    import pyarrow.parquet as pq

    ref = json.load(open(os.path.join(d, ref_name)))
    worst, n = 0.0, 0
    for root, _, files in os.walk(store):
        for f in files:
            if f.startswith("shard-") and f.endswith(".parquet"):
                t = pq.read_table(os.path.join(root, f)).to_pydict()
                for i, text in enumerate(t["text"]):
                    got = [t["p_yes"][i], t["p_no"][i], t["p_unknown"][i]]
                    worst = max(worst, max(abs(a - b) for a, b in zip(got, ref[text])))
                    n += 1
    print(f"{n} answers: max |p_signalkit - p_transformers ({ref_name})| {worst:.1e}")


def write_gguf(d, qname):
    import gguf
    import numpy as np
    from safetensors.numpy import load_file
    names = [("model.embed_tokens", "token_embd"), ("model.norm", "output_norm"), ("lm_head", "output"),
             ("model.layers.", "blk."), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
             ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"), ("mlp.gate_proj", "ffn_gate"),
             ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
             ("post_attention_layernorm", "ffn_norm"), ("input_layernorm", "attn_norm")]
    m = os.path.join(d, "model")
    cfg = json.load(open(os.path.join(m, "config.json")))
    qtype = getattr(gguf.GGMLQuantizationType, qname.upper())
    w = gguf.GGUFWriter(os.path.join(d, f"model-{qname}.gguf"), "qwen2")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_dimension_count(cfg["hidden_size"] // cfg["num_attention_heads"])
    w.add_rope_freq_base(cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    files = [f for f in sorted(os.listdir(m)) if f.endswith(".safetensors")]
    for f in files:
        for hf, t in sorted(load_file(os.path.join(m, f)).items()):
            out = hf
            for a, b in names:
                out = out.replace(a, b)
            t = t.astype(np.float32)
            if t.ndim == 2:
                w.add_tensor(out, gguf.quants.quantize(t, qtype), raw_dtype=qtype)
            else:
                w.add_tensor(out, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {d}/model-{qname}.gguf")


if __name__ == "__main__":
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "prepare":
        prepare(d, int(sys.argv[3]))
    elif cmd == "gguf":
        write_gguf(d, sys.argv[3])
    elif cmd == "torch":
        bench(d, int(sys.argv[3]))
    else:
        check(d, *sys.argv[3:5])
