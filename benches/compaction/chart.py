#!/usr/bin/env python3
"""Draws disk/live over time from the CSV part of `cargo bench --bench compaction -- --steady ...`
outputs, as an SVG (no plotting library needed).

    python3 benches/compaction/chart.py OUT.svg "label=FILE" ...
"""
import sys

W, H, PAD = 760, 360, 50
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def series(path):
    points, inside = [], False
    for line in open(path):
        line = line.strip()
        if line.startswith("t_s,"):
            inside = True
            continue
        if inside:
            parts = line.split(",")
            if len(parts) != 3:
                break
            points.append((float(parts[0]), float(parts[1])))
    return points


def main():
    out, specs = sys.argv[1], sys.argv[2:]
    data = [(spec.split("=", 1)[0], series(spec.split("=", 1)[1])) for spec in specs]
    t_max = max(t for _, pts in data for t, _ in pts)
    y_max = max(2.5, max(y for _, pts in data for _, y in pts) * 1.05)
    x = lambda t: PAD + (W - 2 * PAD) * t / t_max
    y = lambda v: H - PAD - (H - 2 * PAD) * (v - 1.0) / (y_max - 1.0)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for v in [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]:
        if v <= y_max:
            svg.append(f'<line x1="{PAD}" y1="{y(v):.1f}" x2="{W - PAD}" y2="{y(v):.1f}" stroke="#ddd"/>')
            svg.append(f'<text x="{PAD - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}x</text>')
    step = 30 if t_max > 120 else 10
    for t in range(0, int(t_max) + 1, step):
        svg.append(f'<text x="{x(t):.1f}" y="{H - PAD + 16}" text-anchor="middle">{t}</text>')
    svg.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">seconds of overwrites</text>')
    svg.append(f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">bytes on disk / live bytes</text>')
    for i, (label, pts) in enumerate(data):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        svg.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        svg.append(f'<rect x="{PAD + 10}" y="{PAD - 30 + 16 * i}" width="12" height="3" fill="{colour}"/>')
        svg.append(f'<text x="{PAD + 28}" y="{PAD - 25 + 16 * i}">{label}</text>')
    svg.append("</svg>")
    open(out, "w").write("\n".join(svg) + "\n")


main()
