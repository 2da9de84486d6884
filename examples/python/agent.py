#!/usr/bin/env python3
"""A minimal agent that uses VRAM Keeper (standard library only).

Usage:
    vramkeeper serve &                      # or the desktop app
    python3 examples/python/agent.py        # VRAMKEEPER_URL=http://127.0.0.1:11435
    VRAMKEEPER_TOKEN=... python3 agent.py   # when the instance requires a token

It asks twice:
  1. through the proxy, with the alias "auto:code_generation": VRAM Keeper
     picks the best installed code model that fits the VRAM budget, loads it
     (evicting others if needed) and answers like Ollama's /api/chat;
  2. through the management API, POST /keeper/v1/best: it names the model it
     chose, why, and what it evicted; the agent then uses that model by name.
"""

import json
import os
import sys
import urllib.error
import urllib.request

BASE = os.environ.get("VRAMKEEPER_URL", "http://127.0.0.1:11435").rstrip("/")
TOKEN = os.environ.get("VRAMKEEPER_TOKEN", "")


def call(path, body=None, stream=False):
    """POSTs JSON (GETs without a body); yields each JSON line of the answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method="GET" if body is None else "POST")
    req.add_header("Content-Type", "application/json")
    if TOKEN:
        req.add_header("Authorization", "Bearer " + TOKEN)
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            if stream:
                for line in resp:  # Ollama streams one JSON object per line
                    if line.strip():
                        yield json.loads(line)
            else:
                yield json.load(resp)
    except urllib.error.HTTPError as e:
        err = json.load(e).get("error")
        sys.exit(f"{path}: HTTP {e.code}: {err}")
    except urllib.error.URLError as e:
        sys.exit(f"no VRAM Keeper at {BASE}: {e.reason}")


def chat(model, prompt):
    """Streams a chat answer to stdout; returns the model that answered."""
    answered_by = model
    for chunk in call("/api/chat", {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "options": {"num_predict": 64},
    }, stream=True):
        answered_by = chunk.get("model", answered_by)
        print(chunk.get("message", {}).get("content", ""), end="", flush=True)
    print()
    return answered_by


def main():
    task = sys.argv[1] if len(sys.argv) > 1 else "code_generation"
    prompt = "Write a Python function that reverses a string."

    # 1. Let the proxy choose: auto:TASK (or auto:TASK/ROLE).
    model = chat("auto:" + task, prompt)
    print(f"--- auto:{task} was answered by {model}")

    # 2. Ask the management API, then use the model by name.
    choice = next(call("/keeper/v1/best", {"task": task, "role": "coder"}))
    print(f"--- /keeper/v1/best chose {choice['model']}: {choice['reason']}")
    if choice["evicted"]:
        print(f"    evicted to make room: {', '.join(choice['evicted'])}")
    chat(choice["model"], prompt)


if __name__ == "__main__":
    main()
