/**
 * Which layers to keep in float32 (issue 42): a per-layer sensitivity sweep in one pass. The graph
 * with every layer quantised and its float32 source run the same recorded feeds side by side, both
 * exposing every quantisable layer's input and output; a layer's sensitivity is the relative error
 * it adds (its output's error against float32 minus its input's). Post-training int8 of diffusion
 * UNets is known to fail at a few layers (Q-Diffusion; OpenVINO kept 96 nodes of the IP2P UNet in
 * float), so the layers that add the most error are the ones kept.
 */
import type { SessionOptions } from "../../editor/index.js";
import { openExposed, quantisableNodes } from "./calibrate.js";
import type { Feeds } from "./record.js";

export interface LayerSensitivity {
  node: string;
  op: string;
  /** RMS(int8 - float32) / RMS(float32) of the layer's input and output, over the feeds. */
  inputError: number;
  outputError: number;
  /** outputError - inputError: what the layer itself adds. */
  added: number;
}

class ErrorSum {
  private diff = 0;
  private ref = 0;
  add(ref: Float32Array, other: Float32Array): void {
    for (let i = 0; i < ref.length; i++) {
      const d = other[i] - ref[i];
      this.diff += d * d;
      this.ref += ref[i] * ref[i];
    }
  }
  get relative(): number {
    return this.ref > 0 ? Math.sqrt(this.diff / this.ref) : 0;
  }
}

/** At most this many values of each tensor are compared: an even sample, so memory stays bounded. */
const SAMPLE = 1 << 16;

function sample(d: Float32Array): Float32Array {
  const step = Math.max(1, Math.floor(d.length / SAMPLE));
  if (step === 1) return d.slice();
  const out = new Float32Array(Math.ceil(d.length / step));
  for (let i = 0, k = 0; i < d.length; i += step) out[k++] = d[i];
  return out;
}

/**
 * Sensitivity of each quantisable layer of `floatGraph`, measured against `quantGraph` (the same
 * graph with every layer quantised) on `feeds`; sorted, the most sensitive first. `outputError` is
 * the error of the graph's own outputs. The two graphs run one after the other, and only an even
 * sample of each tensor is kept between them: a full-size UNet exposing every layer's activations
 * holds gigabytes per call, and two such sessions at once exhausted 24 GiB.
 */
export async function layerSensitivity(floatGraph: string, quantGraph: string, feeds: Feeds[], options: SessionOptions = {}): Promise<{ layers: LayerSensitivity[]; outputError: number }> {
  const targets = await quantisableNodes(floatGraph);
  const tensors = [...new Set(targets.flatMap((t) => [t.input, t.output]))];
  const reference: Array<Map<string, Float32Array>> = [];
  let layerTensors: ReadonlySet<string> = new Set();
  const a = await openExposed(floatGraph, tensors, options);
  try {
    layerTensors = a.tensors;
    for (const f of feeds) {
      const kept = new Map<string, Float32Array>();
      for (const [name, data] of await a.run(f)) kept.set(name, sample(data));
      reference.push(kept);
    }
  } finally {
    await a.close();
  }
  const errors = new Map<string, ErrorSum>();
  const outputs = new ErrorSum();
  const b = await openExposed(quantGraph, tensors, options);
  try {
    for (const [k, f] of feeds.entries()) {
      for (const [name, data] of await b.run(f)) {
        const ref = reference[k].get(name);
        const other = sample(data);
        if (!ref || ref.length !== other.length) continue;
        if (layerTensors.has(name)) {
          if (!errors.has(name)) errors.set(name, new ErrorSum());
          errors.get(name)!.add(ref, other);
        } else outputs.add(ref, other);
      }
      reference[k].clear();
    }
  } finally {
    await b.close();
  }
  const err = (t: string) => errors.get(t)?.relative ?? 0;
  const layers = targets.map((t) => ({ node: t.node, op: t.op, inputError: err(t.input), outputError: err(t.output), added: err(t.output) - err(t.input) }));
  layers.sort((x, y) => y.added - x.added);
  return { layers, outputError: outputs.relative };
}

/** The `fraction` of layers (rounded up) that add the most error. */
export function mostSensitive(layers: LayerSensitivity[], fraction: number): string[] {
  const n = Math.ceil(layers.length * fraction);
  return [...layers].sort((x, y) => y.added - x.added).slice(0, n).map((l) => l.node);
}
