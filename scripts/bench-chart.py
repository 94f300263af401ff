#!/usr/bin/env python3
"""Chart and table of the benchmark ratios (issue 6) from criterion's JSON output.

Reads target/criterion/**/new/{benchmark,estimates}.json (written by `cargo bench -p
mcproof-benches`) and target/criterion/limiter_memory.json (written by the limiter_memory
bench), then:

  * prints a Markdown table of medians and of each ratio against its baseline (--table);
  * writes a PNG bar chart of the ratios, with the issue's targets marked (docs/bench-ratios.png).

Every ratio is taken between two cases of the same criterion group, measured back to back in
the same run. Uses matplotlib when importable; otherwise writes an SVG next to the PNG path
with no third-party dependency.

Usage: python3 scripts/bench-chart.py [--criterion DIR] [--out docs/bench-ratios.png] [--table]
A venv with matplotlib: python3 -m venv target/bench-venv && target/bench-venv/bin/pip install matplotlib
"""

import argparse
import glob
import json
import os
import sys

# (label, numerator id, denominator id, target ratio or None, note)
RATIOS = [
    ("limiter 1 key vs governor", "rate_limiter/1_key/mcproof", "rate_limiter/1_key/governor", None, ""),
    ("limiter 10k keys vs governor", "rate_limiter/10k_keys/mcproof", "rate_limiter/10k_keys/governor", 0.7, "<= 0.7x"),
    ("limiter 10k keys, time passed in vs governor", "rate_limiter/10k_keys/mcproof_time_given",
     "rate_limiter/10k_keys/governor", None, ""),
    ("limiter 1M keys vs governor", "rate_limiter/1m_keys/mcproof", "rate_limiter/1m_keys/governor", None, ""),
    ("limiter new key (generous) vs governor", "rate_limiter/new_key/mcproof/generous",
     "rate_limiter/new_key/governor/generous", None, ""),
    ("limiter new key (IP quota) vs governor", "rate_limiter/new_key/mcproof/ip_default",
     "rate_limiter/new_key/governor/ip_default", None, ""),
    ("limiter 2 threads, 1 key vs governor", "rate_limiter/2_threads_1_key/mcproof",
     "rate_limiter/2_threads_1_key/governor", None, ""),
    ("limiter 2 threads, 10k keys vs governor", "rate_limiter/2_threads_10k_keys/mcproof",
     "rate_limiter/2_threads_10k_keys/governor", None, ""),
    ("HS256 vs jsonwebtoken", "token_verify/jwt_hs256/mcproof", "token_verify/jwt_hs256/jsonwebtoken", 0.5, "<= 0.5x"),
    ("HS256 vs raw HMAC-SHA256", "token_verify/jwt_hs256/mcproof", "token_verify/jwt_hs256/raw_floor", 3.0, "<= 3x"),
    ("EdDSA vs jsonwebtoken", "token_verify/jwt_eddsa/mcproof", "token_verify/jwt_eddsa/jsonwebtoken", None, ""),
    ("EdDSA vs raw Ed25519 verify", "token_verify/jwt_eddsa/mcproof", "token_verify/jwt_eddsa/raw_floor", 1.1, "<= 1.1x"),
    ("ES256 vs jsonwebtoken", "token_verify/jwt_es256/mcproof", "token_verify/jwt_es256/jsonwebtoken", None, ""),
    ("ES256 vs raw P-256 verify", "token_verify/jwt_es256/mcproof", "token_verify/jwt_es256/raw_floor", None, ""),
    ("RS256 jsonwebtoken vs raw (no mcproof RS256)", "token_verify/jwt_rs256/jsonwebtoken",
     "token_verify/jwt_rs256/raw_floor", None, ""),
    ("API key vs raw SHA-256", "token_verify/api_key/mcproof", "token_verify/api_key/raw_sha256", 2.0, "<= 2x"),
    ("JSON-RPC parse (tools/call) vs Value", "request_path/jsonrpc_parse/mcproof_strict/tools_call",
     "request_path/jsonrpc_parse/serde_json_value/tools_call", None, ""),
    ("schema validate vs jsonschema is_valid", "request_path/schema_validate/mcproof/query_products_valid",
     "request_path/schema_validate/jsonschema_is_valid/query_products_valid", None, ""),
    ("secure tools/call (token) vs no security", "overhead/tools_call/secure_http/cached_token",
     "overhead/tools_call/no_security_http", None, ""),
    ("secure tools/call (token) vs public HTTP", "overhead/tools_call/secure_http/cached_token",
     "overhead/tools_call/public_http", None, ""),
    ("secure tools/call (token) vs Tool::call", "overhead/tools_call/secure_http/cached_token",
     "overhead/tools_call/tool_call", None, ""),
]


