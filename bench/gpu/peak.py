#!/usr/bin/env python3
"""`python3 bench/gpu/peak.py BENCH.json...`: the bench's large matmuls (rows >= 4096; else the largest rows
in the file) as a share of the GPU's fp32 peak, the issue's goal being >= 50% for ours.

The peak is SMs x fp32 lanes per SM x 2 (a fused multiply-add) x the highest SM clock: the SM count and
compute capability from PyTorch when it is there, else from the GPU's name (H100 SXM / H200: 132 SMs,
H100 PCIe: 114), the clock from `nvidia-smi --query-gpu=clocks.max.sm`. H100 SXM: 132 x 128 x 2 x 1980 MHz
= 66.9 TFLOP/s. Without nvidia-smi (a CPU adapter) it prints the figures without a peak."""
import json
import subprocess
import sys

LANES = {(8, 0): 64, (9, 0): 128}  # fp32 lanes per SM; other recent capabilities (8.6, 8.9, 10.x, 12.x): 128
NAME_SMS = [("H100 PCIe", 114), ("H100 NVL", 132), ("H100", 132), ("H200", 132), ("A100", 108)]


def gpu_peak():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,clocks.max.sm", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
        name, mhz = [s.strip() for s in out[0].split(",")]
        mhz = float(mhz)
    except Exception as e:  # no NVIDIA driver here
        return None, f"no peak: nvidia-smi gave nothing ({type(e).__name__})"
    sms, cap, how = None, None, "name"
    try:
        import torch  # noqa: PLC0415 (optional)
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            sms, cap, how = p.multi_processor_count, (p.major, p.minor), "PyTorch"
    except Exception:
        pass
    if sms is None:
        sms = next((n for key, n in NAME_SMS if key in name), None)
        cap = (9, 0) if ("H100" in name or "H200" in name) else (8, 0) if "A100" in name else None
    if sms is None or cap is None:
        return None, f"no peak: unknown GPU {name!r} (no PyTorch to ask for its SM count)"
    lanes = LANES.get(cap, 128)
    peak = sms * lanes * 2 * mhz * 1e6 / 1e9  # GFLOP/s
    return peak, f"{name}: {sms} SMs ({how}), sm_{cap[0]}{cap[1]}, {lanes} fp32 lanes/SM, {mhz:.0f} MHz max SM clock: fp32 peak {peak / 1000:.1f} TFLOP/s"


def main(paths):
    peak, what = gpu_peak()
    print(what)
    lines = []
    for path in paths:
        try:
            doc = json.load(open(path))
        except Exception as e:
            print(f"{path}: not read ({e})")
            continue
        rows = doc.get("matmul") or []
        if not rows:
            continue
        big = max(r["rows"] for r in rows)
        big = 4096 if any(r["rows"] >= 4096 for r in rows) else big
        sel = [r for r in rows if r["rows"] >= big]
        print(f"{path}: adapter {doc.get('adapter', {}).get('name')}; matmuls at {big}+ rows")
        print("| matmul | rows | product | ours GFLOP/s (wall) | % of fp32 peak | ours GFLOP/s (GPU timestamps) | % of fp32 peak | tfjs GFLOP/s | jax-js GFLOP/s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        pct = lambda g: f"{100 * g / peak:.1f}" if peak and g else "-"  # noqa: E731
        for r in sel:
            g = round(2 * r["M"] * r["N"] * r["K"] / r["ours_gpu_ms"] / 1e6, 2) if r.get("ours_gpu_ms") else None
            print(f"| {r['shape']} | {r['rows']} | {r['product']} | {r['ours_gflops']} | {pct(r['ours_gflops'])} | {g or '-'} | {pct(g)} | {r.get('tfjs_gflops', '-')} | {r.get('jaxjs_gflops', '-')} |")
        best = max(r["ours_gflops"] for r in sel)
        if peak:
            share = best / peak
            lines.append(f"{path}: best large matmul {best} GFLOP/s (wall time, as the bench's table) = {100 * share:.1f}% of fp32 peak: goal (>= 50%) {'MET' if share >= 0.5 else 'NOT met'}")
        else:
            lines.append(f"{path}: best large matmul {best} GFLOP/s (no GPU peak to compare with)")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
