/**
 * Switch policies: what moves the guest between models during a run. One loop serves them all:
 * run the current model within a limit, then act on why it stopped (a limit reached, an m5op,
 * the end of the guest).
 *
 * - sequence + trigger: the models in order; after `insts[i]` instructions (or `seconds[i]` host
 *   seconds) on the i-th, switch to the next; the last runs to the end. Instruction counts are
 *   exact on atomic and o3; KVM has no instruction counter on this host (no PMU), so there they
 *   are converted to host time at the assumed IPC (models.ts KVM_ASSUMED_IPC).
 * - roi: on m5 work_begin switch to the detailed model; on work_end back to the first model of
 *   the sequence, or end the run.
 * - m5 switch_cpu: the next model in the sequence.
 * - m5 reset_stats / dump_stats / dump_reset_stats: all models' stats, gem5-style dumps.
 * - checkpoint: at the m5 checkpoint op, or after a time / instruction count; then go on or stop.
 */
import type { GuestFaultReport } from '../guest/faults.js';
import type { M5OpCall } from '../guest/m5ops.js';
import { M5Op } from '../guest/m5ops.js';
import type { Stat } from '../stats.js';
import type { CheckpointInfo } from './checkpoint.js';
import { KVM_ASSUMED_IPC, type RunLimit } from './models.js';
import type { System } from './system.js';
import type { CpuModelName } from './token.js';

export interface SwitchPlan {
  /** Models in order; the run starts on the first. */
  sequence: CpuModelName[];
  /** Segment lengths: the i-th applies to the i-th model; the last value repeats. */
  trigger?: { insts: number[] } | { seconds: number[] };
  roi?: { detailed: CpuModelName; after: 'continue' | 'exit' };
  /** m5: the program's m5 checkpoint op; roi: its m5 work_begin; or after a budget. */
  checkpoint?: { file: string; at: 'm5' | 'roi' | { insts: number } | { seconds: number }; thenExit: boolean };
  /** Stop the guest after this many host seconds. */
  maxSeconds?: number;
  /** Switch points at every served syscall too (stress). */
  stopAfterSyscall?: boolean;
}

export type DriveEnd =
  | { kind: 'exited'; status: number }
  | { kind: 'faulted'; report: GuestFaultReport }
  | { kind: 'timeLimit'; seconds: number }
  | { kind: 'checkpointed'; file: string; info: CheckpointInfo }
  | { kind: 'roiDone' };

export interface DriveEvent {
  /** Host seconds since the start of the drive. */
  t: number;
  what: string;
  model: CpuModelName;
}

export interface DriveResult {
  end: DriveEnd;
  /** gem5-style stats dumps requested by m5 dump_stats / dump_reset_stats, in order. */
  dumps: Stat[][];
  events: DriveEvent[];
  /** Things the user should know about how the policy was applied. */
  notes: string[];
  checkpoints: { file: string; info: CheckpointInfo }[];
  wallSeconds: number;
}

export function describePlanNotes(plan: SwitchPlan, freqHz: number): string[] {
  const notes: string[] = [];
  const usesKvm = plan.sequence.includes('kvm');
  const insts = plan.trigger && 'insts' in plan.trigger;
  const ckptInsts = plan.checkpoint && typeof plan.checkpoint.at === 'object' && 'insts' in plan.checkpoint.at;
  if (usesKvm && (insts || ckptInsts)) {
    notes.push(
      `KVM cannot count guest instructions on this host (no PMU): instruction counts on KVM are host time at ` +
        `${KVM_ASSUMED_IPC} instruction/cycle and ${(freqHz / 1e9).toFixed(2)} GHz (1M instructions ≈ ${(1e6 / (freqHz * KVM_ASSUMED_IPC) * 1000).toFixed(2)} ms); exact on atomic and o3`,
    );
  }
  return notes;
}

