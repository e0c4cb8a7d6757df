/**
 * Runs every graph of a converted folder on the inputs stored in a golden checkpoint
 * (golden.safetensors, written by the real code), so a test can compare the outputs with the real
 * code's or with another conversion's.
 */
import path from "node:path";
import { type HostTensor, createSession } from "../../editor/index.js";
import { type StoredTensor, readSafetensors } from "./safetensors.js";

export const f32 = (t: { data: Float32Array | BigInt64Array; dims: number[] }): HostTensor => ({ type: "float32", data: t.data as Float32Array, dims: t.dims });

export type Outputs = Record<"text_hidden" | "text_pooled" | "vae_mean" | "vae_decode" | "unet", Float32Array>;

export const goldenInputs = (goldenDir: string): Record<string, StoredTensor> => readSafetensors(path.join(goldenDir, "golden.safetensors"));

/** The real code's outputs, under the same names. */
export function goldenOutputs(g: Record<string, StoredTensor>): Outputs {
  const a = (k: string) => g[k].data as Float32Array;
  return { text_hidden: a("text.last_hidden_state"), text_pooled: a("text.pooler_output"), vae_mean: a("vae.mean"), vae_decode: a("vae.decoded_mean"), unet: a("unet.out_sample") };
}

export async function convertedOutputs(dir: string, g: Record<string, StoredTensor>): Promise<Outputs> {
  const run = async (graph: string, feeds: Record<string, HostTensor>) => {
    const s = await createSession(path.join(dir, graph, "model.onnx"));
    try {
      return await s.run(feeds);
    } finally {
      await s.dispose();
    }
  };
  const text = await run("text_encoder", { input_ids: { type: "int64", data: g["text.input_ids"].data as BigInt64Array, dims: g["text.input_ids"].dims } });
  const unetFeeds: Record<string, HostTensor> = { sample: f32(g["unet.sample"]), timestep: f32(g["unet.timestep"]), encoder_hidden_states: f32(g["unet.encoder_hidden_states"]) };
  if (g["unet.reward_scores"]) {
    unetFeeds.reward_scores = f32(g["unet.reward_scores"]);
    unetFeeds.feedback_embeds = f32(g["unet.negative_embeds"]);
  }
  return {
    text_hidden: text.last_hidden_state.data as Float32Array,
    text_pooled: text.pooler_output.data as Float32Array,
    vae_mean: (await run("vae_encoder", { sample: f32(g["vae.sample"]) })).latent_sample.data as Float32Array,
    vae_decode: (await run("vae_decoder", { latent_sample: f32(g["vae.mean"]) })).sample.data as Float32Array,
    unet: (await run("unet", unetFeeds)).out_sample.data as Float32Array,
  };
}
