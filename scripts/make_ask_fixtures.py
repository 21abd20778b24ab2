"""Generates the `signalkit ask` test fixture with Hugging Face transformers (run by make-fixtures.sh).

data/fixtures/tiny-qwen2/   a Qwen2-shaped decoder (2 layers, hidden 64, 4 heads, 2 KV heads) with
                            random weights, a byte-level BPE tokenizer trained here on the
                            headlines (tokenizer.json) and a ChatML chat_template in
                            tokenizer_config.json, weights as model.safetensors.
    questions.toml          the two questions asked.
    reference.json          per (headline, question): the prompt rendered by apply_chat_template
                            (add_generation_prompt=True), its token ids, and transformers'
                            last-position logits and softmax over the answer words' first tokens,
                            alone and in a left-padded batch (position ids from the mask, as
                            generate() sets them).
data/fixtures/tiny-llama/   the same for a Llama-shaped decoder (LlamaForCausalLM, same sizes), its
                            own tokenizer with a BOS token and a multi-line template that needs
                            trim_blocks/lstrip_blocks and bos_token.
data/fixtures/tiny-qwen3/   the same for a Qwen3-shaped decoder (per-head query/key RMSNorm, no
                            attention bias, head_dim 24 set apart from hidden / heads = 16).
  python make_ask_fixtures.py OUT [NAME]   # all fixtures, or only tiny-qwen2 / tiny-llama / tiny-qwen3
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import HEADLINES  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else "data/fixtures"
ANSWERS = ["YES", "NO", "UNKNOWN"]
QUESTIONS = [
    ("good_news", "Answer YES if good news, NO if bad news, or UNKNOWN if uncertain. "
                  "Is this headline good or bad for the stock price of {company} in the next month?\n{headline}"),
    ("beats", "Does this headline about {company} ({ticker}) say it beat expectations? "
              "Answer YES, NO or UNKNOWN.\nHeadline: {headline}"),
]
TICKERS = [("AAPL", "Apple"), ("TSLA", "Tesla"), ("NESN", "Nestlé"), ("GLE", "Société Générale"), ("7203", "Toyota")]
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA_TEMPLATE = """{{ bos_token }}
{%- for message in messages %}
    {% if message['role'] == 'user' %}
<|im_start|>user
{{ message['content'] }}<|im_end|>
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}"""
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BATCH = 8


def normalise(text):
    return " ".join(text.split())


def train_tokenizer(special=SPECIAL, template=CHATML, bos=None):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = HEADLINES + [q for _, q in QUESTIONS] + ANSWERS * 20 + ["user assistant system"] * 10
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=bos, chat_template=template, padding_side="left")


def tiny_model(tok, config_class=Qwen2Config, model_class=Qwen2ForCausalLM, **extra):
    cfg = config_class(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       tie_word_embeddings=False, rms_norm_eps=1e-6, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, **extra)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = model_class(cfg).eval()
    with torch.no_grad():  # larger random weights than the init, so answers are far from uniform
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.startswith("lm_head"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    return cfg, model


def prompts():
    out = []
    for i, h in enumerate(HEADLINES):
        ticker, company = TICKERS[i % len(TICKERS)]
        for name, q in QUESTIONS:
            content = q.format(headline=normalise(h), ticker=ticker, company=company)
            out.append({"headline": normalise(h), "ticker": ticker, "company": company, "question": name,
                        "content": content})
    return out


def references(tok, model, items):
    answer_ids = [tok.encode(a, add_special_tokens=False)[0] for a in ANSWERS]
    assert len(set(answer_ids)) == 3, answer_ids
    for it in items:
        messages = [{"role": "user", "content": it["content"]}]
        it["prompt"] = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        it["ids"] = tok(it["prompt"], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([it["ids"]])).logits[0, -1]
        it["logits"] = logits[answer_ids].tolist()
        it["probs"] = torch.softmax(logits[answer_ids], -1).tolist()
    for start in range(0, len(items), BATCH):
        chunk = items[start:start + BATCH]
        enc = tok([it["prompt"] for it in chunk], add_special_tokens=False, padding=True, return_tensors="pt")
        pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = model(**enc, position_ids=pos).logits[:, -1]
        for it, row in zip(chunk, logits):
            it["batched_probs"] = torch.softmax(row[answer_ids], -1).tolist()
    return answer_ids


def write_fixture(name, tok, template, config_class, model_class, **extra):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    cfg, model = tiny_model(tok, config_class, model_class, **extra)
    cfg.save_pretrained(d)
    tok.save_pretrained(d)
    tc_path = os.path.join(d, "tokenizer_config.json")
    tc = json.load(open(tc_path))
    tc["chat_template"] = template  # in tokenizer_config.json, as most hub checkpoints have it
    json.dump(tc, open(tc_path, "w"), ensure_ascii=False, indent=2)
    jinja = os.path.join(d, "chat_template.jinja")
    if os.path.exists(jinja):
        os.remove(jinja)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "questions.toml"), "w") as f:
        for name, q in QUESTIONS:
            f.write(f"[[ask.question]]\nname = {json.dumps(name)}\nprompt = {json.dumps(q, ensure_ascii=False)}\n\n")
    items = prompts()
    answer_ids = references(tok, model, items)
    json.dump({"answers": ANSWERS, "answer_ids": answer_ids, "batch": BATCH, "items": items},
              open(os.path.join(d, "reference.json"), "w"), ensure_ascii=False, indent=0)


def main(only=None):
    if only in (None, "tiny-qwen2"):
        write_fixture("tiny-qwen2", train_tokenizer(), CHATML, Qwen2Config, Qwen2ForCausalLM)
    if only in (None, "tiny-llama"):
        llama_tok = train_tokenizer(SPECIAL + ["<|begin_of_text|>"], LLAMA_TEMPLATE, "<|begin_of_text|>")
        write_fixture("tiny-llama", llama_tok, LLAMA_TEMPLATE, LlamaConfig, LlamaForCausalLM)
    if only in (None, "tiny-qwen3"):
        write_fixture("tiny-qwen3", train_tokenizer(), CHATML, Qwen3Config, Qwen3ForCausalLM,
                      head_dim=24, attention_bias=False)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[2] if len(sys.argv) > 2 else None)
    print("ask fixture written to", OUT, "with torch", torch.__version__)
