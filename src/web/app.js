// The slider page: plain browser JavaScript, no build step and no external resources.
const $ = (id) => document.getElementById(id);
const perspectives = ["following", "preserving", "quality"];
const labels = { following: "Instruction following", preserving: "Detail preservation", quality: "Generation quality" };
let file = null;
let sourceUrl = null;

const headers = () => {
  const key = $("apikey").value.trim();
  return key ? { authorization: `Bearer ${key}` } : {};
};
$("apikey").value = localStorage.getItem("reward-edit-key") ?? "";
$("apikey").addEventListener("change", () => localStorage.setItem("reward-edit-key", $("apikey").value.trim()));

function setSlider(name, value) {
  $(name).value = String(value);
  $(`${name}-value`).textContent = String(value);
}
for (const p of perspectives) {
  $(p).addEventListener("input", () => {
    $(`${p}-value`).textContent = $(p).value;
    document.querySelectorAll(".presets button").forEach((b) => b.classList.remove("active"));
    $("preset-description").textContent = "";
  });
}

/**
 * What the chosen preset sets besides the levels (guidance scales and the fast path's settings),
 * sent with each edit until another preset is chosen; the page's own fields (steps, sampler) win.
 */
let presetFields = {};
const PRESET_FIELDS = ["text_guidance", "image_guidance", "karras_sigmas", "guidance_interval", "adaptive_guidance", "cache_interval"];

async function loadPresets() {
  const res = await fetch("v1/presets", { headers: headers() });
  if (!res.ok) return;
  const { presets } = await res.json();
  for (const p of presets) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = p.name;
    b.dataset.preset = p.name;
    b.title = p.description;
    b.addEventListener("click", () => {
      perspectives.forEach((name, i) => setSlider(name, p.rewards[i]));
      document.querySelectorAll(".presets button").forEach((x) => x.classList.toggle("active", x === b));
      $("preset-description").textContent = p.description;
      if (p.steps) $("steps").value = String(p.steps);
      else $("steps").value = "";
      $("scheduler").value = p.scheduler ?? "";
      $("auto-mask").checked = p.auto_mask === true;
      presetFields = Object.fromEntries(PRESET_FIELDS.filter((k) => p[k] !== undefined).map((k) => [k, Array.isArray(p[k]) ? p[k].join(",") : String(p[k])]));
    });
    $("presets").append(b);
  }
}

let domain = null;
/** Whether the model folder has DeepCache's outer UNet graph; a preset's cache_interval is only sent then. */
let deepCache = false;

async function loadModel() {
  const res = await fetch("v1/models", { headers: headers() });
  if (!res.ok) return;
  const { models } = await res.json();
  const m = models[0];
  if (!m) return;
  deepCache = Boolean(m.manifest?.deep_cache);
  if (!m.takes_rewards) $("model-note").textContent = `The model ${m.name} takes no reward inputs: sliders will not change the edit.`;
  domain = m.domain;
  if (!domain) return;
  $("model-name").textContent = `Model: ${m.name} (works at ${domain.working_size} px)`;
  $("model-domain").textContent = domain.description;
  if (domain.instructions.length) $("model-instructions").textContent = `Knows: ${domain.instructions.join(" · ")}`;
  for (const ex of domain.examples) {
    const b = document.createElement("button");
    b.type = "button";
    b.title = ex.instruction;
    b.dataset.example = ex.image;
    const img = document.createElement("img");
    img.alt = "";
    const name = ex.image.slice("examples/".length);
    const blob = fetch(`v1/models/examples/${encodeURIComponent(name)}`, { headers: headers() }).then((r) => (r.ok ? r.blob() : Promise.reject(new Error(r.statusText))));
    blob.then((bl) => (img.src = URL.createObjectURL(bl))).catch(() => b.remove());
    b.append(img, document.createTextNode(ex.instruction));
    b.addEventListener("click", async () => {
      const bl = await blob;
      $("instruction").value = ex.instruction;
      pick(new File([bl], name, { type: bl.type || "image/png" }), true);
    });
    $("examples").append(b);
  }
  $("model-info").hidden = false;
}

