/** Parsing of `switchsim run` arguments: options first, then the program, then the guest's args. */
import { ConfigError } from './errors.js';
import { parseSize } from './guest/physmem.js';
import { CPU_MODELS, TIME_LIMIT_EXIT_CODE, type CpuModelName, type RunOptions } from './run.js';

export const USAGE = `usage: switchsim run [options] [--] <program> [guest args...]
       switchsim sample [sampling options] [--] <program> [guest args...]  (switchsim sample --help)
       switchsim checkpoint --out FILE [--at m5|roi|insts:N|seconds:S] [options] [--] <program> [guest args...]
       switchsim restore [options] <checkpoint file>

run: runs a static x86-64 Linux program in syscall-emulation mode, on one CPU model or
switching between models. checkpoint: runs it to a point and writes the whole guest to FILE
(then stops). restore: continues a checkpoint on any model (--cpu or a switch policy).

options:
  --cpu kvm|atomic|o3       CPU model: kvm (hardware virtualization via /dev/kvm, default),
                            atomic (functional x86-64 core in JS, exact instruction counts)
                            or o3 (detailed out-of-order timing model, gem5 O3CPU-style)
  --config FILE             o3: JSON configuration (see configs/o3-generic.json, o3-host.json)
  --host-factor F           guest cycles per host cycle (default 1.0)
  --host-freq HZ            host clock for host time -> cycles (e.g. 2.1GHz; default: detected)
  --max-seconds S           stop the guest after S wall seconds (exit code ${TIME_LIMIT_EXIT_CODE})
  --quantum-ms MS           kick the vCPU out of KVM every MS milliseconds (time quanta)
  --allow-read DIR          let the guest open files under DIR read-only (repeatable)
  --mem-size SIZE           guest physical memory, sparse (default 2G, max just under 4G)
  --stats DIR               write gem5-style DIR/stats.txt and DIR/stats.json
  --seed N                  seed for getrandom and AT_RANDOM (default 0)
  --env NAME=VALUE          set a guest environment variable (repeatable)
  --unset-env NAME          remove a variable from the guest environment (repeatable)
  --clear-env               start the guest with an empty environment
  --no-glibc-baseline       do not steer glibc programs to baseline code paths
  -q, --quiet               no informational messages from switchsim
  -h, --help                this text

switching (run and restore; any of these runs the guest on a System of several models):
  --cpu-sequence LIST       models in order, e.g. kvm,o3,kvm (the run starts on the first;
                            m5 switch_cpu and the triggers below move to the next)
  --switch-at-insts LIST    instructions on each model of the sequence before the next
                            (the last value repeats); exact on atomic and o3, host time on KVM
                            (no PMU here: 1 instruction per host cycle is assumed, and said)
  --switch-at-seconds LIST  host seconds on each model of the sequence before the next
  --roi                     fast-forward on the first model (default kvm) until m5 work_begin,
                            the region on --roi-cpu (default o3) until m5 work_end, then back
  --roi-cpu MODEL           the model for the region of interest (default o3)
  --roi-exit                stop at m5 work_end instead of going back
  m5 reset_stats / dump_stats / dump_reset_stats act on every model's stats; each dump is a
  block of DIR/stats.txt (and an entry of stats.json) with --stats.

checkpoint:
  --out FILE                where to write the checkpoint (atomically)
  --at WHEN                 m5 (the program's m5 checkpoint op, default), roi (its m5
                            work_begin), insts:N or seconds:S

The guest's stdout and stderr pass through; switchsim exits with the guest's exit code,
128+signal when the guest is killed by a fault.`;

function parseNumber(option: string, text: string | undefined, min = 0): number {
  if (text === undefined) throw new ConfigError(option, 'needs a value');
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) throw new ConfigError(option, `not a number >= ${min}: '${text}'`);
  return n;
}

