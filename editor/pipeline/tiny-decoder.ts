/**
 * `decoder: "tiny"`: TAESD's decoder (models/convert/taesd.py) instead of the SD VAE decoder, for a
 * folder whose reward-edit.json names one (`preview_decoder`). At 512 px the SD decoder costs 2.5
 * TFLOP, more than a three-branch UNet step; TAESD about 1 % of it. Its session is opened on first
 * use, so folders and callers that never ask for it pay nothing.
 */
import path from "node:path";
import type { EditorModel } from "../model/folder.js";
import { type Session, createSession } from "../model/session.js";

export const DECODERS = ["full", "tiny"] as const;
export type Decoder = (typeof DECODERS)[number];

const sessions = new WeakMap<EditorModel, Promise<Session>>();

/** The folder's tiny decoder, opened once per model; null when the folder names none. */
export function tinyDecoder(model: EditorModel): Promise<Session> | null {
  const file = model.manifest.preview_decoder;
  if (!file) return null;
  let s = sessions.get(model);
  if (!s) {
    s = createSession(path.join(model.dir, file));
    // a failed open is not kept: the next edit tries again
    s.catch(() => sessions.delete(model));
    sessions.set(model, s);
  }
  return s;
}

/** Closes the tiny decoder's session, if one was opened (EditorModel.dispose does not know it). */
export async function disposeTinyDecoder(model: EditorModel): Promise<void> {
  const s = sessions.get(model);
  sessions.delete(model);
  if (s) await (await s).dispose();
}
