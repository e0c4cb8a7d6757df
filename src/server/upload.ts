/** Multipart uploads held in memory, with the limits and the client-error mapping every upload route shares. */
import type { Request, RequestHandler } from "express";
import multer from "multer";
import type { ServerConfig } from "../config/server.js";
import { AppError } from "./errors.js";

export type Upload = (fields: string[]) => RequestHandler;

export function uploadParser(config: ServerConfig): Upload {
  return (fields) => {
    const parse = multer({ storage: multer.memoryStorage(), limits: { fileSize: config.maxUploadBytes, files: fields.length + 1, fields: 16, fieldSize: 8192, parts: 32 } }).fields(
      fields.map((name) => ({ name, maxCount: 1 })),
    );
    return (req, res, next) => {
      // multer passes anything else through untouched; the fields would then look merely missing
      if (!req.is("multipart/form-data")) {
        return next(new AppError(415, "unsupported_media_type", `send multipart/form-data (got ${req.get("content-type") ?? "no content type"})`, "body"));
      }
      parse(req, res, (err?: unknown) => {
        // busboy's own parse errors (no boundary, a cut-off body, a bad part header) are the client's
        if (err && !(err instanceof multer.MulterError) && !(err instanceof AppError)) {
          return next(new AppError(400, "malformed_multipart", `the multipart body cannot be read: ${(err as Error).message}`, "body"));
        }
        next(err);
      });
    };
  };
}

export const uploadedFiles = (req: Request) => (req.files ?? {}) as Record<string, Express.Multer.File[]>;