function parseFrequency(text: string | undefined): number {
  if (text === undefined) throw new ConfigError('--host-freq', 'needs a value');
  const m = /^(\d+(?:\.\d+)?)\s*(hz|khz|mhz|ghz)?$/i.exec(text.trim());
  if (!m) throw new ConfigError('--host-freq', `not a frequency: '${text}' (examples: 2.1GHz, 2100MHz, 2100000000)`);
  const scale = { hz: 1, khz: 1e3, mhz: 1e6, ghz: 1e9 }[(m[2] ?? 'hz').toLowerCase()] ?? 1;
  const hz = Number(m[1]) * scale;
  if (hz < 1e6 || hz > 1e11) throw new ConfigError('--host-freq', `implausible frequency ${hz} Hz`);
  return hz;
}

export interface SwitchOptions {
  sequence?: CpuModelName[];
  switchAtInsts?: number[];
  switchAtSeconds?: number[];
  roi?: boolean;
  roiCpu?: CpuModelName;
  roiExit?: boolean;
}

export type CheckpointAt = 'm5' | 'roi' | { insts: number } | { seconds: number };

export interface ParsedRun {
  options: RunOptions;
  quiet: boolean;
  /** Present when any switching option was given (the run needs a System). */
  switching?: SwitchOptions;
  /** `switchsim checkpoint`. */
  checkpoint?: { out: string; at: CheckpointAt };
  /** `switchsim restore`: the checkpoint file. */
  restoreFile?: string;
}

export type CliCommand = 'run' | 'checkpoint' | 'restore';

function parseModel(option: string, text: string): CpuModelName {
  if (!(CPU_MODELS as readonly string[]).includes(text)) {
    throw new ConfigError(option, `unknown CPU model '${text}' (available: ${CPU_MODELS.join(', ')})`);
  }
  return text as CpuModelName;
}

function parseList(option: string, text: string, min: number): number[] {
  const out = text.split(',').map((t) => parseNumber(option, t.trim(), min));
  if (out.length === 0) throw new ConfigError(option, 'needs at least one value');
  return out;
}

function parseAt(text: string): CheckpointAt {
  if (text === 'm5' || text === 'roi') return text;
  const m = /^(insts|seconds):(\d+(?:\.\d+)?(?:e\d+)?)$/i.exec(text.trim());
  if (!m) throw new ConfigError('--at', `expected m5, roi, insts:N or seconds:S, got '${text}'`);
  const n = Number(m[2]);
  if (!(n > 0)) throw new ConfigError('--at', 'must be > 0');
  return m[1]!.toLowerCase() === 'insts' ? { insts: Math.round(n) } : { seconds: n };
}

