import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { HubError, checkBlobName, containedPath, hubEnv } from "../../src/hub/index.js";
import { type ArchiveLimits, extractArchive } from "../../src/pull/archive.js";
import { pullRealEdit } from "../../src/pull/dataset.js";
import { pullModel, pullSnapshot } from "../../src/pull/model.js";
import { parseHubSpec } from "../../src/pull/spec.js";
import { runCli, tempDir } from "../helpers.js";
import { HostileHub, entry, stream } from "./hostile-hub.js";

const TOKEN = "hf_hostileTestToken";
/** A CLI process loads its HTTP client on its first request: more than the library's 0.3 s on a loaded machine. */
const CLI_DEADLINE = { REWARD_EDIT_HUB_HEADERS_TIMEOUT: "5" };

/** The small files of a diffusers editor, enough for the selection's first pass. */
function editorFiles(unet: "single" | "sharded" = "single"): Map<string, Buffer> {
  const f = new Map<string, Buffer>();
  const json = (o: unknown) => Buffer.from(JSON.stringify(o));
  for (const p of ["model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json", "unet/config.json", "vae/config.json", "text_encoder/config.json"]) f.set(p, json({ p }));
  f.set("tokenizer/merges.txt", Buffer.from("#version: 0.2\n"));
  f.set("vae/diffusion_pytorch_model.safetensors", Buffer.alloc(64, 1));
  f.set("text_encoder/model.safetensors", Buffer.alloc(64, 2));
  if (unet === "single") f.set("unet/diffusion_pytorch_model.safetensors", Buffer.alloc(64, 3));
  return f;
}

