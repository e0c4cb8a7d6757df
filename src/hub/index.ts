/** The Hugging Face Hub, as this project uses it: snapshots of chosen files in the shared cache. */
export { COMMIT, HubCache, type RepoId, type RepoType, repoLabel } from "./cache.js";
export { type HubEnv, hfHome, hubCacheDir, hubEnv, hubToken } from "./env.js";
export { HubError, type HubErrorKind } from "./errors.js";
export { type PullProgress, progressFor, silentProgress } from "./progress.js";
export { type RemoteFile, type Selector, type Snapshot, type SnapshotRequest, snapshot } from "./snapshot.js";
export { type HubLimits, HUB_LIMIT_VARS, hubLimits } from "./limits.js";
export { type NameSource, checkBlobName, checkName, checkRepoName, containedPath, isSafeName, refuseName, unsafeReason } from "./safe-path.js";