export function parseRunArgs(argv: string[], command: CliCommand = 'run'): ParsedRun {
  const opts: Partial<RunOptions> & { allowRead: string[] } = { cpu: 'kvm', allowRead: [] };
  const sw: SwitchOptions = {};
  let switching = false;
  let cpuGiven = false;
  let out: string | undefined;
  let at: CheckpointAt = 'm5';
  let env: string[] | undefined;
  const setEnv: string[] = [];
  const unsetEnv: string[] = [];
  let quiet = false;
  let i = 0;
  const value = (name: string): string => {
    const v = argv[++i];
    if (v === undefined) throw new ConfigError(name, 'needs a value');
    return v;
  };
  for (; i < argv.length; i++) {
    let arg = argv[i]!;
    let inline: string | undefined;
    if (arg.startsWith('--') && arg.includes('=')) {
      inline = arg.slice(arg.indexOf('=') + 1);
      arg = arg.slice(0, arg.indexOf('='));
    }
    const val = (name: string) => (inline !== undefined ? inline : value(name));
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-')) break;
    switch (arg) {
      case '--cpu': {
        const cpu = val(arg);
        if (!(CPU_MODELS as readonly string[]).includes(cpu)) {
          throw new ConfigError('--cpu', `unknown CPU model '${cpu}' (available: ${CPU_MODELS.join(', ')})`);
        }
        opts.cpu = cpu as CpuModelName;
        cpuGiven = true;
        break;
      }
      case '--cpu-sequence':
        sw.sequence = val(arg).split(',').map((t) => parseModel(arg, t.trim()));
        switching = true;
        break;
      case '--switch-at-insts':
        sw.switchAtInsts = parseList(arg, val(arg), 1).map(Math.round);
        switching = true;
        break;
      case '--switch-at-seconds':
        sw.switchAtSeconds = parseList(arg, val(arg), 1e-6);
        switching = true;
        break;
      case '--roi':
        sw.roi = true;
        switching = true;
        break;
      case '--roi-exit':
        sw.roiExit = true;
        sw.roi = true;
        switching = true;
        break;
      case '--roi-cpu':
        sw.roiCpu = parseModel(arg, val(arg));
        sw.roi = true;
        switching = true;
        break;
      case '--out':
        if (command !== 'checkpoint') throw new ConfigError(arg, 'only for switchsim checkpoint');
        out = val(arg);
        break;
      case '--at':
        if (command !== 'checkpoint') throw new ConfigError(arg, 'only for switchsim checkpoint');
        at = parseAt(val(arg));
        break;
      case '--host-factor':
        opts.hostFactor = parseNumber(arg, val(arg));
        if (opts.hostFactor <= 0) throw new ConfigError(arg, 'must be > 0');
        break;
      case '--host-freq':
        opts.hostFreqHz = parseFrequency(val(arg));
        break;
      case '--max-seconds':
        opts.maxSeconds = parseNumber(arg, val(arg));
        break;
      case '--quantum-ms':
        opts.quantumMs = parseNumber(arg, val(arg), 1);
        break;
      case '--allow-read':
        opts.allowRead.push(val(arg));
        break;
      case '--mem-size':
        opts.memSize = parseSize(val(arg));
        break;
      case '--config':
        opts.o3Config = val(arg);
        break;
      case '--stats':
        opts.statsDir = val(arg);
        break;
      case '--seed': {
        const s = val(arg);
        if (!/^\d+$/.test(s)) throw new ConfigError(arg, `not a non-negative integer: '${s}'`);
        opts.seed = BigInt(s);
        break;
      }
      case '--env': {
        const e = val(arg);
        if (!e.includes('=')) throw new ConfigError(arg, `expected NAME=VALUE, got '${e}'`);
        setEnv.push(e);
        break;
      }
      case '--unset-env':
        unsetEnv.push(val(arg));
        break;
      case '--clear-env':
        env = [];
        break;
      case '--no-glibc-baseline':
        opts.glibcBaseline = false;
        break;
      case '-q':
      case '--quiet':
        quiet = true;
        break;
      default:
        throw new ConfigError(arg, 'unknown option (see switchsim --help)');
    }
  }
  if (sw.switchAtInsts && sw.switchAtSeconds) throw new ConfigError('--switch-at-insts', 'give --switch-at-insts or --switch-at-seconds, not both');
  if (switching && cpuGiven && sw.sequence) throw new ConfigError('--cpu', 'give --cpu or --cpu-sequence, not both');
  if (switching && !sw.sequence) {
    // Default sequences: the ROI fast-forwards on --cpu (kvm); triggers alternate it with o3.
    sw.sequence = sw.roi ? [opts.cpu ?? 'kvm'] : [opts.cpu ?? 'kvm', (opts.cpu ?? 'kvm') === 'o3' ? 'kvm' : 'o3'];
  }
  if (sw.roi && (sw.switchAtInsts || sw.switchAtSeconds)) throw new ConfigError('--roi', 'cannot be combined with --switch-at-insts/--switch-at-seconds');
  if (switching && opts.quantumMs !== undefined) throw new ConfigError('--quantum-ms', 'only for single-model KVM runs');
  if (command === 'restore') {
    const file = argv[i];
    if (file === undefined) throw new ConfigError('checkpoint', 'missing: switchsim restore [options] <checkpoint file>');
    if (argv.length > i + 1) throw new ConfigError('checkpoint', 'restore takes no program or guest arguments: they are in the checkpoint');
    if (!switching) sw.sequence = [opts.cpu ?? 'kvm'];
    return { options: { ...(opts as RunOptions), program: file, args: [] }, quiet, switching: sw, restoreFile: file };
  }
  if (command === 'checkpoint' && out === undefined) throw new ConfigError('--out', 'switchsim checkpoint needs --out FILE');
  const program = argv[i];
  if (program === undefined) throw new ConfigError('program', `missing: switchsim ${command} [options] <program> [args...]`);
  env ??= Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
  const names = new Set([...unsetEnv, ...setEnv.map((e) => e.slice(0, e.indexOf('=')))]);
  env = [...env.filter((e) => !names.has(e.slice(0, e.indexOf('=')))), ...setEnv];
  const parsed: ParsedRun = { options: { ...(opts as RunOptions), program, args: argv.slice(i + 1), env }, quiet };
  if (command === 'checkpoint') {
    parsed.checkpoint = { out: out!, at };
    parsed.switching = switching ? sw : { sequence: [opts.cpu ?? 'kvm'] };
  } else if (switching) parsed.switching = sw;
  return parsed;
}


