import { expect } from "chai";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { loadAll } from "js-yaml";
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from "kubernetes-models/v1";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Job } from "kubernetes-models/batch/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { loadPresets } from "../../src/presets/index.js";
import { ROOT } from "../helpers.js";

const K8S = path.join(ROOT, "k8s");
// each kind validated against the Kubernetes OpenAPI schema shipped with kubernetes-models
const MODELS: Record<string, new (d: never) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "batch/v1/Job": Job,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string> };
const docs: Array<[string, Doc]> = readdirSync(K8S)
  .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
  .flatMap((f) => (loadAll(readFileSync(path.join(K8S, f), "utf8")) as Doc[]).filter(Boolean).map((d): [string, Doc] => [f, d]));

describe("Kubernetes manifests", () => {
  it("there is a manifest of every kind the deployment needs", () => {
    const kinds = docs.map(([, d]) => d.kind);
    expect(kinds).to.include.members(["Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "NetworkPolicy"]);
  });

  it("no key ships in the manifests: the Secret is the operator's, required by the pods, and the README says how to create it", () => {
    expect(docs.filter(([, d]) => d.kind === "Secret")).to.deep.equal([]);
    for (const [, d] of docs.filter(([, x]) => x.kind === "Deployment")) {
      const refs = d.spec.template.spec.containers[0].envFrom.filter((e: { secretRef?: unknown }) => e.secretRef);
      expect(refs).to.deep.equal([{ secretRef: { name: "reward-edit", optional: false } }]);
    }
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    expect(readme).to.match(/kubectl create secret generic reward-edit --from-literal=REWARD_EDIT_API_KEYS=.*--from-literal=REDIS_PASSWORD=/s);
  });

  it("Redis asks for the Secret's password, and only the service's pods may reach it", () => {
    const redis = docs.find(([, d]) => d.kind === "StatefulSet")![1].spec.template.spec.containers[0];
    expect(redis.args.slice(-2)).to.deep.equal(["--requirepass", "$(REDIS_PASSWORD)"]);
    expect(redis.env).to.deep.equal([{ name: "REDIS_PASSWORD", valueFrom: { secretKeyRef: { name: "reward-edit", key: "REDIS_PASSWORD" } } }]);
    expect(redis.readinessProbe.exec.command.join(" ")).to.contain("REDISCLI_AUTH");
    const policy = docs.find(([, d]) => d.kind === "NetworkPolicy")![1];
    expect(policy.spec.podSelector.matchLabels).to.deep.equal({ "app.kubernetes.io/name": "reward-edit-redis" });
    expect(policy.spec.ingress).to.deep.equal([{ from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "reward-edit" } } }], ports: [{ protocol: "TCP", port: 6379 }] }]);
    const app = docs.find(([, d]) => d.kind === "Deployment" && d.metadata.name === "reward-edit")![1];
    expect(app.spec.template.metadata.labels["app.kubernetes.io/name"]).to.equal("reward-edit");
    expect(readFileSync(path.join(K8S, "kustomization.yaml"), "utf8")).to.contain("networkpolicy.yaml");
  });

  for (const [file, doc] of docs) {
    it(`${file}: ${doc.kind} ${doc.metadata?.name} validates against the Kubernetes schema`, () => {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `no schema for ${doc.apiVersion}/${doc.kind}`).to.not.equal(undefined);
      expect(() => new Model(doc as never).validate()).to.not.throw();
    });
  }

  it("replicas share one Redis: a StatefulSet with a volume behind a Service the ConfigMap's REDIS_URL names", () => {
    const redis = docs.find(([, d]) => d.kind === "StatefulSet")![1];
    expect(redis.spec.volumeClaimTemplates[0].spec.resources.requests.storage).to.be.a("string");
    expect(redis.spec.template.spec.containers[0].args).to.include("--appendonly");
    const svc = docs.find(([, d]) => d.kind === "Service" && d.metadata.name === "reward-edit-redis")![1];
    const url = new URL(docs.find(([, d]) => d.kind === "ConfigMap")![1].data!.REDIS_URL);
    expect([url.hostname, Number(url.port)]).to.deep.equal([svc.metadata.name, svc.spec.ports[0].port]);
    const kustomization = readFileSync(path.join(K8S, "kustomization.yaml"), "utf8");
    expect(kustomization).to.contain("redis.yaml");
  });

  it("an invalid manifest is caught (the validation is not a no-op)", () => {
    const bad = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" }, spec: { replicas: "two", template: {} } };
    expect(() => new Deployment(bad as never).validate()).to.throw();
  });

  it("deployments probe /healthz and /readyz and drain within their grace period", () => {
    for (const [, d] of docs.filter(([, d]) => d.kind === "Deployment")) {
      const pod = d.spec.template.spec;
      const c = pod.containers[0];
      expect(c.readinessProbe.httpGet.path).to.equal("/readyz");
      expect(c.livenessProbe.httpGet.path).to.equal("/healthz");
      expect(c.resources.requests.cpu).to.be.a("string");
      expect(c.lifecycle.preStop).to.not.equal(undefined);
      expect(pod.terminationGracePeriodSeconds).to.be.at.least(60);
    }
    // the drain must fit in the grace period after the 10 s preStop pause
    const drainMs = Number(docs.find(([, d]) => d.kind === "ConfigMap")![1].data!.REWARD_EDIT_DRAIN_TIMEOUT_MS);
    const graceS = docs.find(([f]) => f === "deployment.yaml")![1].spec.template.spec.terminationGracePeriodSeconds;
    expect(drainMs).to.be.at.most(graceS * 1000 - 10_000);
  });

  it("the ConfigMap's presets are the bundled presets", () => {
    const cm = docs.find(([, d]) => d.kind === "ConfigMap")![1];
    const fromMap = JSON.parse(cm.data!["presets.json"]);
    const bundled = JSON.parse(readFileSync(path.join(ROOT, "src", "presets", "presets.json"), "utf8"));
    expect(fromMap).to.deep.equal(bundled);
    expect(Object.keys(loadPresets())).to.deep.equal(Object.keys(fromMap));
  });

  it("the C2PA certificate and key come from the operator's Secret as read-only files the ConfigMap names, documented beside the API-key Secret (issue 32)", () => {
    const cm = docs.find(([, d]) => d.kind === "ConfigMap")![1].data!;
    for (const [f, d] of docs.filter(([, x]) => x.kind === "Deployment")) {
      const pod = d.spec.template.spec;
      const volume = pod.volumes.find((v: { secret?: { secretName: string } }) => v.secret?.secretName === "reward-edit-c2pa");
      expect(volume, f).to.deep.include({ secret: { secretName: "reward-edit-c2pa", optional: false, defaultMode: 0o440, items: [{ key: "tls.crt", path: "tls.crt" }, { key: "tls.key", path: "tls.key" }] } });
      const mount = pod.containers[0].volumeMounts.find((m: { name: string }) => m.name === volume.name);
      expect(mount.readOnly, f).to.equal(true);
      expect(cm.REWARD_EDIT_C2PA_CERT).to.equal(`${mount.mountPath}/tls.crt`);
      expect(cm.REWARD_EDIT_C2PA_KEY).to.equal(`${mount.mountPath}/tls.key`);
      // files, never environment variables holding the key
      expect(JSON.stringify(pod.containers[0].env ?? [])).to.not.contain("C2PA");
    }
    const doc = readFileSync(path.join(ROOT, "docs", "scaling-out.md"), "utf8");
    expect(doc).to.match(/kubectl create secret generic reward-edit [\s\S]*\nkubectl create secret tls reward-edit-c2pa --cert=\S+ --key=\S+/);
  });

  it("the GPU variant asks for a GPU and keeps CPU as the fallback provider", () => {
    const gpu = docs.find(([f]) => f === "deployment-gpu.yaml")![1];
    const c = gpu.spec.template.spec.containers[0];
    expect(c.resources.limits["nvidia.com/gpu"]).to.equal("1");
    expect(c.env.find((e: { name: string }) => e.name === "REWARD_EDIT_PROVIDERS").value).to.equal("cuda,cpu");
  });
});

describe("benchmark Jobs", () => {
  it("an Indexed Job runs N shards into a shared volume, and a merge Job combines them", () => {
    const job = docs.find(([f]) => f === "bench-job.yaml")![1];
    expect(job.spec.completionMode).to.equal("Indexed");
    const cmd = job.spec.template.spec.containers[0].command.join(" ");
    expect(cmd).to.contain(`--shard \${JOB_COMPLETION_INDEX}/${job.spec.completions}`);
    const merge = docs.find(([f]) => f === "bench-merge-job.yaml")![1];
    expect(merge.spec.template.spec.containers[0].command.join(" ")).to.contain("bench merge");
    const claims = (d: Doc) => d.spec.template.spec.volumes.map((v: { persistentVolumeClaim?: { claimName: string } }) => v.persistentVolumeClaim?.claimName);
    expect(claims(job)).to.include("reward-edit-bench-results");
    expect(claims(merge)).to.include("reward-edit-bench-results");
  });
});
