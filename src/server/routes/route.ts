/** An async handler whose failures reach the error middleware. */
import type { NextFunction, Request, Response } from "express";

type Handler = (req: Request, res: Response) => Promise<void>;
export const route = (h: Handler) => (req: Request, res: Response, next: NextFunction) => h(req, res).catch(next);
