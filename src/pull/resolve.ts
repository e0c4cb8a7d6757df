/** A model named by folder or by `hub:` spec, as every command and the server accept it. */
import path from "node:path";
import { type HubEnv, type PullProgress, hubEnv, progressFor } from "../hub/index.js";
import { pullModel } from "./model.js";
import { isHubSpec, parseHubSpec } from "./spec.js";

export interface ResolvedModel {
  dir: string;
  /** How reports and logs name it: the folder's name, or the repository's for a Hub model. */
  label: string;
}

export async function resolveModel(spec: string, o: { env?: HubEnv; progress?: PullProgress; log?: (line: string) => void } = {}): Promise<ResolvedModel> {
  if (!isHubSpec(spec)) return { dir: spec, label: path.basename(path.resolve(spec)) };
  const s = parseHubSpec(spec);
  const pulled = await pullModel({ ...s, env: o.env ?? hubEnv(), progress: o.progress ?? progressFor(process.stderr), converterOutput: "stderr" });
  o.log?.(`${spec}: ${pulled.converted ? "pulled and converted" : "cached"} at ${pulled.dir} (commit ${pulled.commit.slice(0, 12)})`);
  return { dir: pulled.dir, label: [s.repo.split("/")[1], ...(s.subfolder ? [s.subfolder.split("/").pop()!] : [])].join("/") };
}

export const resolveModelDir = async (spec: string, log?: (line: string) => void) => (await resolveModel(spec, { log })).dir;
