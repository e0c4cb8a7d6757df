/**
 * `hub:REPO[/SUBFOLDER][@REV]`, the form REWARD_EDIT_MODEL and --model accept beside a folder:
 * `hub:timbrooks/instruct-pix2pix`, `hub:Gstar666/Reward-InsPix2Pix/stage2_reward_instruct_pix2pix@main`.
 */
export interface HubModelSpec {
  repo: string;
  subfolder?: string;
  revision?: string;
}

export const HUB_PREFIX = "hub:";

export const isHubSpec = (s: string) => s.startsWith(HUB_PREFIX);

export function parseHubSpec(spec: string): HubModelSpec {
  const body = spec.slice(HUB_PREFIX.length);
  const at = body.lastIndexOf("@");
  const where = at >= 0 ? body.slice(0, at) : body;
  const revision = at >= 0 ? body.slice(at + 1) : undefined;
  const parts = where.split("/").filter(Boolean);
  if (parts.length < 2 || (revision !== undefined && !revision)) {
    throw new Error(`"${spec}" is not a Hub model: write hub:NAMESPACE/NAME[/SUBFOLDER][@REVISION]`);
  }
  return { repo: `${parts[0]}/${parts[1]}`, subfolder: parts.length > 2 ? parts.slice(2).join("/") : undefined, revision };
}