/** Own photos on a synthetic-only model are allowed, but the user is told what to expect. */
function warnDomain(isExample) {
  const w = $("domain-warning");
  w.hidden = !(domain?.kind === "synthetic" && !isExample);
  w.replaceChildren();
  if (w.hidden) return;
  w.append(
    `This model was trained only on ${domain.working_size} px synthetic product scenes, never on photos: your photo will be edited at ${domain.working_size} px and the result will be blurred and probably wrong. Try an example above, or serve a real InstructPix2Pix / Multi-Reward checkpoint (README, "Use a real model").`,
  );
}

// ---- the mask: painted over the photo, or uploaded ----
let maskFile = null;
let painted = false;
const canvas = $("mask-canvas");
const ctx = canvas.getContext("2d");

function maskState() {
  $("mask-state").textContent = maskFile
    ? `Mask: ${maskFile.name} (white may change).`
    : painted
      ? "Mask: the painted area may change; the rest stays exactly."
      : "No mask: the whole photo may change.";
}

function clearMask() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  painted = false;
  maskFile = null;
  $("mask-file").value = "";
  maskState();
}

/** The canvas takes the photo's shape (long side at most 1024: the mask is scaled to the photo anyway). */
function resetMaskCanvas(url) {
  const img = $("mask-photo");
  img.onload = () => {
    const scale = Math.min(1, 1024 / Math.max(img.naturalWidth, img.naturalHeight));
    canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
    clearMask();
  };
  img.src = url;
  $("mask-box").hidden = false;
}

function paintAt(e) {
  const r = canvas.getBoundingClientRect();
  const x = ((e.clientX - r.left) / r.width) * canvas.width;
  const y = ((e.clientY - r.top) / r.height) * canvas.height;
  const radius = (Number($("brush").value) / 100) * Math.max(canvas.width, canvas.height) * 0.25;
  ctx.fillStyle = "rgb(255, 0, 90)";
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.fill();
  painted = true;
  maskFile = null;
  maskState();
}
canvas.addEventListener("pointerdown", (e) => {
  canvas.setPointerCapture(e.pointerId);
  paintAt(e);
});
canvas.addEventListener("pointermove", (e) => {
  if (e.buttons & 1) paintAt(e);
});
$("mask-clear").addEventListener("click", clearMask);
$("mask-file").addEventListener("change", () => {
  const f = $("mask-file").files[0];
  if (!f) return;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  painted = false;
  maskFile = f;
  maskState();
});

/** The painted strokes as the API's mask: white where painted, black elsewhere. */
function paintedMask() {
  const src = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const out = new ImageData(canvas.width, canvas.height);
  for (let i = 0; i < src.data.length; i += 4) {
    const v = src.data[i + 3];
    out.data[i] = out.data[i + 1] = out.data[i + 2] = v;
    out.data[i + 3] = 255;
  }
  const c = document.createElement("canvas");
  c.width = canvas.width;
  c.height = canvas.height;
  c.getContext("2d").putImageData(out, 0, 0);
  return new Promise((resolve) => c.toBlob(resolve, "image/png"));
}

