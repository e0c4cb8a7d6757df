/** A model named by folder or by `hub:` spec, as every command and the server accept it. */
import path from "node:path";
import { type HubEnv, type PullProgress, hubEnv, progressFor } from "../hub/index.js";
import { type ComputeKind, checkCompute, parseCompute } from "./compute.js";
import { type WeightDtype, parseWeightDtype, pullModel } from "./model.js";
import { isHubSpec, parseHubSpec } from "./spec.js";

export interface ResolvedModel {
  dir: string;
  /** How reports and logs name it: the folder's name, or the repository's for a Hub model. */
  label: string;
}

/** The weights a `hub:` model is converted to: REWARD_EDIT_HUB_DTYPE (int8 for a 4 GB pod), else float32. */
export const hubDtype = (env: NodeJS.ProcessEnv = process.env): WeightDtype => parseWeightDtype(env.REWARD_EDIT_HUB_DTYPE || "float32", "REWARD_EDIT_HUB_DTYPE");

/**
 * Their arithmetic: REWARD_EDIT_HUB_COMPUTE=int8 (with REWARD_EDIT_HUB_DTYPE=int8) calibrates on
 * edits at conversion and computes the UNets and VAE decoder in int8; else float32.
 */
export function hubCompute(env: NodeJS.ProcessEnv = process.env, dtype: WeightDtype = hubDtype(env)): ComputeKind {
  const compute = parseCompute(env.REWARD_EDIT_HUB_COMPUTE || "float32", "REWARD_EDIT_HUB_COMPUTE");
  checkCompute(dtype, compute, "env");
  return compute;
}

export async function resolveModel(spec: string, o: { env?: HubEnv; progress?: PullProgress; log?: (line: string) => void; dtype?: WeightDtype; compute?: ComputeKind } = {}): Promise<ResolvedModel> {
  if (!isHubSpec(spec)) return { dir: spec, label: path.basename(path.resolve(spec)) };
  const s = parseHubSpec(spec);
  const dtype = o.dtype ?? hubDtype();
  const compute = o.compute ?? hubCompute(process.env, dtype);
  const pulled = await pullModel({ ...s, dtype, compute, env: o.env ?? hubEnv(), progress: o.progress ?? progressFor(process.stderr), converterOutput: "stderr" });
  o.log?.(`${spec}: ${pulled.converted ? "pulled and converted" : "cached"} at ${pulled.dir} (commit ${pulled.commit.slice(0, 12)})`);
  return { dir: pulled.dir, label: [s.repo.split("/")[1], ...(s.subfolder ? [s.subfolder.split("/").pop()!] : [])].join("/") };
}

export const resolveModelDir = async (spec: string, log?: (line: string) => void) => (await resolveModel(spec, { log })).dir;