export const SAMPLE_USAGE = `usage: switchsim sample [options] [--] <program> [guest args...]

SMARTS/FSA-style sampling: fast-forward between samples (the atomic CPU by default, or KVM);
each sample switches to o3,
warms caches, TLBs and the branch predictor functionally, runs a detailed warm-up, measures a
unit of instructions on o3, and switches back. Writes samples.csv, samples.json, stats.txt,
stats.json and report.html into --out. The guest's stdout and stderr pass through.

sampling options:
  --interval-seconds S      one sample per S host seconds of KVM fast-forward
  --interval-insts N        one sample per N instructions, its own included (default 10M; host
                            rates estimate the count on KVM, which has no PMU here; with
                            --no-host-rate, host time at 1 instruction per host cycle)
                            each sample starts at a random point of its own interval (see --seed)
  --warming MODE            how each sample's caches are warmed (default: record with
                            --fast-forward atomic, adaptive on KVM):
                            record: the atomic fast-forward records every memory line's last
                              access; each sample rebuilds the L1D and L2 from it, then warms
                              functionally for --functional-warm-insts (default 200k: L1I,
                              TLBs, branch predictor) right up to its detailed warm-up
                            adaptive: functional warming until the L2 has turned over
                              (installed as many lines as it holds, after at least 400k) or
                              gone quiet (after at least 1M), at most --functional-warm-insts
                              (default 4M); its length depends on where the sample falls
                            fixed: exactly --functional-warm-insts (default 4M)
  --functional-warm-insts N functional warming per sample (see --warming)
  --fixed-warming           same as --warming fixed
  --branch-warm-insts N     of which the last N also train the branch predictor (default 200k:
                            it warms far sooner than the L2, and training it costs most)
  --detailed-warm-insts W   detailed warm-up per sample on o3, stats discarded (default 5k
                            with --warming record, else 20k); the unit follows it with the
                            pipeline full
  --measure-insts U         measured unit per sample on o3 (default 20000)
  --samples N               take N samples (then run the rest of the program on KVM)
  --target-error E          or: sample until the relative confidence-interval half-width of
                            IPC is <= E (default 3%), with at least --min-samples (default 8)
  --confidence C            confidence level of the intervals (default 99.7%)
  --min-samples N           minimum samples for --target-error (default 8)
  --seed N                  seed of the sample points (default 0); runs with other seeds
                            sample other points
  --out DIR                 output directory (default ./switchsim-sample)
  --config FILE             o3 configuration (JSON)
  --fast-forward atomic|kvm fast-forward model (default atomic: exact instruction counts and
                            the memory timestamp record, ~45 MIPS. kvm runs at native speed,
                            for programs of billions of instructions, but this host has no PMU:
                            its counts are estimates and its errors larger; see README)
  --parallel, --no-parallel with --warming record: measure each sample in a worker thread on a
                            copy of the guest while the fast-forward goes on (default: on where
                            the host has more than one CPU)
  --no-host-rate            KVM: no phase profile or host-rate probes; samples fall uniformly
                            in host time and IPC is the mean of the samples' IPCs (biased where
                            host and o3 speeds differ by phase, and by the samples' own JS
                            instructions: see README)
  --host-factor F           guest cycles per host cycle for the KVM regions (default 1.0)
  --host-freq HZ            host clock for host time -> cycles (default: detected)
  --guest-seed N            seed for the guest's getrandom and AT_RANDOM (default 0)
  --scaling FILE            a cycle-scaling table (npm run bench:scaling writes
                            bench/results/scaling.json): shown in report.html, and without
                            --host-factor its factor for this workload (else its global one)
                            scales the KVM regions of the whole-program estimate
  --validate                afterwards, run the whole program on o3 and compare its IPC with
                            the sampled one (error, wall-time speedup; slow: o3 runs it all)
  --max-seconds S, --mem-size SIZE, --allow-read DIR, --env NAME=VALUE, --unset-env NAME,
  --clear-env, --no-glibc-baseline, -q/--quiet: as for switchsim run.
  Sizes take k/M/G suffixes (10M); errors and confidences take % or a fraction (3% = 0.03).`;