function pick(f, isExample = false) {
  if (!f || !f.type.startsWith("image/")) return status("Please choose an image file.", true);
  file = f;
  warnDomain(isExample);
  if (sourceUrl) URL.revokeObjectURL(sourceUrl);
  sourceUrl = URL.createObjectURL(f);
  const img = document.createElement("img");
  img.src = sourceUrl;
  img.alt = "chosen photo";
  $("drop-text").replaceChildren(img, document.createTextNode(f.name));
  resetMaskCanvas(sourceUrl);
  refresh();
}
$("file").addEventListener("change", () => pick($("file").files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  pick(e.dataTransfer.files[0]);
});
$("instruction").addEventListener("input", refresh);
function refresh() {
  $("edit").disabled = !(file && $("instruction").value.trim());
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runEdit() {
  $("edit").disabled = true;
  $("progress").value = 0;
  status("Uploading…");
  const form = new FormData();
  form.append("image", file);
  form.append("instruction", $("instruction").value.trim());
  form.append("rewards", perspectives.map((p) => $(p).value).join(","));
  if ($("steps").value) form.append("steps", $("steps").value);
  if ($("scheduler").value) form.append("scheduler", $("scheduler").value);
  for (const [k, v] of Object.entries(presetFields)) if (k !== "cache_interval" || deepCache) form.append(k, v);
  if ($("seed").value) form.append("seed", $("seed").value);
  if (Number($("refine").value) > 1) form.append("refine_rounds", $("refine").value);
  form.append("response_format", "json");
  form.append("detail", $("detail").checked ? "keep" : "off");
  const mask = maskFile ?? (painted ? await paintedMask() : null);
  if (mask) {
    form.append("mask", mask, "mask.png");
    form.append("mask_mode", $("mask-mode").value);
  } else if ($("auto-mask").checked) form.append("auto_mask", "true");
  try {
    let res = await fetch("v1/jobs", { method: "POST", body: form, headers: headers() });
    let body = await res.json();
    if (!res.ok) throw new Error(body.error?.message ?? res.statusText);
    const id = body.id;
    body = await followJob(id);
    if (body.state === "cancelled") {
      status("Cancelled.");
      return;
    }
    if (body.state !== "succeeded") throw new Error(body.error?.message ?? body.state);
    res = await fetch(`v1/jobs/${id}/result?format=json`, { headers: headers() });
    body = await res.json();
    if (!res.ok) throw new Error(body.error?.message ?? res.statusText);
    show(body);
    $("progress").value = 100;
    const kept = body.detail?.kept_fraction;
    status(`Done in ${(body.timings.total_ms / 1000).toFixed(1)} s (seed ${body.parameters.seed}${kept != null ? `; ${Math.round(100 * kept)} % of the photo kept exactly` : ""}).`);
  } catch (err) {
    status(`Edit failed: ${err.message}`, true);
  } finally {
    $("cancel").hidden = true;
    $("live").hidden = true;
    refresh();
  }
}

const seconds = (ms) => (ms < 10_000 ? (ms / 1000).toFixed(1) : Math.round(ms / 1000));

/**
 * Follows a job through its events (GET v1/jobs/{id}/events?previews=1, docs/progress.md) until
 * it ends, and answers its final status. fetch rather than EventSource, which cannot send the API
 * key; a dropped stream is resumed with Last-Event-ID, and a server without events is polled.
 */
async function followJob(id) {
  $("live-photo").src = sourceUrl;
  $("live-preview").classList.remove("shown");
  $("live-preview").removeAttribute("src");
  $("live").hidden = false;
  const cancel = $("cancel");
  cancel.hidden = false;
  cancel.disabled = false;
  cancel.onclick = async () => {
    cancel.disabled = true;
    status("Cancelling…");
    await fetch(`v1/jobs/${id}`, { method: "DELETE", headers: headers() }).catch(() => {});
  };
  let lastId = null;
  for (let attempt = 0; attempt < 20; attempt++) {
    let res;
    try {
      res = await fetch(`v1/jobs/${id}/events?previews=1`, { headers: { ...headers(), accept: "text/event-stream", ...(lastId ? { "last-event-id": lastId } : {}) } });
    } catch {
      await sleep(500);
      continue;
    }
    if (res.status === 404 && attempt === 0) return pollJob(id);
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).error?.message ?? res.statusText);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let ev = { event: "message", data: "" };
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch {
        break;
      }
      if (chunk.done) break;
      buf += chunk.value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (line === "") {
          if (ev.data) {
            const final = onJobEvent(ev.event, JSON.parse(ev.data));
            if (final) return final;
          }
          ev = { event: "message", data: "" };
        } else if (line.startsWith("id:")) lastId = line.slice(3).trim();
        else if (line.startsWith("event:")) ev.event = line.slice(6).trim();
        else if (line.startsWith("data:")) ev.data += line.slice(5).trim();
      }
    }
    await sleep(300);
  }
  return pollJob(id);
}

