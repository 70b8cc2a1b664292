/**
 * `switchsim run` with a switch policy, `switchsim checkpoint` and `switchsim restore`: a System
 * driven by a SwitchPlan, with gem5-style stats (one block per m5 dump, then the final one).
 */
import type { CheckpointAt, SwitchOptions } from '../cliArgs.js';
import { exitCodeOf, TIME_LIMIT_EXIT_CODE, type RunOptions } from '../run.js';
import { writeStatsDumps, type Stat } from '../stats.js';
import { drive, type DriveEnd, type DriveResult, type SwitchPlan } from './driver.js';
import { System } from './system.js';
import { definedFields } from '../defined.js';
import type { CpuModelName } from './token.js';

export interface SwitchedRunRequest {
  options: RunOptions;
  switching: SwitchOptions;
  checkpoint?: { out: string; at: CheckpointAt };
  restoreFile?: string;
}

export interface SwitchedRunResult {
  end: DriveEnd;
  exitCode: number;
  drive: DriveResult;
  stats: Stat[];
  stdout: Buffer;
  stderr: Buffer;
  switches: number;
  /** Messages for the user (notes on how the policy was applied, what was written). */
  messages: string[];
}

/** Exit code when `switchsim checkpoint` never reached its point (the guest ended first). */
export const CHECKPOINT_NOT_REACHED_EXIT_CODE = 3;

export function planFrom(sw: SwitchOptions, opts: RunOptions, checkpoint?: { out: string; at: CheckpointAt }): SwitchPlan {
  const sequence = sw.sequence ?? [opts.cpu];
  const plan: SwitchPlan = { sequence };
  if (sw.switchAtInsts) plan.trigger = { insts: sw.switchAtInsts };
  else if (sw.switchAtSeconds) plan.trigger = { seconds: sw.switchAtSeconds };
  if (sw.roi) plan.roi = { detailed: sw.roiCpu ?? 'o3', after: sw.roiExit ? 'exit' : 'continue' };
  if (checkpoint) plan.checkpoint = { file: checkpoint.out, at: checkpoint.at, thenExit: true };
  if (opts.maxSeconds && opts.maxSeconds > 0) plan.maxSeconds = opts.maxSeconds;
  return plan;
}

export function modelsOf(plan: SwitchPlan): CpuModelName[] {
  const set = new Set<CpuModelName>(plan.sequence);
  if (plan.roi) set.add(plan.roi.detailed);
  return [...set];
}

export async function runSwitched(req: SwitchedRunRequest): Promise<SwitchedRunResult> {
  const opts = req.options;
  const plan = planFrom(req.switching, opts, req.checkpoint);
  const models = modelsOf(plan);
  const common = {
    models,
    ...definedFields({ memSize: opts.memSize, hostFreqHz: opts.hostFreqHz, hostFactor: opts.hostFactor, o3Config: opts.o3Config, onWarning: opts.onWarning, onInfo: opts.onInfo }),
    allowRead: opts.allowRead ?? [],
    ...(opts.capture ? { capture: true } : {}),
  };
  const messages: string[] = [];
  let system: System;
  if (req.restoreFile) {
    const r = await System.fromCheckpoint(req.restoreFile, common);
    system = r.system;
    messages.push(`restored ${req.restoreFile} (${r.info.pages} non-zero pages, taken on ${r.cpu}); continuing on ${plan.sequence[0]}`);
  } else {
    system = await System.create({
      ...common,
      program: opts.program,
      args: opts.args,
      ...(opts.argv0 !== undefined ? { argv0: opts.argv0 } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      ...(opts.glibcBaseline !== undefined ? { glibcBaseline: opts.glibcBaseline } : {}),
    });
  }
  try {
    const result = await drive(system, plan);
    messages.push(...result.notes);
    const stats = await system.stats();
    if (opts.statsDir) writeStatsDumps(opts.statsDir, [...result.dumps, stats]);
    const { stdout, stderr } = system.output();
    const end = result.end;
    let exitCode: number;
    if (end.kind === 'checkpointed') {
      exitCode = 0;
      const c = result.checkpoints[0]!;
      messages.push(`checkpoint written: ${c.file} (${c.info.pages} non-zero pages, ${formatBytes(c.info.fileBytes)}) on ${system.current}`);
    } else if (end.kind === 'roiDone') {
      exitCode = 0;
      messages.push('region of interest done (--roi-exit): the guest was stopped at m5 work_end');
    } else if (end.kind === 'timeLimit') {
      exitCode = TIME_LIMIT_EXIT_CODE;
    } else {
      exitCode = exitCodeOf(end);
      if (req.checkpoint) {
        messages.push(`the guest ended before the checkpoint point (${describeAt(req.checkpoint.at)}): no checkpoint written`);
        exitCode = CHECKPOINT_NOT_REACHED_EXIT_CODE;
      }
    }
    if (system.switches.length > 0) {
      const ms = system.switches.map((s) => s.ms).sort((a, b) => a - b);
      messages.push(`${system.switches.length} switches (median ${ms[Math.floor(ms.length / 2)]!.toFixed(2)} ms)`);
    }
    return { end, exitCode, drive: result, stats, stdout, stderr, switches: system.switches.length, messages };
  } finally {
    await system.close();
  }
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`;
}

function describeAt(at: CheckpointAt): string {
  return at === 'm5' ? 'an m5 checkpoint op' : at === 'roi' ? 'm5 work_begin' : 'insts' in at ? `${at.insts} instructions` : `${at.seconds} s`;
}
