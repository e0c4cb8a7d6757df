/** The diffusion editor as a library: no HTTP, no CLI. */
export { CLIPTokenizer } from "./tokenizer/clip.js";
export * from "./schedulers/index.js";
export { loadModel, inspectModelFolder, declaresDeepCache, ModelFolderError, COMPONENTS } from "./model/folder.js";
export type { EditorModel, FolderReport } from "./model/folder.js";
export { parseManifest } from "./model/manifest.js";
export type { Manifest } from "./model/manifest.js";
export { createSession, ortVersion } from "./model/session.js";
export type { HostTensor, Session, SessionOptions } from "./model/session.js";
export { edit, EditInputError, DEFAULT_REWARDS, MAX_SEED } from "./pipeline/pipeline.js";
export type { EditOptions, EditResult, Rewards, StepProgress } from "./pipeline/pipeline.js";
export { ImageInputError, OUTPUT_FORMATS, prepareImage, workingSize } from "./pipeline/image.js";
export type { OutputFormat } from "./pipeline/image.js";
export { DETAIL_MODES, composeFullResolution, structureAgreement } from "./pipeline/detail.js";
export type { DetailMode } from "./pipeline/detail.js";
export { InstructPix2PixDenoiser, guidanceEnabled } from "./pipeline/guidance.js";
export type { GuidanceSchedule, StepCost } from "./pipeline/guidance.js";
export { Generator } from "./tensor/random.js";
