/** The weights a conversion writes (--dtype, REWARD_EDIT_HUB_DTYPE). */
import { PullError } from "./errors.js";

/** float16 halves the files; int8 keeps the UNets' and text encoder's weights in int8 in memory too (models/convert/quantize.py). */
export const WEIGHT_DTYPES = ["float32", "float16", "int8"] as const;
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];

export function parseWeightDtype(s: string, what = "--dtype"): WeightDtype {
  if (!(WEIGHT_DTYPES as readonly string[]).includes(s)) throw new PullError(`${what} must be ${WEIGHT_DTYPES.join(", ")}; got "${s}"`);
  return s as WeightDtype;
}