def load(criterion_dir):
    """full_id -> (median ns, lower ns, upper ns)."""
    out = {}
    for est_path in glob.glob(os.path.join(criterion_dir, "**", "new", "estimates.json"), recursive=True):
        bench_path = os.path.join(os.path.dirname(est_path), "benchmark.json")
        try:
            with open(bench_path) as f:
                bench = json.load(f)
            with open(est_path) as f:
                est = json.load(f)
        except (OSError, ValueError):
            continue
        median = est["median"]
        out[bench["full_id"]] = (
            median["point_estimate"],
            median["confidence_interval"]["lower_bound"],
            median["confidence_interval"]["upper_bound"],
            bench.get("throughput"),
        )
    return out


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def ratios(data):
    rows = []
    for label, num, den, target, note in RATIOS:
        if num in data and den in data:
            r = data[num][0] / data[den][0]
            rows.append((label, num, den, r, target, note))
    return rows


def print_table(data):
    print("| benchmark | median | 95% CI of median | throughput |")
    print("|---|---:|---|---:|")
    for full_id in sorted(data):
        med, lo, hi, thr = data[full_id]
        tp = ""
        if thr and "Bytes" in thr:
            tp = f"{thr['Bytes'] / (med / 1e9) / 1e6:.0f} MB/s"
        print(f"| `{full_id}` | {fmt_time(med)} | {fmt_time(lo)} – {fmt_time(hi)} | {tp} |")
    print()
    print("| ratio | value | target | met |")
    print("|---|---:|---|---|")
    for label, _num, _den, r, target, note in ratios(data):
        met = "" if target is None else ("yes" if r <= target else "**no**")
        print(f"| {label} | {r:.2f}x | {note} | {met} |")
    secure, bare = data.get("overhead/tools_call/secure_http/cached_token"), data.get("overhead/tools_call/no_security_http")
    if secure and bare:
        added = (secure[0] - bare[0]) / 1e3
        print()
        print(f"Full security stack, cached token: {added:+.2f} µs per tools/call "
              f"({fmt_time(secure[0])} vs {fmt_time(bare[0])} with no security; target <= 10 µs: "
              f"{'met' if added <= 10 else 'missed'})")


def memory_rows(criterion_dir):
    try:
        with open(os.path.join(criterion_dir, "limiter_memory.json")) as f:
            return json.load(f)["rows"]
    except (OSError, ValueError, KeyError):
        return []


