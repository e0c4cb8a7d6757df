/**
 * Which kernels a quantised graph really runs: ONNX Runtime's optimiser fuses a QDQ pattern into an
 * int8 kernel only when the pattern is exact, and an unfused one computes in float32 on dequantised
 * tensors (slower than float32 alone). So the optimised graph is written out and counted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type SessionOptions, writeOptimizedGraph } from "../../editor/index.js";
import { runQdqTool } from "./calibrate.js";

export interface KernelCount {
  /** Every op type of the optimised graph, with its count. */
  ops: Record<string, number>;
  /** int8 kernels: QLinearConv + QLinearMatMul + MatMulIntegerToFloat + DynamicQuantizeMatMul. */
  int8: number;
  /** Conv/MatMul nodes whose activation still comes from DequantizeLinear: QDQ patterns left unfused. */
  unfusedDequantized: number;
  /** Conv/MatMul/Gemm nodes whose weight alone is dequantised: weight-only int8, float32 arithmetic. */
  weightOnly: number;
  conv: number;
}

export const INT8_KERNELS = ["QLinearConv", "QLinearMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QAttention"];

export async function countKernels(graphFile: string, options: SessionOptions = {}): Promise<KernelCount> {
  const work = mkdtempSync(path.join(os.tmpdir(), "reward-edit-kernels-"));
  try {
    const out = path.join(work, "optimised.onnx");
    await writeOptimizedGraph(graphFile, out, options);
    const r = JSON.parse(await runQdqTool(["kernels", out])) as { ops: Record<string, number>; unfused_dequantized: number; weight_only: number };
    return {
      ops: r.ops,
      int8: INT8_KERNELS.reduce((a, k) => a + (r.ops[k] ?? 0), 0),
      unfusedDequantized: r.unfused_dequantized,
      weightOnly: r.weight_only,
      conv: (r.ops.Conv ?? 0) + (r.ops.FusedConv ?? 0),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
