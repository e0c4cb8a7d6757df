/** Optional Bearer API keys, compared in constant time. */
import { createHash, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import { AppError } from "./errors.js";

const digest = (s: string) => createHash("sha256").update(s).digest();

export function bearerAuth(keys: string[]): RequestHandler {
  // comparing fixed-length digests keeps the comparison constant-time whatever the key lengths
  const digests = keys.map(digest);
  return (req, res, next) => {
    res.locals.owner = null;
    if (digests.length === 0) return next();
    const m = /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "");
    const given = m ? digest(m[1].trim()) : undefined;
    let ok = false;
    for (const d of digests) if (given && timingSafeEqual(d, given)) ok = true;
    if (!ok) return next(new AppError(401, "unauthorized", "a valid Bearer API key is required", "authorization", { "www-authenticate": "Bearer" }));
    // jobs belong to the key that submitted them; the digest names the key without holding it
    res.locals.owner = given!.subarray(0, 12).toString("hex");
    next();
  };
}
