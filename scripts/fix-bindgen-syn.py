"""Keeps bindgen on syn 2 in Cargo.lock.

bindgen 0.73 accepts syn ">=2, <4" but prettyplease 0.2 (which it calls) only works with syn 2;
when cargo re-resolves it picks syn 3 and bindgen fails to compile (E0277 ParseQuote). Run this
after any change to Cargo.toml's dependencies: python3 scripts/fix-bindgen-syn.py
"""
import re
import sys

lock = open("Cargo.lock").read()
start = lock.index('name = "bindgen"')
end = lock.index("[[package]]", start)
block = lock[start:end]
fixed = re.sub(r'"syn 3\.[0-9.]+"', lambda m: next(iter(re.findall(r'"syn 2\.[0-9.]+"', lock)), m.group(0)), block)
if fixed != block:
    open("Cargo.lock", "w").write(lock[:start] + fixed + lock[end:])
    print("Cargo.lock: bindgen now uses syn 2")
else:
    print("Cargo.lock: bindgen already on syn 2", file=sys.stderr)
