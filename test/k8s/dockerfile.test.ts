import { expect } from "chai";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { ROOT, tempDir } from "../helpers.js";

/**
 * No container runtime can pull a base image here, so the Dockerfile's own steps are run: each
 * stage in a scratch directory laid out as the image would be (its WORKDIR), its COPY sources
 * copied from a clean checkout, its RUN commands run with its ARG/ENV values, and the runtime
 * stage's CMD started and asked for one edit.
 */
interface Stage {
  name?: string;
  steps: Array<{ op: string; args: string }>;
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    if (op.toUpperCase() === "FROM") stages.push({ name: /\bAS\s+(\S+)/i.exec(args)?.[1], steps: [] });
    else stages.at(-1)!.steps.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** KEY=value pairs of an ENV line (or KEY value). */
function envPairs(args: string): Array<[string, string]> {
  if (!args.includes("=")) {
    const [k, ...v] = args.split(/\s+/);
    return [[k, v.join(" ")]];
  }
  return args.split(/\s+/).map((kv) => kv.split("=") as [string, string]);
}

const expand = (s: string, vars: Record<string, string>) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => vars[a ?? b] ?? "");

describe("k8s/Dockerfile builds from a clean checkout (its own steps, run here)", function () {
  this.timeout(600_000);
  const stages = parseDockerfile(readFileSync(path.join(ROOT, "k8s", "Dockerfile"), "utf8"));
  // a clean checkout: only what git tracks, as the build context would be
  const context = path.join(tempDir("reward-edit-docker-"), "context");
  const roots = new Map<string, string>();
  let server: ChildProcess | undefined;
  after(() => server?.kill("SIGKILL"));

  it("every COPY source exists in a clean checkout", () => {
    execFileSync("git", ["clone", "--quiet", "--depth", "1", `file://${ROOT}`, context]);
    // uncommitted work is part of what is being tested: bring the working tree's tracked files over
    for (const f of execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean)) {
      if (existsSync(path.join(ROOT, f))) cpSync(path.join(ROOT, f), path.join(context, f));
    }
    const missing: string[] = [];
    for (const s of stages)
      for (const step of s.steps.filter((x) => x.op === "COPY" && !x.args.startsWith("--from"))) {
        const parts = step.args.split(/\s+/);
        for (const src of parts.slice(0, -1)) if (!existsSync(path.join(context, src))) missing.push(src);
      }
    expect(missing).to.deep.equal([]);
  });

  it("the build stage's RUN commands succeed and the runtime stage's files start the server, which answers an edit", async () => {
    for (const [i, s] of stages.entries()) {
      const root = path.join(path.dirname(context), `stage-${i}`);
      let workdir = root;
      const vars: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" };
      for (const step of s.steps) {
        if (step.op === "WORKDIR") (workdir = path.join(root, step.args)), mkdirSync(workdir, { recursive: true });
        else if (step.op === "ARG") {
          const [k, v] = step.args.split("=");
          vars[k] = process.env[k] ?? v ?? "";
        } else if (step.op === "ENV") for (const [k, v] of envPairs(step.args)) vars[k] = expand(v, vars);
        else if (step.op === "COPY") {
          const parts = step.args.split(/\s+/);
          const from = parts[0].startsWith("--from=") ? roots.get(parts.shift()!.slice(7))! : context;
          const rawDest = parts.pop()!;
          const dest = path.resolve(workdir, rawDest);
          // Docker's rule: a destination ending in "/" (or several sources) is a folder to copy into
          const intoFolder = rawDest.endsWith("/") || rawDest === "." || parts.length > 1;
          for (const src of parts) {
            const target = intoFolder ? path.join(dest, path.basename(src)) : dest;
            cpSync(path.join(from, src), target, { recursive: true });
          }
        } else if (step.op === "RUN") {
          // a build stage's RUN is the npm install and the TypeScript build
          execFileSync("bash", ["-c", step.args], { cwd: workdir, env: vars, stdio: "pipe" });
        } else if (step.op === "CMD") {
          const cmd = JSON.parse(step.args) as string[];
          vars.PORT = "0";
          vars.HOST = "127.0.0.1";
          server = spawn(cmd[0] === "node" ? process.execPath : cmd[0], cmd.slice(1), { cwd: workdir, env: vars, stdio: ["ignore", "pipe", "pipe"] });
        }
      }
      if (s.name) roots.set(s.name, root);
    }
    expect(server, "the last stage has a CMD").to.not.equal(undefined);
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const t = setTimeout(() => reject(new Error(`the server did not start: ${out}`)), 60_000);
      const read = (d: Buffer) => {
        out += d;
        const m = /"url":"(http:\/\/[^"]+)"|on (http:\/\/\S+)/.exec(out);
        if (m) (clearTimeout(t), resolve(m[1] ?? m[2]));
      };
      server!.stdout!.on("data", read);
      server!.stderr!.on("data", read);
      server!.on("exit", (code) => reject(new Error(`the server exited (${code}): ${out}`)));
    });
    const f = new FormData();
    f.append("image", new Blob([new Uint8Array(readFileSync(path.join(ROOT, "models", "heldout-v2", "scenes", "syn-0000-source.png")))]), "p.png");
    f.append("instruction", "make the background blue");
    f.append("steps", "2");
    const r = await fetch(`${url}/v1/edits`, { method: "POST", body: f });
    expect(r.status).to.equal(200);
    expect(r.headers.get("content-type")).to.equal("image/png");
  });
});