/** Runs the loaded System under `plan` until the guest ends (or the plan stops it). */
export async function drive(system: System, plan: SwitchPlan, onEvent?: (e: DriveEvent) => void): Promise<DriveResult> {
  const seq = plan.sequence;
  if (seq.length === 0) throw new Error('drive: empty sequence');
  const t0 = performance.now();
  const since = () => (performance.now() - t0) / 1000;
  const events: DriveEvent[] = [];
  const dumps: Stat[][] = [];
  const checkpoints: { file: string; info: CheckpointInfo }[] = [];
  const note = (what: string) => {
    const e = { t: since(), what, model: system.current ?? seq[0]! };
    events.push(e);
    onEvent?.(e);
  };
  let idx = 0;
  await system.start(seq[0]!);
  note(`start on ${seq[0]}`);
  const trig = plan.trigger;
  /** What is left of the current model's segment (null: it runs until something else happens). */
  const segmentBudget = (): Budget | null => {
    if (!trig || idx + 1 >= seq.length) return null;
    return 'insts' in trig ? { insts: trig.insts[Math.min(idx, trig.insts.length - 1)]! } : { seconds: trig.seconds[Math.min(idx, trig.seconds.length - 1)]! };
  };
  let segment = segmentBudget();
  const ckAt = plan.checkpoint?.at;
  let ckptBudget: Budget | null = typeof ckAt === 'object' ? { ...ckAt } : null;
  let end: DriveEnd | undefined;

  const advance = async (why: string) => {
    if (idx + 1 >= seq.length) {
      note(`${why}: no next model in the sequence; staying on ${seq[idx]}`);
      return;
    }
    idx++;
    const rec = await system.switchTo(seq[idx]!);
    segment = segmentBudget();
    note(`${why}: switched to ${seq[idx]}${rec ? ` in ${rec.ms.toFixed(2)} ms` : ''}`);
  };
  const takeCheckpoint = async (): Promise<void> => {
    const c = plan.checkpoint!;
    const info = await system.checkpoint(c.file, { config: { plan: { sequence: seq } }, stats: await system.stats() });
    checkpoints.push({ file: c.file, info });
    note(`checkpoint written to ${c.file} (${info.pages} pages, ${info.fileBytes} bytes)`);
    if (c.thenExit) end = { kind: 'checkpointed', file: c.file, info };
  };

  while (!end) {
    const limit: RunLimit = {};
    applyBudget(limit, segment);
    applyBudget(limit, ckptBudget);
    if (plan.maxSeconds !== undefined) limit.seconds = Math.max(0, Math.min(limit.seconds ?? Infinity, plan.maxSeconds - since()));
    if (plan.stopAfterSyscall) limit.stopAfterSyscall = true;
    const model = system.model(system.current!);
    const insts0 = model.instructions();
    const tRun = since();
    const out = await system.run(limit);
    // What this run used: exact instructions on atomic/o3; on KVM a 'limit' stop used it all.
    const used = {
      insts: model.exactInstructions ? model.instructions() - insts0 : out.kind === 'limit' ? Infinity : (since() - tRun) * system.freqHz * KVM_ASSUMED_IPC,
      seconds: since() - tRun,
    };
    if (out.kind === 'exited') {
      end = { kind: 'exited', status: out.status };
      break;
    }
    if (out.kind === 'faulted') {
      end = { kind: 'faulted', report: out.report };
      break;
    }
    if (consume(ckptBudget, used)) {
      ckptBudget = null;
      await takeCheckpoint();
      if (end) break;
    }
    if (out.kind === 'm5op') await onM5op(out.call);
    if (end) break;
    if (consume(segment, used)) await advance(`${trig && 'insts' in trig ? 'instruction' : 'time'} trigger`);
    if (plan.maxSeconds !== undefined && since() >= plan.maxSeconds) end = { kind: 'timeLimit', seconds: plan.maxSeconds };
  }

  async function onM5op(call: M5OpCall): Promise<void> {
    switch (call.func) {
      case M5Op.resetStats:
        await system.resetStats();
        note('m5 reset_stats');
        return;
      case M5Op.dumpStats:
        dumps.push(await system.stats());
        note('m5 dump_stats');
        return;
      case M5Op.dumpResetStats:
        dumps.push(await system.stats());
        await system.resetStats();
        note('m5 dump_reset_stats');
        return;
      case M5Op.checkpoint:
        if (plan.checkpoint && plan.checkpoint.at === 'm5' && checkpoints.length === 0) {
          await takeCheckpoint();
        } else note('m5 checkpoint (no checkpoint file requested: ignored)');
        return;
      case M5Op.switchCpu:
        await advance('m5 switch_cpu');
        return;
      case M5Op.workBegin:
        if (plan.checkpoint?.at === 'roi' && checkpoints.length === 0) {
          await takeCheckpoint();
          if (end) return;
        }
        if (plan.roi) {
          const rec = await system.switchTo(plan.roi.detailed);
          note(`m5 work_begin: region of interest on ${plan.roi.detailed}${rec ? ` (switch ${rec.ms.toFixed(2)} ms)` : ''}`);
        } else note('m5 work_begin');
        return;
      case M5Op.workEnd:
        if (plan.roi) {
          if (plan.roi.after === 'exit') {
            end = { kind: 'roiDone' };
            note('m5 work_end: region of interest done, stopping');
          } else {
            const rec = await system.switchTo(seq[0]!);
            note(`m5 work_end: back to ${seq[0]}${rec ? ` (switch ${rec.ms.toFixed(2)} ms)` : ''}`);
          }
        } else note('m5 work_end');
        return;
      default:
        note(`m5 ${call.name}`);
    }
  }

  return { end: end!, dumps, events, notes: describePlanNotes(plan, system.freqHz), checkpoints, wallSeconds: since() };
}

type Budget = { insts: number } | { seconds: number };

function applyBudget(limit: RunLimit, b: Budget | null): void {
  if (!b) return;
  if ('insts' in b) limit.insts = Math.min(limit.insts ?? Infinity, b.insts);
  else limit.seconds = Math.min(limit.seconds ?? Infinity, b.seconds);
}

/** Takes what a run used from `b`; true when it is used up. */
function consume(b: Budget | null, used: { insts: number; seconds: number }): boolean {
  if (!b) return false;
  if ('insts' in b) b.insts -= used.insts;
  else b.seconds -= used.seconds;
  return 'insts' in b ? b.insts <= 0 : b.seconds <= 1e-6;
}
