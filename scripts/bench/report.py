"""The default run's report."""

from __future__ import annotations

from typing import Any

from .common import blas_kernels_line, fmt_ms
from .compute_bound import sgemm_rate
from .roofline import report_roofline


def report(results: dict[str, Any]) -> str:
    lines = ["LeNet-5 benchmark (random MNIST-shaped data; median [p10-p90])"]
    env = results["environment"]
    lines.append(f"threads: ours {env['our_op_threads']} (training processes: {env.get('workers', 1)}), "
                 + ", ".join(f"{k}={v}" for k, v in env["env"].items())
                 + (f", torch {env['torch']['num_threads']}" if "torch" in env else ""))
    lines.append(f"numpy {env['numpy']} BLAS: {env['numpy_blas']}; malloc retains freed memory: "
                 f"{env['malloc_retains_freed_memory']}")
    lines.append(blas_kernels_line(env))
    if "torch" not in env:
        lines.append(f"PyTorch: {results['torch_missing']}")
    lines.append("")
    lines.append("training step (forward + backward + SGD momentum)")
    for t in results["training"]:
        b = t["batch_size"]
        o = t["ours"]
        line = (f"  batch {b:4d}: ours {fmt_ms(o)}  {o['images_per_s']:8.0f} img/s  epoch {o['epoch_s']:6.2f} s")
        if "torch" in t:
            line += f" | torch {fmt_ms(t['torch'])}  ratio {t['ratio_ours_over_torch']:.2f}"
        lines.append(line)
    for c in results["compute_bound"]:
        lines.append(f"  batch {c['batch_size']:4d}: {c['step'] / 1e9:.3f} GFLOP of products per step; at numpy's "
                     f"sgemm rate ({sgemm_rate(c)}) that is {c['bound_ms']:.2f} ms: the step runs at "
                     f"{c['fraction']:.0%} of the compute bound")
    inf = results["inference"]
    scope = f"extrapolated from {inf['images']:,}" if inf["extrapolated_to_10k"] else "measured"
    line = (f"inference, 10,000 images ({scope}) at batch {inf['batch_size']}: "
            f"ours {inf['ours']['seconds_for_10k']:.3f} s "
            f"({inf['ours']['images_per_s']:.0f} img/s)")
    if "torch" in inf:
        line += f" | torch {inf['torch']['seconds_for_10k']:.3f} s  ratio {inf['ratio_ours_over_torch']:.2f}"
    lines.append(line)
    prof = results["profile"]
    lines.append("")
    lines.append(f"per-op profile, batch {prof['batch_size']} (ms per step; the profiled step took "
                 f"{prof['wall_ms']:.2f} ms)")
    lines.extend("  " + row for row in prof["table"].splitlines())
    lines.append(f"  optimizer.step {prof['optimizer_ms']:.3f} ms; autograd + Python overhead "
                 f"{prof['autograd_python_ms']:.3f} ms = {prof['autograd_python_share']:.1%} of the step")
    if results.get("roofline"):
        lines.append("")
        lines.extend(report_roofline(results["roofline"]))
    if results.get("app_prediction"):
        a = results["app_prediction"]
        lines.append(f"digit app, one drawing (prediction, feature maps, saliency): {fmt_ms(a)}")
    if results.get("memory"):
        lines.append("")
        lines.append("memory while training (fresh process per batch size)")
        for m in results["memory"]:
            after = ", ".join(f"{a:.0f}" for a in m["rss_after_each_epoch_mb"])
            lines.append(f"  batch {m['batch_size']:4d}: peak RSS {m['peak_rss_mb']:.0f} MiB; RSS after each of "
                         f"{m['epochs']} x {m['steps_per_epoch']} steps: {after} MiB "
                         f"(growth after the first: {m['growth_after_first_epoch_mb']:+.1f} MiB)")
    return "\n".join(lines)
