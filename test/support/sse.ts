/** A Server-Sent Events reader over fetch, as a client on loopback sees the stream (WHATWG rules). */
export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

/** Reads the stream until the server ends it (or `stopAfter` says enough), returning every event. */
export async function readSse(
  url: string,
  headers: Record<string, string> = {},
  stopAfter?: (e: SseEvent, all: SseEvent[]) => boolean,
): Promise<{ status: number; contentType: string | null; events: SseEvent[] }> {
  const ctrl = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: ctrl.signal });
  const events: SseEvent[] = [];
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    return { status: res.status, contentType: res.headers.get("content-type"), events };
  }
  const decoder = new TextDecoder();
  let buf = "";
  let cur: { id: string | null; event: string; data: string[] } = { id: null, event: "message", data: [] };
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.search(/\r?\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === "\r" ? 2 : 1));
        if (line === "") {
          if (cur.data.length) {
            const e = { id: cur.id, event: cur.event, data: cur.data.join("\n") };
            events.push(e);
            if (stopAfter?.(e, events)) {
              ctrl.abort();
              return { status: res.status, contentType: res.headers.get("content-type"), events };
            }
          }
          cur = { id: cur.id, event: "message", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "data") cur.data.push(value);
        else if (field === "event") cur.event = value;
        else if (field === "id") cur.id = value;
      }
    }
  } catch (err) {
    if ((err as Error).name !== "AbortError") throw err;
  }
  return { status: res.status, contentType: res.headers.get("content-type"), events };
}
