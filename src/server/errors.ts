/** Application errors carry their HTTP status, a stable code and the request field they concern. */
import type { ErrorRequestHandler } from "express";
import multer from "multer";

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const MULTER_STATUS: Record<string, [number, string]> = {
  LIMIT_FILE_SIZE: [413, "file too large"],
  LIMIT_FILE_COUNT: [400, "too many files"],
  LIMIT_UNEXPECTED_FILE: [400, "unexpected file field"],
  LIMIT_FIELD_VALUE: [400, "field value too long"],
  LIMIT_FIELD_COUNT: [400, "too many fields"],
  LIMIT_PART_COUNT: [400, "too many parts"],
  LIMIT_FIELD_KEY: [400, "field name too long"],
};

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof multer.MulterError) {
    const [status, what] = MULTER_STATUS[err.code] ?? [400, "bad upload"];
    const field = err.field ?? "files";
    return new AppError(status, err.code.toLowerCase(), `${what}: ${field}`, field);
  }
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type === "entity.parse.failed") return new AppError(400, "invalid_json", "request body is not valid JSON", "body");
  if (e?.status && e.status >= 400 && e.status < 500) return new AppError(e.status, "bad_request", e.message ?? "bad request");
  return new AppError(500, "internal", "internal error");
}

/** The JSON body an error answers with; the project's own names the field. */
export type ErrorBody = (e: AppError) => unknown;
const projectBody: ErrorBody = (e) => ({ error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } });

/** The one error middleware: every failure becomes a JSON body (`body` shapes it); the process keeps serving. */
export function errorHandler(onError: (e: AppError, cause: unknown) => void, body: ErrorBody = projectBody): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    const e = toAppError(err);
    onError(e, err);
    if (res.headersSent) {
      res.end();
      return;
    }
    res.set(e.headers).status(e.status).json(body(e));
  };
}