/** Every name below `dir` with its type, size and mtime: what must not change outside the cache. */
function stateOf(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const full = path.join(d, e);
      const st = lstatSync(full);
      out.push(`${path.relative(dir, full)} ${st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : "file"} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return out;
}

const python = (script: string, ...args: string[]) => execFileSync("python3", ["-c", script, ...args]);

/** Rejects with a HubError-like one-line message, returned for matching. */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const msg = (err as Error).message;
    expect(msg.split("\n"), msg).to.have.length(1);
    expect(msg).not.to.match(/^(ENOENT|EEXIST|ENOTDIR|TypeError|SyntaxError)/);
    return msg;
  }
  throw new Error("expected a refusal, got success");
}

describe("Hugging Face Hub: a hostile Hub on loopback cannot write outside the cache, leak the token or hang the client", function () {
  this.timeout(30_000);
  const hub = new HostileHub();
  const other = new HostileHub();
  const root = tempDir("hub-hostile-");
  const victim = path.join(root, "victim");
  let n = 0;
  /** A fresh cache per case, beside the victim folder (root/<case>/{hub,reward-edit}). */
  const envFor = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const dir = path.join(root, `case-${++n}`);
    return {
      HF_ENDPOINT: hub.url,
      HF_HOME: path.join(dir, "hf-home"),
      HF_HUB_CACHE: path.join(dir, "hub"),
      HF_TOKEN: TOKEN,
      REWARD_EDIT_CACHE: path.join(dir, "reward-edit"),
      REWARD_EDIT_HUB_HEADERS_TIMEOUT: "0.3",
      REWARD_EDIT_HUB_IDLE_TIMEOUT: "0.5",
      REWARD_EDIT_HUB_TIMEOUT: "1.5",
      REWARD_EDIT_HUB_MAX_JSON_BYTES: "1000000",
      REWARD_EDIT_HUB_MAX_PAGES: "20",
      REWARD_EDIT_HUB_MAX_ENTRIES: "500",
      ...extra,
    };
  };
  /** Real-Edit pulls into REWARD_EDIT_CACHE as process.env names it. */
  async function withProcessEnv<T>(env: NodeJS.ProcessEnv, work: () => Promise<T>): Promise<T> {
    const saved = process.env.REWARD_EDIT_CACHE;
    process.env.REWARD_EDIT_CACHE = env.REWARD_EDIT_CACHE;
    try {
      return await work();
    } finally {
      if (saved === undefined) delete process.env.REWARD_EDIT_CACHE;
      else process.env.REWARD_EDIT_CACHE = saved;
    }
  }
  /** A test whose victim folder must be exactly as it was (names, sizes, mtimes) after it ran. */
  const guarded = (title: string, body: () => Promise<void>) =>
    it(title, async () => {
      const before = stateOf(victim);
      await body();
      expect(stateOf(victim)).to.deep.equal(before);
    });
  const cliLine = (r: { code: number; stderr: string }) => {
    expect(r.code, r.stderr).to.equal(1);
    const lines = r.stderr.trim().split("\n").filter((l) => !/^(pull|dataset): /.test(l));
    expect(lines, r.stderr).to.have.length(1);
    expect(r.stderr).not.to.match(/\n\s+at /);
    return lines[0];
  };

  before(async () => {
    await hub.start();
    await other.start();
    // the other origin answers every listing page with nothing more, and every file with its bytes
    other.fallback = (_req, res, url) => {
      if (url.pathname.includes("/tree/")) return void res.writeHead(200, { "content-type": "application/json" }).end("[]");
      res.writeHead(200, { "content-type": "application/octet-stream" }).end(Buffer.alloc(64, 3));
    };
    mkdirSync(path.join(victim, "dir"), { recursive: true });
    writeFileSync(path.join(victim, "dir", "keep.txt"), "the victim's own file\n");
    writeFileSync(path.join(victim, "secret.json"), '{"secret": true}\n');
    writeFileSync(path.join(victim, "yarn.lock"), "# a lock file left alone for years\n");
    // old enough to look like a stale download lock, as the audit's attack needed
    utimesSync(path.join(victim, "yarn.lock"), new Date("2020-01-01"), new Date("2020-01-01"));
  });
  after(async () => {
    await hub.stop();
    await other.stop();
  });

  // finding 1 and 2: listing paths
  guarded("a dataset file listed as ../../../../victim/dir.zip is refused before anything is fetched (CLI bench, exit 1, one line)", async () => {
    const files = new Map([["real_edit_instruct.json", Buffer.from("{}")], ["../../../../victim/dir.zip", Buffer.alloc(10)]]);
    hub.add({ type: "dataset", name: "test-org/evil-dataset", files });
    const mark = hub.log.length;
    const r = await runCli(["bench", "--suite", "real-edit", "--dataset", "test-org/evil-dataset", "--backend", "local", "--out", path.join(root, "bench-out")], envFor(CLI_DEADLINE));
    expect(cliLine(r)).to.equal('reward-edit: dataset test-org/evil-dataset: refused listed file "../../../../victim/dir.zip": it leaves its folder (a ".." segment)');
    expect(hub.log.slice(mark).filter((q) => q.url.includes("/resolve/"))).to.deep.equal([]);
  });

  guarded("a model file listed outside its snapshot is refused, and so is every other form of escape", async () => {
    const files = editorFiles();
    files.set("../../../../../victim/evil.json", Buffer.from("{}"));
    hub.add({ name: "test-org/evil-path", files });
    const mark = hub.log.length;
    expect(await refusal(pullModel({ repo: "test-org/evil-path", env: hubEnv(envFor()), converterOutput: "ignore" }))).to.equal(
      'test-org/evil-path: refused listed file "../../../../../victim/evil.json": it leaves its folder (a ".." segment)',
    );
    expect(hub.log.slice(mark).filter((q) => q.url.includes("/resolve/"))).to.deep.equal([]);

    const repo = hub.add({ name: "test-org/names", files: editorFiles() });
    const cases: Array<[string, RegExp]> = [
      ["/tmp/absolute.json", /it is absolute/],
      ["unet\\..\\..\\x", /backslash/],
      ["unet//config.json", /empty segment/],
      ["unet/./config.json", /"\." segment/],
      ["unet/config.json\u0000x", /NUL/],
      ["", /empty/],
      ["unet/../../x", /leaves its folder/],
    ];
    for (const [bad, why] of cases) {
      repo.entries = [...editorFiles()].map(([p, c]) => entry(p, c)).concat([entry(bad, Buffer.from("{}"))]);
      const msg = await refusal(pullSnapshot({ repo: "test-org/names", env: hubEnv(envFor()) }));
      expect(msg).to.include(`test-org/names: refused listed file ${JSON.stringify(bad)}`);
      expect(msg, bad).to.match(why);
    }
  });

  guarded("shard names from a sharded index: one that leaves the folder is refused, a duplicate is fetched once, a file/folder clash is one line (never EEXIST)", async () => {
    const index = "unet/diffusion_pytorch_model.safetensors.index.json";
    const withIndex = (map: Record<string, string>, extra: Array<[string, Buffer]> = []) => {
      const f = editorFiles("sharded");
      f.set(index, Buffer.from(JSON.stringify({ metadata: {}, weight_map: map })));
      for (const [p, c] of extra) f.set(p, c);
      return f;
    };
    hub.add({ name: "test-org/evil-shard", files: withIndex({ "a.weight": "../../../../../victim/shard.bin" }) });
    const msg = await refusal(pullSnapshot({ repo: "test-org/evil-shard", env: hubEnv(envFor()) }));
    expect(msg).to.equal(`test-org/evil-shard: refused shard named by ${index} "../../../../../victim/shard.bin": it leaves its folder (a ".." segment)`);

    // the listing names the escaping shard too: refused as a listed file, before the index is read
    hub.add({ name: "test-org/evil-shard-listed", files: withIndex({ "a.weight": "../../../../../victim/shard.bin" }, [["unet/../../../../../victim/shard.bin", Buffer.alloc(8)]]) });
    expect(await refusal(pullSnapshot({ repo: "test-org/evil-shard-listed", env: hubEnv(envFor()) }))).to.match(/refused listed file "unet\/\.\.\/.*leaves its folder/);

    // a shard named like a file the selection has anyway (the audit's raw EEXIST): fetched once
    hub.add({ name: "test-org/dup-shard", files: withIndex({ "a.weight": "config.json", "b.weight": "part-1.safetensors" }, [["unet/part-1.safetensors", Buffer.alloc(32, 7)]]) });
    const snap = await pullSnapshot({ repo: "test-org/dup-shard", env: hubEnv(envFor()) });
    expect(new Set(snap.files).size).to.equal(snap.files.length);
    expect(snap.files).to.include.members(["unet/config.json", "unet/part-1.safetensors", index]);

    // unet/x is a file and a folder at once: one line, nothing linked through it
    hub.add({ name: "test-org/clash", files: withIndex({ "a.weight": "x", "b.weight": "x/y" }, [["unet/x", Buffer.alloc(8, 1)], ["unet/x/y", Buffer.alloc(8, 2)]]) });
    expect(await refusal(pullSnapshot({ repo: "test-org/clash", env: hubEnv(envFor()) }))).to.equal('test-org/clash: refused listed file "unet/x/y": unet/x is listed as a file too');
  });

  // finding 3: blob ids
  guarded("blob ids that are not hex digests are refused: no stale 'lock' deleted, no link to the victim's file or folder", async () => {
    const base = editorFiles();
    const repo = hub.add({ name: "test-org/evil-oid", files: base });
    const cases: Array<[string, (e: Record<string, unknown>) => void, RegExp]> = [
      ["model_index.json", (e) => (e.oid = "../../../victim/yarn"), /refused git id of model_index\.json "\.\.\/\.\.\/\.\.\/victim\/yarn": not a git blob id \(40 hex digits\)/],
      ["vae/diffusion_pytorch_model.safetensors", (e) => ((e.lfs as Record<string, unknown>).oid = "../../../victim/secret.json"), /refused LFS id of vae\/diffusion_pytorch_model\.safetensors .*not a sha256 \(64 hex digits\)/],
      ["unet/config.json", (e) => (e.oid = "../../../victim/dir"), /refused git id of unet\/config\.json/],
      ["tokenizer/vocab.json", (e) => (e.oid = "A".repeat(40)), /not a git blob id/],
      ["tokenizer/merges.txt", (e) => (e.oid = "a".repeat(64)), /not a git blob id/],
      ["text_encoder/config.json", (e) => delete e.oid, /refused git id of text_encoder\/config\.json undefined/],
    ];
    for (const [file, spoil, want] of cases) {
      repo.entries = [...base].map(([p, c]) => {
        const e = entry(p, c);
        if (p === file) spoil(e);
        return e;
      });
      const env = envFor();
      const msg = await refusal(pullSnapshot({ repo: "test-org/evil-oid", env: hubEnv(env) }));
      expect(msg).to.match(want);
      expect(msg.startsWith("test-org/evil-oid: ")).to.equal(true);
    }
    expect(() => checkBlobName("..", "git", { owner: "x/y", what: "blob id" })).to.throw(HubError, 'x/y: refused blob id "..": not a git blob id (40 hex digits)');
  });

  // finding 4: the token
  guarded("the token goes only to the endpoint's origin: not to a next page on another origin, nor to a file redirected there", async () => {
    const files = editorFiles();
    const repo = hub.add({ name: "test-org/leaky", files });
    const all = [...files].map(([p, c]) => entry(p, c));
    repo.tree = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json", link: `<${other.url}/api/models/test-org/leaky/tree/${repo.commit}?cursor=1>; rel="next"` });
      res.end(JSON.stringify(all));
    };
    repo.resolve = new Map([["unet/diffusion_pytorch_model.safetensors", (_req: IncomingMessage, res: ServerResponse) => void res.writeHead(302, { location: `${other.url}/lfs/unet` }).end()]]);
    const mark = hub.log.length;
    const snap = await pullSnapshot({ repo: "test-org/leaky", env: hubEnv(envFor()) });
    expect(snap.files).to.include("unet/diffusion_pytorch_model.safetensors");
    expect(other.log.map((q) => q.url)).to.have.members([`/api/models/test-org/leaky/tree/${repo.commit}?cursor=1`, "/lfs/unet"]);
    expect(other.log.map((q) => q.authorization)).to.deep.equal([undefined, undefined]);
    // the endpoint itself got the token on every request
    expect(hub.log.slice(mark).every((q) => q.authorization === `Bearer ${TOKEN}`)).to.equal(true);
  });

  // finding 5: revisions
  guarded("a revision with .. (--revision, hub:...@rev) is refused before any request; the ref file stays in the cache", async () => {
    const files = editorFiles();
    hub.add({ name: "test-org/any-rev", files });
    const mark = hub.log.length;
    const r = await runCli(["models", "pull", "test-org/any-rev", "--revision", "../../../../victim/ref"], envFor());
    expect(cliLine(r)).to.equal('reward-edit: test-org/any-rev: refused revision "../../../../victim/ref": it leaves its folder (a ".." segment)');
    const spec = parseHubSpec("hub:test-org/any-rev@refs/../../../../../victim/ref");
    const msg = await refusal(pullModel({ ...spec, env: hubEnv(envFor()), converterOutput: "ignore" }));
    expect(msg).to.match(/^test-org\/any-rev: refused revision "refs\/\.\.\/.*leaves its folder/);
    expect(hub.log.length).to.equal(mark);
    // and the cache's own lookups go through the same check
    expect(() => containedPath(root, "a/../../b", { owner: "x/y", what: "dataset key" })).to.throw('x/y: refused dataset key "a/../../b": it leaves its folder (a ".." segment)');
  });

  // finding 6: deadlines and caps
  guarded("headers that never come: one line naming the deadline, never 'cannot reach' (CLI); a blob's tries are bounded (library)", async () => {
    hub.add({ name: "test-org/silent", files: editorFiles(), revision: () => {} });
    const r = await runCli(["models", "pull", "test-org/silent"], envFor({ REWARD_EDIT_HUB_HEADERS_TIMEOUT: "1" }));
    const line = cliLine(r);
    expect(line).to.equal(`reward-edit: timed out waiting for headers from ${new URL(hub.url).host} after 1 s (the revision info of test-org/silent; REWARD_EDIT_HUB_HEADERS_TIMEOUT)`);
    expect(line).not.to.include("cannot reach");

    const repo = hub.add({ name: "test-org/silent-blob", files: editorFiles() });
    repo.resolve = new Map([["vae/diffusion_pytorch_model.safetensors", () => {}]]);
    const mark = hub.log.length;
    const msg = await refusal(pullSnapshot({ repo: "test-org/silent-blob", env: hubEnv(envFor()) }));
    expect(msg).to.equal(`timed out waiting for headers from ${new URL(hub.url).host} after 0.3 s (vae/diffusion_pytorch_model.safetensors; REWARD_EDIT_HUB_HEADERS_TIMEOUT)`);
    // REWARD_EDIT_HUB_TIMEOUT_TRIES (3 by default), not the 5 tries of a broken transfer
    expect(hub.log.slice(mark).filter((q) => q.url.includes("vae/diffusion_pytorch_model.safetensors"))).to.have.length(3);
  });

  guarded("listings that never end: a body past the JSON cap, pages past the page cap, entries past the entry cap, a page past the overall deadline", async () => {
    const host = new URL(hub.url).host;
    const repo = hub.add({ name: "test-org/endless", files: editorFiles() });
    repo.tree = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("[");
      stream(res, `${JSON.stringify(entry("x/y.json", Buffer.from("{}")))},`.repeat(100), 0, 50_000_000);
    };
    expect(await refusal(pullSnapshot({ repo: "test-org/endless", env: hubEnv(envFor()) }))).to.equal(
      `${host} sent more than 1000000 B for the listing of test-org/endless (REWARD_EDIT_HUB_MAX_JSON_BYTES); refusing it`,
    );

    let page = 0;
    repo.tree = (_req, res, url) => {
      page++;
      const next = new URL(url);
      next.searchParams.set("cursor", String(page));
      res.writeHead(200, { "content-type": "application/json", link: `<${next}>; rel="next"` });
      res.end(JSON.stringify([entry(`f/${page}.json`, Buffer.from("{}"))]));
    };
    expect(await refusal(pullSnapshot({ repo: "test-org/endless", env: hubEnv(envFor()) }))).to.equal("the listing of test-org/endless runs past 20 pages (REWARD_EDIT_HUB_MAX_PAGES); refusing it");
    expect(page).to.equal(20);

    repo.tree = (_req, res) => void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(Array.from({ length: 600 }, (_, i) => entry(`f/${i}.json`, Buffer.from("{}")))));
    expect(await refusal(pullSnapshot({ repo: "test-org/endless", env: hubEnv(envFor()) }))).to.equal("the listing of test-org/endless runs past 500 entries (REWARD_EDIT_HUB_MAX_ENTRIES); refusing it");

    // fast enough never to look idle, never done: the overall deadline of an API request
    repo.tree = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("[");
      stream(res, " ".repeat(2048), 100);
    };
    expect(await refusal(pullSnapshot({ repo: "test-org/endless", env: hubEnv(envFor()) }))).to.equal(`${host} took more than 1.5 s for the listing of test-org/endless (REWARD_EDIT_HUB_TIMEOUT)`);
  });

  guarded("a 500 whose body never ends (silent or streaming) is the Hub's 500 in one line; a body trickling a byte at a time is 'stalled'", async () => {
    const host = new URL(hub.url).host;
    hub.add({ name: "test-org/err-silent", files: editorFiles(), revision: (_req, res) => void res.writeHead(500, { "content-type": "application/json" }).write('{"error": "') });
    expect(await refusal(pullSnapshot({ repo: "test-org/err-silent", env: hubEnv(envFor()) }))).to.match(/^the Hub answered HTTP 500 \(\{"error": "\) for http:\/\/127\.0\.0\.1:\d+\/api\/models\/test-org\/err-silent\/revision\/main\S*; try again later$/);
    const streaming = hub.add({ name: "test-org/err-stream", files: editorFiles() });
    streaming.tree = (_req, res) => {
      res.writeHead(500, { "content-type": "text/plain" });
      stream(res, "internal error ".repeat(300), 0, 50_000_000);
    };
    expect(await refusal(pullSnapshot({ repo: "test-org/err-stream", env: hubEnv(envFor()) }))).to.match(/^the Hub answered HTTP 500 \(internal error .*\) for .*\/tree\/.*; try again later$/);

    const trickle = hub.add({ name: "test-org/trickle", files: editorFiles() });
    trickle.resolve = new Map([
      [
        "unet/config.json",
        (_req: IncomingMessage, res: ServerResponse) => {
          res.writeHead(200, { "content-type": "application/octet-stream", "content-length": "100" });
          stream(res, "x", 100);
        },
      ],
    ]);
    const msg = await refusal(pullSnapshot({ repo: "test-org/trickle", env: hubEnv(envFor()) }));
    expect(msg).to.match(new RegExp(`^${host.replace(/\./g, "\\.")} sent only \\d B in 0\\.5 s \\(unet/config\\.json\\): stalled \\(REWARD_EDIT_HUB_IDLE_TIMEOUT\\); \\d+ of \\d+ bytes kept, run the pull again to resume$`));
  });

  guarded("a file that outgrows its listed size is cut at that size and deleted; listed sizes that are not byte counts are refused naming the file", async () => {
    const files = editorFiles();
    const repo = hub.add({ name: "test-org/oversize", files });
    repo.entries = [...files].map(([p, c]) => (p === "model_index.json" ? { ...entry(p, c), size: 32 } : entry(p, c)));
    repo.resolve = new Map([["model_index.json", (_req: IncomingMessage, res: ServerResponse) => (res.writeHead(200, { "content-type": "application/octet-stream" }), stream(res, Buffer.alloc(65536, 9), 0, 400_000_000))]]);
    const env = envFor();
    const msg = await refusal(pullSnapshot({ repo: "test-org/oversize", env: hubEnv(env) }));
    expect(msg).to.equal(`model_index.json: ${new URL(hub.url).host} sent more than the listed size 32 B; deleted, nothing cached`);
    const blobs = path.join(env.HF_HUB_CACHE!, "models--test-org--oversize", "blobs");
    // (other files may still be on their way: only this one's blob and partial file matter)
    expect(readdirSync(blobs).filter((f) => f.startsWith(entry("model_index.json", files.get("model_index.json")!).oid as string))).to.deep.equal([]);

    for (const [size, shown] of [[-5, "-5"], ["3212abc", '"3212abc"'], [1.5, "1.5"], [2 ** 60, String(2 ** 60)]] as const) {
      repo.entries = [...files].map(([p, c]) => {
        const e = entry(p, c);
        if (p === "vae/diffusion_pytorch_model.safetensors") (e.lfs as { size: unknown }).size = size;
        return e;
      });
      repo.resolve = undefined;
      expect(await refusal(pullSnapshot({ repo: "test-org/oversize", env: hubEnv(envFor()) }))).to.equal(`test-org/oversize: the listing gives vae/diffusion_pytorch_model.safetensors the size ${shown}, not a byte count; refusing it`);
    }
  });

  // finding 7: archives
  guarded("archives: a zip bomb, a tar.gz bomb, an escaping entry and a link entry are refused naming dataset and archive; no partial folder is left", async () => {
    const [zipBomb, tarBomb, slip, link] = ["bomb.zip", "bomb.tar.gz", "slip.zip", "link.tar"].map((f) => path.join(root, f));
    // one Python start for all four (each costs seconds on a loaded machine)
    python(
      [
        "import io, sys, tarfile, zipfile",
        "z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED); z.writestr('data/zeros.bin', bytes(20_000_000)); z.close()",
        "t = tarfile.open(sys.argv[2], 'w:gz')",
        "for i in range(3):",
        "    ti = tarfile.TarInfo(f'data/zeros{i}.bin'); ti.size = 8_000_000; t.addfile(ti, io.BytesIO(bytes(ti.size)))",
        "t.close()",
        "z = zipfile.ZipFile(sys.argv[3], 'w'); z.writestr('data/ok.txt', 'ok'); z.writestr('../../../../../victim/dir/keep.txt', 'overwritten'); z.close()",
        "t = tarfile.open(sys.argv[4], 'w'); ti = tarfile.TarInfo('data/secret'); ti.type = tarfile.SYMTYPE; ti.linkname = '../../../../victim/secret.json'; t.addfile(ti); t.close()",
      ].join("\n"),
      zipBomb,
      tarBomb,
      slip,
      link,
    );
    const cases: Array<[string, string, string, RegExp]> = [
      ["test-org/zip-bomb", "photos.zip", zipBomb, /entry "data\/zeros\.bin" expands \d+ B to 20000000 B, more than 100 times \(REWARD_EDIT_ARCHIVE_MAX_RATIO\)$/],
      ["test-org/tar-bomb", "photos.tar.gz", tarBomb, /its \d+ B expand to more than \d+ B, more than 100 times \(REWARD_EDIT_ARCHIVE_MAX_RATIO\)$/],
      ["test-org/zip-slip", "photos.zip", slip, /entry "\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/victim\/dir\/keep\.txt"/],
      ["test-org/tar-link", "photos.tar", link, /entry "data\/secret" is a SymbolicLink; only files and folders are extracted$/],
    ];
    for (const [name, file, src, want] of cases) {
      hub.add({ type: "dataset", name, files: new Map([["real_edit_instruct.json", Buffer.from("{}")], [file, readFileSync(src)]]) });
      const env = envFor();
      const msg = await withProcessEnv(env, () => refusal(pullRealEdit({ dataset: name, env: hubEnv(env) })));
      expect(msg.startsWith(`dataset ${name}: archive ${file} refused: `), msg).to.equal(true);
      expect(msg).to.match(want);
      const extracted = path.join(env.REWARD_EDIT_CACHE!, "datasets", `datasets--${name.replace("/", "--")}`);
      const left = existsSync(extracted) ? readdirSync(extracted, { recursive: true }).map(String) : [];
      expect(left.filter((f) => /partial|photos/.test(f)), name).to.deep.equal([]);
    }
  });

  guarded("archive caps: entry count and entry size, each one line; a tar written with ./ names extracts", async () => {
    const many = path.join(root, "many.zip");
    python("import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w')\nfor i in range(5): z.writestr(f'{i}.txt', 'x'*200)\nz.close()", many);
    const lim: ArchiveLimits = { maxEntries: 3, maxEntryBytes: 1 << 20, maxTotalBytes: 1 << 30, maxRatio: 100 };
    const into = (tag: string) => {
      const d = path.join(root, "extract", tag);
      mkdirSync(d, { recursive: true });
      return d;
    };
    expect(await refusal(extractArchive(many, into("count"), "dataset x/y: archive many.zip", lim))).to.equal("dataset x/y: archive many.zip refused: 5 entries, more than 3 (REWARD_EDIT_ARCHIVE_MAX_ENTRIES)");
    expect(await refusal(extractArchive(many, into("size"), "dataset x/y: archive many.zip", { ...lim, maxEntries: 10, maxEntryBytes: 100 }))).to.equal(
      'dataset x/y: archive many.zip refused: entry "0.txt" holds 200 B, more than 100 B (REWARD_EDIT_ARCHIVE_MAX_ENTRY_BYTES)',
    );
    const dotted = path.join(root, "dotted.tar");
    const stage = path.join(root, "dotted");
    mkdirSync(path.join(stage, "images"), { recursive: true });
    writeFileSync(path.join(stage, "images", "a.txt"), "a");
    execFileSync("tar", ["-cf", dotted, "-C", stage, "."]);
    const ok = into("dotted");
    await extractArchive(dotted, ok, "dataset x/y: archive dotted.tar", lim);
    expect(readdirSync(path.join(ok, "images"))).to.deep.equal(["a.txt"]);
  });

  it("the victim folder is what it was at the start: nothing removed, renamed or written beside the cache", () => {
    expect(readdirSync(victim).sort()).to.deep.equal(["dir", "secret.json", "yarn.lock"]);
    expect(readdirSync(path.join(victim, "dir"))).to.deep.equal(["keep.txt"]);
    expect(lstatSync(path.join(victim, "yarn.lock")).mtime.toISOString()).to.equal("2020-01-01T00:00:00.000Z");
  });

  it("an ill-set deadline variable is one line naming it", () => {
    expect(() => hubEnv({ REWARD_EDIT_HUB_IDLE_TIMEOUT: "soon" })).to.throw(HubError, 'REWARD_EDIT_HUB_IDLE_TIMEOUT must be a number of seconds (0: no limit), got "soon"');
  });
});
