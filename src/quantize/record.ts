/**
 * Records what an edit feeds each graph, by wrapping the loaded model's sessions: calibration
 * replays the recorded feeds through a graph that exposes its activations, and the quantisation
 * report replays them through both folders' graphs. Each recorded feed is a copy (the pipeline
 * reuses its buffers between steps).
 */
import type { EditorModel, HostTensor, Session } from "../../editor/index.js";

/** The graphs a model folder holds, by the name of their sub-folder. */
export const GRAPH_FIELDS = {
  text_encoder: "textEncoder",
  vae_encoder: "vaeEncoder",
  unet: "unet",
  unet_shallow: "unetShallow",
  vae_decoder: "vaeDecoder",
} as const satisfies Record<string, keyof EditorModel>;

export type GraphName = keyof typeof GRAPH_FIELDS;
export type Feeds = Record<string, HostTensor>;

export interface Recording {
  /** Every call's feeds, per graph, in the order the edits made them. */
  readonly feeds: Map<GraphName, Feeds[]>;
  /** Puts the model's own sessions back. */
  stop(): void;
}

function copy(feeds: Feeds): Feeds {
  const out: Feeds = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = { type: t.type, dims: [...t.dims], data: t.data.slice() } as HostTensor;
  return out;
}

/**
 * Wraps the named graphs of `model` so each run's feeds are kept. `keep(graph, call)` decides per
 * call (the call's index for that graph), so a long calibration can keep every n-th UNet call and
 * bound its memory.
 */
export function recordFeeds(model: EditorModel, graphs: readonly GraphName[], keep: (graph: GraphName, call: number) => boolean = () => true): Recording {
  const feeds = new Map<GraphName, Feeds[]>();
  const restore: Array<() => void> = [];
  const m = model as unknown as Record<string, Session | undefined>;
  for (const graph of graphs) {
    const field = GRAPH_FIELDS[graph];
    const inner = m[field];
    if (!inner) continue;
    const kept: Feeds[] = [];
    feeds.set(graph, kept);
    let calls = 0;
    const wrapped: Session = Object.create(inner, {
      run: {
        value: (f: Feeds, options?: Parameters<Session["run"]>[1]) => {
          if (!options?.probe && keep(graph, calls++)) kept.push(copy(f));
          return inner.run(f, options);
        },
      },
    });
    m[field] = wrapped;
    restore.push(() => {
      m[field] = inner;
    });
  }
  return {
    feeds,
    stop: () => {
      for (const r of restore) r();
    },
  };
}