export interface ParsedSample {
  options: RunOptions;
  quiet: boolean;
  interval: { seconds: number } | { insts: number };
  /** null: the warming mode's default (sampler.ts). */
  functionalWarmInsts: number | null;
  /** The last this-many of the functional warming also train the branch predictor (null: all). */
  branchWarmInsts: number | null;
  /** null: the fast-forward model's default (record on atomic, adaptive on KVM). */
  warming: 'record' | 'adaptive' | 'fixed' | null;
  /** null: the warming mode's default (sampler.ts). */
  detailedWarmInsts: number | null;
  measureInsts: number;
  samples: number | null;
  targetError: number;
  confidence: number;
  minSamples: number;
  seed: string;
  out: string;
  fastForward?: 'kvm' | 'atomic';
  /** --host-rate: per-phase host-rate probes and rate-weighted estimates (KVM). */
  hostRate: boolean;
  /** --parallel / --no-parallel (undefined: the sampler decides). */
  parallel?: boolean;
  validate: boolean;
  /** A cycle-scaling table (bench/results/scaling.json) for the report and the hostFactor. */
  scaling?: string;
}

/** A count with an optional k/M/G suffix (decimal): 200000, 200k, 10M. */
export function parseCount(option: string, text: string | undefined, min = 1): number {
  if (text === undefined) throw new ConfigError(option, 'needs a value');
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)([kmg]?)$/i.exec(text.trim());
  if (!m) throw new ConfigError(option, `not a count: '${text}' (examples: 20000, 200k, 10M)`);
  const scale = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2]!.toLowerCase()] ?? 1;
  const n = Math.round(Number(m[1]) * scale);
  if (!(n >= min)) throw new ConfigError(option, `must be >= ${min}`);
  return n;
}

/** A fraction given as a percentage ("3%", "99.7%") or as a fraction ("0.03"); 0 < f < 1. */
export function parseFraction(option: string, text: string | undefined): number {
  if (text === undefined) throw new ConfigError(option, 'needs a value');
  const t = text.trim();
  const pct = t.endsWith('%');
  const n = Number(pct ? t.slice(0, -1) : t);
  if (!Number.isFinite(n)) throw new ConfigError(option, `not a percentage or fraction: '${text}' (examples: 3%, 0.03)`);
  const f = pct || n >= 1 ? n / 100 : n;
  if (!(f > 0 && f < 1)) throw new ConfigError(option, `must be between 0 and 100% (got '${text}')`);
  return f;
}

/** Run options `switchsim sample` passes on to the run parser (with a value, or flags). */
const SAMPLE_PASS_VALUE = new Set(['--mem-size', '--allow-read', '--env', '--unset-env', '--max-seconds', '--host-freq', '--host-factor', '--config']);
const SAMPLE_PASS_FLAG = new Set(['--clear-env', '--no-glibc-baseline', '-q', '--quiet']);

