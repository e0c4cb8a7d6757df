/**
 * Phase-by-phase progress for long benchmark runs: each phase is announced as it starts with its
 * estimate, so a ten-minute phase is never silence. On a terminal a cli-progress bar carries the
 * phase name; elsewhere (CI logs, pipes) one line per phase, since a redrawn bar would spam them.
 */
import { SingleBar } from "cli-progress";

export interface Phase {
  name: string;
  /** Rough wall time on the 2-core reference machine, in seconds. */
  estimateS: number;
}

const human = (s: number) => (s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`);

export class PhaseProgress {
  private readonly bar: SingleBar | null;
  private index = -1;
  private readonly t0 = performance.now();

  constructor(
    private readonly phases: Phase[],
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.bar = stream.isTTY
      ? new SingleBar({ stream, format: "bench {bar} {value}/{total} | {phase} (about {estimate}) | {elapsed}", hideCursor: true, clearOnComplete: false })
      : null;
    const total = phases.reduce((a, p) => a + p.estimateS, 0);
    this.stream.write(`bench: ${phases.length} phases, about ${human(total)} in all\n`);
    this.bar?.start(phases.length, 0, { phase: "", estimate: "", elapsed: "0 s" });
  }

  /** Announces a phase; phases may be skipped but not reordered. */
  start(phase: Phase): void {
    const next = this.phases.indexOf(phase, this.index + 1);
    if (next < 0) throw new Error(`unknown or repeated bench phase "${phase.name}"`);
    this.index = next;
    const elapsed = human((performance.now() - this.t0) / 1000);
    if (this.bar) this.bar.update(next, { phase: phase.name, estimate: human(phase.estimateS), elapsed });
    else this.stream.write(`bench [${next + 1}/${this.phases.length}] ${phase.name} (about ${human(phase.estimateS)}; ${elapsed} so far)\n`);
  }

  done(): void {
    this.bar?.update(this.phases.length);
    this.bar?.stop();
    this.stream.write(`bench: done in ${human((performance.now() - this.t0) / 1000)}\n`);
  }
}
