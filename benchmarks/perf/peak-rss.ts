/**
 * A process's own peak resident set, for the perf tables' peak-RSS columns.
 *
 * Not process.resourceUsage().maxRSS: on Linux getrusage's high-water mark survives fork and exec,
 * so a cost child spawned by a parent that holds several GB starts at the parent's peak (the 14 MB
 * bundled editor was reported at 4.98 GB). VmHWM in /proc/self/status belongs to the address
 * space, which exec replaces, so it counts only what this process touched.
 */
import { readFileSync } from "node:fs";

/** VmHWM of a /proc/<pid>/status text, in bytes; null where the line is missing. */
export function parseVmHwm(status: string): number | null {
  const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

/** This process's peak RSS in bytes; without procfs (macOS) getrusage's, the best there is. */
export function peakRssBytes(): number {
  try {
    const hwm = parseVmHwm(readFileSync("/proc/self/status", "utf8"));
    if (hwm !== null) return hwm;
  } catch {
    // no /proc: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** The same in GiB, the unit the reports print as "GB". */
export function peakRssGb(): number {
  return peakRssBytes() / 2 ** 30;
}
