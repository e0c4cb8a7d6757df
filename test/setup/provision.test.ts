import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT, tempDir } from "../helpers.js";

const SCRIPT = path.join(ROOT, "test", "provision.sh");

/** Runs the provisioning script with stand-ins for dpkg-query, id and sudo earlier on PATH. */
function provision(stubs: Record<string, string>) {
  const bin = tempDir("provision-stubs-");
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(bin, name), 0o755);
  }
  return spawnSync("bash", [SCRIPT], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, REWARD_EDIT_SKIP_PROVISION: "" } });
}

describe("test provisioning (test/provision.sh, npm test's pretest step)", () => {
  it("does nothing when every package is installed", () => {
    const r = provision({ "dpkg-query": "printf installed" });
    expect(r.status).to.equal(0);
    expect(r.stdout + r.stderr).to.equal("");
  });

  it("without root or password-less sudo, stops at once with one line naming the missing packages and the command", () => {
    const r = provision({
      "dpkg-query": 'case "$*" in *chromium*|*python3-onnx*) printf not-installed;; *) printf installed;; esac',
      id: "echo 1000",
      sudo: "exit 1",
    });
    expect(r.status).to.equal(1);
    expect(r.stdout).to.equal("");
    const lines = r.stderr.trim().split("\n");
    expect(lines).to.have.length(1);
    expect(lines[0]).to.contain("missing: chromium python3-onnx;").and.contain("sudo apt-get install -y --no-install-recommends chromium python3-onnx");
  });

  it("with password-less sudo, installs only what is missing through apt-get and says why", () => {
    const r = provision({
      "dpkg-query": 'case "$*" in *python3-pil*) printf not-installed;; *) printf installed;; esac',
      id: "echo 1000",
      sudo: 'if [ "$1" = -n ] && [ "$2" = true ]; then exit 0; fi; shift; echo "sudo $*"',
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain("installing python3-pil (needed by the test suite");
    expect(r.stdout).to.contain("sudo apt-get update -q").and.contain("sudo apt-get install -y -q --no-install-recommends python3-pil");
  });
});