export function parseSampleArgs(argv: string[]): ParsedSample {
  const pass: string[] = [];
  let interval: ParsedSample['interval'] | undefined;
  let functionalWarmInsts: number | null = null;
  let warming: ParsedSample['warming'] = null;
  let branchWarmInsts: number | null = 200_000;
  let detailedWarmInsts: number | null = null;
  let measureInsts = 20_000;
  let samples: number | null = null;
  let targetError: number | undefined;
  let confidence = 0.997;
  let minSamples = 8;
  let seed = '0';
  let out = './switchsim-sample';
  let fastForward: 'kvm' | 'atomic' | undefined;
  let hostRate = true;
  let parallel: boolean | undefined;
  let validate = false;
  let scaling: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    let arg = argv[i]!;
    let inline: string | undefined;
    if (arg.startsWith('--') && arg.includes('=')) {
      inline = arg.slice(arg.indexOf('=') + 1);
      arg = arg.slice(0, arg.indexOf('='));
    }
    const val = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new ConfigError(arg, 'needs a value');
      return v;
    };
    if (arg === '--') break;
    if (!arg.startsWith('-')) break;
    switch (arg) {
      case '--interval-seconds': {
        if (interval) throw new ConfigError(arg, 'give --interval-seconds or --interval-insts, once');
        const s = parseNumber(arg, val());
        if (!(s > 0)) throw new ConfigError(arg, 'must be > 0');
        interval = { seconds: s };
        break;
      }
      case '--interval-insts':
        if (interval) throw new ConfigError(arg, 'give --interval-seconds or --interval-insts, once');
        interval = { insts: parseCount(arg, val()) };
        break;
      case '--functional-warm-insts':
        functionalWarmInsts = parseCount(arg, val(), 0);
        break;
      case '--fixed-warming':
        warming = 'fixed';
        break;
      case '--warming': {
        const m = val();
        if (m !== 'record' && m !== 'adaptive' && m !== 'fixed') throw new ConfigError(arg, `expected record, adaptive or fixed, got '${m}'`);
        warming = m;
        break;
      }
      case '--branch-warm-insts':
        branchWarmInsts = parseCount(arg, val(), 0);
        break;
      case '--detailed-warm-insts':
        detailedWarmInsts = parseCount(arg, val(), 0);
        break;
      case '--measure-insts':
        measureInsts = parseCount(arg, val(), 1);
        break;
      case '--samples':
        samples = parseCount(arg, val(), 1);
        break;
      case '--target-error':
        targetError = parseFraction(arg, val());
        break;
      case '--confidence':
        confidence = parseFraction(arg, val());
        break;
      case '--min-samples':
        minSamples = parseCount(arg, val(), 2);
        break;
      case '--seed': {
        const s = val();
        if (!/^\d+$/.test(s)) throw new ConfigError(arg, `not a non-negative integer: '${s}'`);
        seed = s;
        break;
      }
      case '--out':
        out = val();
        break;
      case '--host-rate':
        hostRate = true;
        break;
      case '--parallel':
        parallel = true;
        break;
      case '--no-parallel':
        parallel = false;
        break;
      case '--no-host-rate':
        hostRate = false;
        break;
      case '--fast-forward': {
        const m = val();
        if (m !== 'kvm' && m !== 'atomic') throw new ConfigError(arg, `expected kvm or atomic, got '${m}'`);
        fastForward = m;
        break;
      }
      case '--guest-seed':
        pass.push('--seed', val());
        break;
      case '--validate':
        validate = true;
        break;
      case '--scaling':
        scaling = val();
        break;
      default:
        if (SAMPLE_PASS_VALUE.has(arg)) pass.push(arg, val());
        else if (SAMPLE_PASS_FLAG.has(arg)) {
          if (inline !== undefined) throw new ConfigError(arg, 'takes no value');
          pass.push(arg);
        } else throw new ConfigError(arg, 'unknown option for switchsim sample (see switchsim sample --help)');
    }
  }
  if (samples !== null && targetError !== undefined) throw new ConfigError('--samples', 'give --samples or --target-error, not both');
  const rest = argv.slice(i);
  if (rest[0] === '--') rest.shift();
  if (rest.length === 0) throw new ConfigError('program', 'missing: switchsim sample [options] <program> [args...]');
  const run = parseRunArgs([...pass, '--', ...rest], 'run');
  return {
    options: run.options,
    quiet: run.quiet,
    interval: interval ?? { insts: 10_000_000 },
    functionalWarmInsts,
    branchWarmInsts,
    warming,
    detailedWarmInsts,
    measureInsts,
    samples,
    targetError: targetError ?? 0.03,
    confidence,
    minSamples,
    seed,
    out,
    ...(fastForward ? { fastForward } : {}),
    hostRate,
    ...(parallel !== undefined ? { parallel } : {}),
    validate,
    ...(scaling !== undefined ? { scaling } : {}),
  };
}