def chart_matplotlib(rows, mem, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if mem else 1
    fig, axes = plt.subplots(1, panels, figsize=(15 if mem else 10, 0.42 * len(rows) + 2),
                             gridspec_kw={"width_ratios": [2.2, 1] if mem else [1]})
    ax = axes[0] if mem else axes
    labels = [r[0] for r in rows][::-1]
    values = [r[3] for r in rows][::-1]
    targets = [r[4] for r in rows][::-1]
    colors = []
    for v, t in zip(values, targets):
        if t is None:
            colors.append("#8da0cb")
        else:
            colors.append("#66c2a5" if v <= t else "#fc8d62")
    y = range(len(rows))
    ax.barh(list(y), values, color=colors)
    for i, (v, t) in enumerate(zip(values, targets)):
        ax.text(v, i, f" {v:.2f}x", va="center", fontsize=8)
        if t is not None:
            ax.plot([t, t], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("ratio of medians, same run (log scale; < 1 = mcproof faster). Black tick = target")
    ax.set_title("mcproof vs baseline (green: target met, orange: missed, blue: no target)")
    if mem:
        ax2 = axes[1]
        names = [f"{r['limiter']}\nN={r['inserted']:,}" for r in mem]
        per_key = [r["rss_delta_bytes"] / max(r["inserted"], 1) for r in mem]
        total = [r["rss_delta_bytes"] / 1048576 for r in mem]
        colors2 = ["#fc8d62" if r["limiter"] == "governor" else "#66c2a5" for r in mem]
        ax2.barh(range(len(mem)), total, color=colors2)
        for i, (t, pk, r) in enumerate(zip(total, per_key, mem)):
            ax2.text(t, i, f" {t:.0f} MiB, {r['tracked']:,} keys", va="center", fontsize=7)
        ax2.set_xlim(0, max(total) * 1.6)
        ax2.set_yticks(range(len(mem)))
        ax2.set_yticklabels(names, fontsize=7)
        ax2.invert_yaxis()
        ax2.set_xlabel("RSS growth after inserting N distinct live keys (MiB)")
        ax2.set_title("limiter memory (capped = 100k-key default)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def chart_svg(rows, out):
    """Dependency-free fallback: a plain SVG bar chart on a log axis."""
    import math

    width, row_h, left = 900, 22, 330
    height = row_h * len(rows) + 60
    lo, hi = 0.01, 1000.0

    def x(v):
        v = min(max(v, lo), hi)
        return left + (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (width - left - 60)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>']
    for i, (label, _n, _d, r, target, _note) in enumerate(rows):
        yy = 30 + i * row_h
        color = "#8da0cb" if target is None else ("#66c2a5" if r <= target else "#fc8d62")
        parts.append(f'<text x="{left - 6}" y="{yy + 14}" font-size="11" text-anchor="end">{label}</text>')
        parts.append(f'<rect x="{left}" y="{yy + 3}" width="{x(r) - left:.1f}" height="{row_h - 6}" fill="{color}"/>')
        parts.append(f'<text x="{x(r) + 4:.1f}" y="{yy + 14}" font-size="10">{r:.2f}x</text>')
        if target is not None:
            parts.append(f'<line x1="{x(target):.1f}" x2="{x(target):.1f}" y1="{yy + 1}" y2="{yy + row_h - 1}" '
                         'stroke="black" stroke-width="2"/>')
    parts.append(f'<line x1="{x(1):.1f}" x2="{x(1):.1f}" y1="25" y2="{height - 25}" stroke="grey" '
                 'stroke-dasharray="4"/>')
    parts.append(f'<text x="{left}" y="{height - 8}" font-size="11">ratio of medians (log scale, 0.01x to 1000x; '
                 'black tick = target)</text></svg>')
    with open(out, "w") as f:
        f.write("\n".join(parts))


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--criterion", default=os.path.join(root, "target", "criterion"))
    p.add_argument("--out", default=os.path.join(root, "docs", "bench-ratios.png"))
    p.add_argument("--table", action="store_true", help="print the Markdown tables")
    args = p.parse_args()
    data = load(args.criterion)
    if not data:
        sys.exit(f"no criterion results under {args.criterion}: run `cargo bench -p mcproof-benches` first")
    rows = ratios(data)
    if args.table:
        print_table(data)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    try:
        chart_matplotlib(rows, memory_rows(args.criterion), args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    except ImportError:
        svg = os.path.splitext(args.out)[0] + ".svg"
        chart_svg(rows, svg)
        print(f"matplotlib not available; wrote {svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
