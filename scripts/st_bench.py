#!/usr/bin/env python3
"""Reference throughput of sentence-transformers on CPU, to compare with nova's
Rust (candle) embedder.

Usage:
    python scripts/st_bench.py MODEL_DIR TEXTS.jsonl [--batch 32] [--threads 2] [--limit N]

TEXTS.jsonl holds one JSON string per line; --limit takes the first N only
(host/benches/rag.rs compares with nova on the texts nova embedded). Prints
one JSON line:
{"impl": "sentence-transformers", "texts": N, "seconds": S, "texts_per_s": R,
 "batch": B, "threads": T}
"""

import argparse
import json
import sys
import time

# Same as scripts/embedding_parity.py: the model's trained length, not the
# tokenizer.json's 128.
MAX_SEQ_LENGTH = 256
WARMUP_TEXTS = 64


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("texts_jsonl")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="first N texts only (0: all)")
    args = ap.parse_args()

    texts = []
    with open(args.texts_jsonl, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            t = json.loads(line)
            if not isinstance(t, str):
                print(f"{args.texts_jsonl}:{lineno}: expected a JSON string", file=sys.stderr)
                return 2
            texts.append(t)
    if args.limit > 0:
        texts = texts[: args.limit]
    if not texts:
        print(f"{args.texts_jsonl}: no texts", file=sys.stderr)
        return 2

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model_dir, device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH

    def encode(batch_texts):
        return model.encode(
            batch_texts,
            batch_size=args.batch,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    with torch.inference_mode():
        encode(texts[:WARMUP_TEXTS])
        start = time.perf_counter()
        vecs = encode(texts)
        seconds = time.perf_counter() - start
    assert len(vecs) == len(texts)

    print(json.dumps({
        "impl": "sentence-transformers",
        "texts": len(texts),
        "seconds": round(seconds, 4),
        "texts_per_s": round(len(texts) / seconds, 2),
        "batch": args.batch,
        "threads": args.threads,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
