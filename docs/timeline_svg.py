#!/usr/bin/env python3
"""Renders a `rawkvm run --trace=chrome PATH` timeline as an SVG, with no network and no
dependencies: what Perfetto would show, drawn by hand (the Perfetto UI is not reachable from
the machines this project is built on).

    python3 docs/timeline_svg.py TRACE.json OUT.svg [--title TEXT]

One band per vCPU track: KVM_RUN slices (time in the kernel and the guest) coloured by the
exit they ended in, rawkvm's handling of each exit below them, a tick per exit instant, a red mark
per interrupt rawkvm injected (KVM_INTERRUPT), and
for port writes the byte written (so hello's band spells its message).
"""
import argparse
import html
import json

COLOURS = {
    "KVM_EXIT_IO in": "#4e79a7",
    "KVM_EXIT_IO out": "#f28e2b",
    "KVM_EXIT_HLT": "#59a14f",
    "KVM_EXIT_MMIO": "#b07aa1",
    "KVM_EXIT_DEBUG": "#edc948",
    "KVM_EXIT_IRQ_WINDOW_OPEN": "#9c755f",
    "EINTR": "#bab0ac",
}
OTHER = "#e15759"
HANDLING = "#76b7b2"
INTERRUPT = "#d62728"


def kind(exit_name, args):
    if exit_name == "KVM_EXIT_IO":
        return f"KVM_EXIT_IO {args.get('direction', '')}"
    return exit_name


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("out")
    parser.add_argument("--title", default="rawkvm run --trace=chrome")
    options = parser.parse_args()
    with open(options.trace) as f:
        events = json.load(f)["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    runs = [e for e in events if e.get("ph") == "X" and e["name"] == "KVM_RUN"]
    handling = [e for e in events if e.get("ph") == "X" and e["name"] == "rawkvm"]
    instants = {(e["tid"], e["args"]["seq"]): e for e in events
                if e.get("ph") == "i" and "seq" in e.get("args", {})}
    injections = [e for e in events if e.get("ph") == "i" and e["name"] == "KVM_INTERRUPT"]
    if not runs:
        raise SystemExit("no KVM_RUN slices in the trace")
    end = max(e["ts"] + e["dur"] for e in runs + handling)
    tids = sorted(names) or sorted({e["tid"] for e in runs})

    left, right, top, band = 90, 30, 70, 86
    width = 1200
    plot = width - left - right
    height = top + band * len(tids) + 90
    x = lambda ts: left + plot * ts / end

    out = []
    add = out.append
    add(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">')
    add(f'<rect width="{width}" height="{height}" fill="white"/>')
    add(f'<text x="{left}" y="24" font-size="16" font-weight="bold">'
        f'{html.escape(options.title)}</text>')
    total = len(runs)
    add(f'<text x="{left}" y="44" fill="#555">{total} KVM_RUN slices, '
        f'{len(instants)} exits, {end:.0f} µs from the first entry</text>')

    # Time axis: about 10 ticks at a round step.
    step = 10 ** len(str(int(end / 10))) / 10
    for factor in (1, 2, 5, 10):
        if end / (step * factor) <= 10:
            step *= factor
            break
    axis_y = top + band * len(tids) + 10
    add(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot}" y2="{axis_y}" stroke="#333"/>')
    t = 0.0
    while t <= end:
        add(f'<line x1="{x(t):.1f}" y1="{top - 6}" x2="{x(t):.1f}" y2="{axis_y + 4}" '
            f'stroke="#ddd"/>')
        add(f'<text x="{x(t):.1f}" y="{axis_y + 18}" text-anchor="middle" fill="#333">'
            f'{t:g} µs</text>')
        t += step

    for row, tid in enumerate(tids):
        y0 = top + row * band
        add(f'<text x="{left - 10}" y="{y0 + 28}" text-anchor="end" font-weight="bold">'
            f'{html.escape(names.get(tid, f"tid {tid}"))}</text>')
        add(f'<text x="{left - 10}" y="{y0 + 58}" text-anchor="end" fill="#555">rawkvm</text>')
        for run in (e for e in runs if e["tid"] == tid):
            seq = run["args"]["seq"]
            exit_name = run["args"]["exit"]
            instant = instants.get((tid, seq), {"args": {}})
            colour = COLOURS.get(kind(exit_name, instant["args"]), OTHER)
            x0, w = x(run["ts"]), max(plot * run["dur"] / end, 0.8)
            tip = f'#{seq} KVM_RUN {run["dur"]:.1f} µs → {exit_name}'
            add(f'<rect x="{x0:.2f}" y="{y0 + 14}" width="{w:.2f}" height="24" '
                f'fill="{colour}"><title>{html.escape(tip)}</title></rect>')
            xi = x(run["ts"] + run["dur"])
            add(f'<line x1="{xi:.2f}" y1="{y0 + 10}" x2="{xi:.2f}" y2="{y0 + 42}" '
                f'stroke="#222" stroke-width="0.6"/>')
            data = instant["args"].get("data")
            if instant["args"].get("direction") == "out" and data and len(data) == 2:
                byte = int(data, 16)
                label = {0x20: "\u2423", 0x0A: "\\n"}.get(byte) or (
                    chr(byte) if 0x21 <= byte < 0x7F else f"{byte:02x}")
                add(f'<text x="{xi:.2f}" y="{y0 + 8}" text-anchor="middle" font-size="11" '
                    f'font-family="DejaVu Sans Mono, monospace">{html.escape(label)}</text>')
        for irq in (e for e in injections if e["tid"] == tid):
            xi, vector = x(irq["ts"]), irq["args"]["vector"]
            add(f'<path d="M {xi - 5:.2f} {y0 + 64} L {xi + 5:.2f} {y0 + 64} '
                f'L {xi:.2f} {y0 + 72} Z" fill="{INTERRUPT}">'
                f'<title>KVM_INTERRUPT vector {vector:#x}</title></path>')
            add(f'<text x="{xi + 7:.2f}" y="{y0 + 72}" fill="{INTERRUPT}" font-size="11">'
                f'KVM_INTERRUPT {vector:#x}</text>')
        for h in (e for e in handling if e["tid"] == tid):
            w = max(plot * h["dur"] / end, 0.8)
            add(f'<rect x="{x(h["ts"]):.2f}" y="{y0 + 48}" width="{w:.2f}" height="14" '
                f'fill="{HANDLING}"/>')

    legend_y = axis_y + 44
    lx = left
    items = [(k, c) for k, c in COLOURS.items()
             if any(kind(r["args"]["exit"], instants.get((r["tid"], r["args"]["seq"]),
                                                        {"args": {}})["args"]) == k
                    for r in runs)]
    items.append(("rawkvm handling the exit", HANDLING))
    if injections:
        items.append(("an interrupt injected (KVM_INTERRUPT)", INTERRUPT))
    for label, colour in items:
        add(f'<rect x="{lx}" y="{legend_y - 10}" width="14" height="12" fill="{colour}"/>')
        add(f'<text x="{lx + 20}" y="{legend_y}">{html.escape(label)}</text>')
        lx += 36 + 7.6 * len(label)
    add(f'<text x="{left}" y="{legend_y + 22}" fill="#555">A slice is one KVM_RUN, entry '
        f'to exit; a tick is the exit (its decoded fields are the instant event\'s args); '
        f'letters are the bytes written to COM1.</text>')
    add("</svg>")
    with open(options.out, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
