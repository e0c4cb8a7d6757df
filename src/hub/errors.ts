/**
 * Every way a pull can fail, as one line a person can act on (what went wrong and what to do),
 * classified from the Hub's status codes and its X-Error-Code header.
 */
export type HubErrorKind =
  | "repo-not-found"
  | "revision-not-found"
  | "entry-not-found"
  | "gated"
  | "unauthorized"
  | "offline-missing"
  | "disk-full"
  | "integrity"
  | "unreachable"
  | "server"
  | "incomplete"
  | "unsafe-name"
  | "timeout"
  | "too-large"
  | "config";

export class HubError extends Error {
  constructor(
    readonly kind: HubErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "HubError";
  }
}

export interface FailedRequest {
  status: number;
  /** The Hub's X-Error-Code: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo, ... */
  code: string | null;
  url: string;
  /** The Hub's own words (its JSON `error`), when it sent any. */
  detail?: string;
}

export interface RequestContext {
  repo: string;
  revision: string;
  hasToken: boolean;
  path?: string;
}

export function classify(r: FailedRequest, c: RequestContext): HubError {
  const login = "set HF_TOKEN (or run `huggingface-cli login`)";
  if (r.code === "GatedRepo") {
    return c.hasToken
      ? new HubError("gated", `${c.repo} is gated and this token has no access: accept its conditions on the repository's page, then retry`)
      : new HubError("gated", `${c.repo} is gated: accept its conditions on the repository's page, then ${login}`);
  }
  if (r.code === "RevisionNotFound") return new HubError("revision-not-found", `revision "${c.revision}" not found in ${c.repo}`);
  if (r.code === "EntryNotFound") return new HubError("entry-not-found", `${c.path ?? "file"} not found in ${c.repo}@${c.revision}`);
  if (r.code === "RepoNotFound" || r.status === 404) {
    return new HubError("repo-not-found", `repository ${c.repo} not found${c.hasToken ? "" : ` (if it is private, ${login})`}`);
  }
  if (r.status === 401 || r.status === 403) {
    return c.hasToken
      ? new HubError("unauthorized", `the Hub refused this token for ${c.repo} (HTTP ${r.status}): check HF_TOKEN`)
      : new HubError("unauthorized", `${c.repo} needs a token (HTTP ${r.status}): ${login}`);
  }
  return new HubError("server", `the Hub answered HTTP ${r.status}${r.detail ? ` (${r.detail})` : ""} for ${r.url}; try again later`);
}

/** A request that never got an answer: DNS, refused connection, TLS, reset. */
export function unreachable(endpoint: string, err: unknown): HubError {
  if (err instanceof HubError) return err;
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  // undici's own limits (300 s) when ours are set longer: the host was reached, it did not answer
  if (cause?.code === "UND_ERR_HEADERS_TIMEOUT") return new HubError("timeout", `timed out waiting for headers from ${hostOf(endpoint)} (the HTTP client's own limit)`);
  if (cause?.code === "UND_ERR_BODY_TIMEOUT") return new HubError("timeout", `no data from ${hostOf(endpoint)} for 300 s (the HTTP client's own limit)`);
  const why = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
  return new HubError("unreachable", `cannot reach ${endpoint} (${why}): check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only`);
}

export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
