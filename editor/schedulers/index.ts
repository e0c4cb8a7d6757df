export * from "./base.js";
export { createScheduler, defaultSchedulerName, MULTISTEP_SCHEDULERS, parseSchedulerConfig, schedulerFromConfig, SCHEDULER_NAMES } from "./config.js";
export type { SchedulerName } from "./config.js";
export { DDIMScheduler } from "./ddim.js";
export { EulerAncestralScheduler } from "./euler-ancestral.js";
export { EulerScheduler } from "./euler.js";
export { DPMSolverMultistepScheduler } from "./dpm-solver.js";
export { UniPCMultistepScheduler } from "./unipc.js";
