/**
 * Loaded by mocha before any test file (.mocharc.json "require"): the caller's shell must not change
 * what the suite sees. A developer with a judge or an OpenAI key configured would otherwise get
 * judge-scored servers, pages and CLI runs, and REDIS_URL would move every memory-mode server onto
 * Redis, and a Hugging Face token, cache or HF_HUB_OFFLINE would reach the Hub tests' loopback pulls.
 * Tests that need one of these set it themselves.
 */
const LEAKS = /^(REWARD_EDIT_|OPENAI_|HF_|HUGGING_FACE_HUB_TOKEN$|HUGGINGFACE_HUB_CACHE$|ORT_THREADS$|REDIS_URL$)/;
const KEEP = new Set([
  // the suite's own switches, documented in README and test/provision.sh
  "REWARD_EDIT_SKIP_PROVISION",
  "REWARD_EDIT_PYTHON",
  "REWARD_EDIT_CACHE",
]);

for (const key of Object.keys(process.env)) {
  if (LEAKS.test(key) && !KEEP.has(key)) delete process.env[key];
}
