"""Measure the website's package page under wrk, with warm caches.

    python benchmarks/web_bench.py [--packages 50] [--workers 2] [--duration 10] [--connections 8,32]

Starts `ketch serve` on a free loopback port with a fresh data dir, publishes packages with a
realistic README (headings, a table, several highlighted code blocks, badges, relative links),
requests every package page once to warm the caches (README HTML, parsed packument, download
figures), then runs wrk against the package pages as a browser asks for them (Accept: text/html),
rotating over every package, once per connection count. Also measures the JSON packument on the
same URLs for comparison. Prints a table and writes it as JSON to benchmarks/out/web.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from common import free_port, npm_publish_body, pack  # noqa: E402
from common import wrk as _wrk  # noqa: E402

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

README = """# {name}

[![build](https://img.shields.io/badge/build-passing-green.svg)](https://github.com/example/{name}/actions)
[![npm](https://img.shields.io/npm/v/{name}.svg)](https://www.npmjs.com/package/{name})

> A small, fast utility that does one thing well. See [the docs](docs/README.md) and [API](#api).

## Install

```sh
npm install {name}
```

## Usage

```js
import {{ parse, format }} from '{name}';

const value = parse('2024-01-01T00:00:00Z', {{ strict: true }});
console.log(format(value, 'YYYY-MM-DD')); // 2024-01-01
```

## API

| Function | Arguments | Returns |
|----------|-----------|---------|
| `parse` | `(text, options?)` | `Value` |
| `format` | `(value, pattern)` | `string` |
| `isValid` | `(value)` | `boolean` |

### Options

- **strict** (`boolean`, default `false`): throw on invalid input.
- **locale** (`string`, default `"en"`): the locale for names of months.
- ~~**legacy**~~: removed in 2.0.

```ts
export interface Options {{
  strict?: boolean;
  locale?: string;
}}
```

## License

MIT © Example
""" + "\nMore text about the library, its design and its trade-offs. " * 40


def wrk(url: str, paths_file: Path, duration: int, connections: int, accept: str) -> dict:
    r = _wrk(url, paths_file, duration, connections, accept)
    return {k: r[k] for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "non_2xx", "socket_errors")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="8,32")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")

    work = Path(tempfile.mkdtemp(prefix="ketch-web-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "ketch", "serve", "--port", str(port), "--data-dir",
                               str(work / "data"), "--workers", str(args.workers)],
                              stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    results: dict = {}
    try:
        client = httpx.Client(base_url=base, timeout=30, trust_env=False)
        for _ in range(150):
            try:
                if client.get("/-/ping").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        token = client.put("/-/user/org.couchdb.user:webbench", json={
            "name": "webbench", "password": "bench-password", "email": "webbench@example.com"}).json()["token"]
        auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        names = []
        for i in range(args.packages):
            name = f"web-bench-{i}" if i % 4 else f"@webbench/pkg-{i}"
            for v in range(1 + i % 5):
                version = f"1.{v}.0"
                readme = README.format(name=name)
                manifest = {"name": name, "version": version, "description": f"Benchmark package {i} for the website",
                            "license": "MIT", "keywords": ["bench", "web", f"k{i % 7}"],
                            "repository": {"type": "git", "url": f"git+https://github.com/example/{name}.git"},
                            "dependencies": {n: "^1.0.0" for n in names[-3:]}}
                data = pack({"package.json": json.dumps(manifest).encode(),
                             "README.md": readme.encode(),
                             "index.js": b"module.exports = () => 42;\n" * 40})
                body = npm_publish_body(manifest, data, readme=readme)
                client.put("/" + name.replace("/", "%2f"), content=json.dumps(body), headers=auth).raise_for_status()
            names.append(name)
        paths = work / "pages.txt"
        paths.write_text("\n".join("/" + n for n in names) + "\n")
        for n in names:  # warm every cache on both workers
            for _ in range(args.workers * 2):
                r = client.get("/" + n, headers={"accept": BROWSER_ACCEPT})
                assert r.status_code == 200 and "text/html" in r.headers["content-type"], (n, r.status_code)
        for c in [int(x) for x in args.connections.split(",")]:
            results[f"package page (HTML), c={c}"] = wrk(base, paths, args.duration, c, BROWSER_ACCEPT)
        results["packument (JSON, same URLs), c=32"] = wrk(base, paths, args.duration, 32, "application/json")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)

    print(f"\nKetch website, {args.packages} packages, {args.workers} workers, wrk -t2 -d{args.duration}s, warm caches\n")
    print(f"{'run':40} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for label, r in results.items():
        print(f"{label:40} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p90_ms']:8.2f} {r['p99_ms']:8.2f} {r['non_2xx']:8d}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "web.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
