/**
 * Builds a scheduler from a diffusers scheduler_config.json. As diffusers' extract_init_dict:
 * known keys are kept, unknown ones warned about, `_`-prefixed metadata dropped; unsupported
 * values are rejected with the list of valid ones.
 */
import {
  BETA_SCHEDULES,
  DEFAULT_CONFIG,
  FINAL_SIGMAS_TYPES,
  PREDICTION_TYPES,
  type Scheduler,
  type SchedulerConfig,
  TIMESTEP_SPACINGS,
} from "./base.js";
import { DDIMScheduler } from "./ddim.js";
import { DPMSolverMultistepScheduler } from "./dpm-solver.js";
import { EulerAncestralScheduler } from "./euler-ancestral.js";
import { EulerScheduler } from "./euler.js";
import { UniPCMultistepScheduler } from "./unipc.js";

export const SCHEDULER_NAMES = ["euler-a", "euler", "ddim", "dpmpp-2m", "unipc"] as const;
/** The deterministic multistep solvers (no fresh noise per step). */
export const MULTISTEP_SCHEDULERS: readonly SchedulerName[] = ["dpmpp-2m", "unipc"];
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** diffusers class names that map onto ours; any of them may appear in a model's config. */
const CLASS_TO_NAME: Record<string, SchedulerName> = {
  EulerAncestralDiscreteScheduler: "euler-a",
  EulerDiscreteScheduler: "euler",
  DDIMScheduler: "ddim",
  DPMSolverMultistepScheduler: "dpmpp-2m",
  UniPCMultistepScheduler: "unipc",
};

/** Keys of other diffusers schedulers that are harmless here (SD1.5's PNDM config carries them). */
const IGNORED_KEYS = new Set(["skip_prk_steps", "interpolation_type", "timestep_type",
  "rescale_betas_zero_snr", "thresholding", "dynamic_thresholding_ratio", "sample_max_value",
  "sigma_min", "sigma_max", "use_beta_sigmas", "use_exponential_sigmas",
  // the multistep solvers' variants: the scheduler name fixes them (dpmsolver++ 2M midpoint, UniPC bh2 order 2)
  "algorithm_type", "solver_order", "solver_type", "predict_x0", "disable_corrector", "solver_p",
  "lambda_min_clipped", "variance_type", "use_lu_lambdas"]);

function oneOf<T extends string>(key: string, value: unknown, valid: readonly T[]): T {
  if (!valid.includes(value as T)) {
    throw new Error(`scheduler_config.json: ${key} "${String(value)}" is not supported; valid: ${valid.join(", ")}`);
  }
  return value as T;
}

export function parseSchedulerConfig(
  raw: Record<string, unknown>,
  warn: (msg: string) => void = () => {},
): SchedulerConfig {
  const config: SchedulerConfig = { ...DEFAULT_CONFIG };
  for (const [key, value] of Object.entries(raw)) {
    if (key.startsWith("_")) continue;
    if (key in config) (config as unknown as Record<string, unknown>)[key] = value;
    else if (!IGNORED_KEYS.has(key)) warn(`scheduler_config.json: unknown key "${key}" ignored`);
  }
  oneOf("beta_schedule", config.beta_schedule, BETA_SCHEDULES);
  oneOf("timestep_spacing", config.timestep_spacing, TIMESTEP_SPACINGS);
  oneOf("prediction_type", config.prediction_type, PREDICTION_TYPES);
  oneOf("final_sigmas_type", config.final_sigmas_type, FINAL_SIGMAS_TYPES);
  if (!(config.num_train_timesteps > 0)) throw new Error("scheduler_config.json: num_train_timesteps must be > 0");
  return config;
}

/** The algorithm a config names by its `_class_name`, or Euler ancestral (the project default). */
export function defaultSchedulerName(raw: Record<string, unknown>): SchedulerName {
  return CLASS_TO_NAME[String(raw._class_name)] ?? "euler-a";
}

export function createScheduler(name: SchedulerName, config: SchedulerConfig): Scheduler {
  switch (oneOf("scheduler", name, SCHEDULER_NAMES)) {
    case "euler-a":
      if (config.prediction_type === "sample") throw new Error('euler-a does not support prediction_type "sample"');
      return new EulerAncestralScheduler(config);
    case "euler":
      return new EulerScheduler(config);
    case "ddim":
      return new DDIMScheduler(config);
    case "dpmpp-2m":
      return new DPMSolverMultistepScheduler(config);
    case "unipc":
      return new UniPCMultistepScheduler(config);
  }
}

export function schedulerFromConfig(
  raw: Record<string, unknown>,
  name?: SchedulerName,
  warn?: (msg: string) => void,
): Scheduler {
  return createScheduler(name ?? defaultSchedulerName(raw), parseSchedulerConfig(raw, warn));
}