/** Shows one job event; answers the job's status once it is final. */
function onJobEvent(event, d) {
  if (event === "queued") status(`Waiting (position ${d.position + 1})…`);
  else if (event === "started") status("Editing…");
  else if (event === "progress") {
    $("progress").value = d.steps ? Math.round((100 * d.step) / d.steps) : 0;
    const eta = d.eta_ms != null ? `, about ${seconds(d.eta_ms)} s left` : "";
    if (!$("cancel").disabled) status(`Editing… step ${d.step} of ${d.steps}${eta}`);
    if (d.preview) {
      $("live-preview").src = d.preview;
      $("live-preview").classList.add("shown");
    }
  } else if (event === "succeeded" || event === "failed" || event === "cancelled") return d;
  return null;
}

/** A server without job events: the status, polled. */
async function pollJob(id) {
  for (;;) {
    const res = await fetch(`v1/jobs/${id}`, { headers: headers() });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error?.message ?? res.statusText);
    $("progress").value = body.progress;
    if (body.state === "queued") status(`Waiting (position ${body.queue_position + 1})…`);
    else if (body.state === "running") status(`Editing… step ${body.step} of ${body.steps}`);
    else return body;
    await sleep(150);
  }
}
$("edit").addEventListener("click", runEdit);

function show(r) {
  const mime = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" }[r.format];
  const url = `data:${mime};base64,${r.image}`;
  $("after").src = url;
  $("before").src = sourceUrl;
  $("download").href = url;
  $("download").download = `edited.${r.format === "jpeg" ? "jpg" : r.format}`;
  const tbody = $("scores").querySelector("tbody");
  tbody.replaceChildren();
  for (const p of perspectives) {
    const s = r.scores?.perspectives?.[p];
    const tr = document.createElement("tr");
    const cells = [labels[p], s?.status === "scored" ? s.score.toFixed(2) : (s?.status ?? "n/a").replace("_", " "), s?.reason ?? ""];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.append(td);
    }
    tbody.append(tr);
  }
  showRelevance(r);
  showRounds(r.refine, mime);
  $("result").hidden = false;
  sizeBefore();
}

// the relevance map of an auto-masked edit, and what the rule made of it
function showRelevance(r) {
  const a = r.parameters?.autoMask;
  $("relevance-box").hidden = !a;
  if (!a) return;
  if (r.detail?.relevance) $("relevance").src = `data:image/png;base64,${r.detail.relevance}`;
  $("relevance").hidden = !r.detail?.relevance;
  const cover = `${Math.round(100 * a.coverage)} %`;
  $("relevance-note").textContent = a.applied
    ? `Where the instruction acts (white, ${cover} of the photo): everything else came back exactly as it was.`
    : a.reason === "global"
      ? `The instruction acts on the whole photo (${cover}): a global edit, so no mask was applied.`
      : "Your painted mask was used instead.";
}

// every round of a refined edit: its image, what it changed, and whether it met the levels
function showRounds(refine, mime) {
  const list = $("round-list");
  list.replaceChildren();
  $("rounds").hidden = !refine;
  if (!refine) return;
  for (const r of refine.rounds) {
    const li = document.createElement("li");
    if (r.round === refine.chosen_round) li.classList.add("chosen");
    const img = document.createElement("img");
    img.src = `data:${mime};base64,${r.image}`;
    img.alt = `round ${r.round}`;
    const text = document.createElement("span");
    const verdict = r.met ? "met the levels" : "fell short";
    const chosen = r.round === refine.chosen_round ? " (chosen)" : "";
    text.textContent = `Round ${r.round}${chosen}: ${verdict}, merit ${r.merit.toFixed(2)}. ${r.changes.length ? `Changed: ${r.changes.join("; ")}.` : "As asked."}`;
    li.append(img, text);
    list.append(li);
  }
}
function sizeBefore() {
  $("before-wrap").style.width = `${$("split").value}%`;
  $("before").style.width = `${$("compare").clientWidth}px`;
}
$("split").addEventListener("input", sizeBefore);
window.addEventListener("resize", sizeBefore);

loadPresets();
loadModel();
