/** Parsing of `switchsim run` arguments: options first, then the program, then the guest's args. */
import { ConfigError } from './errors.js';
import { parseSize } from './guest/physmem.js';
import { CPU_MODELS, TIME_LIMIT_EXIT_CODE, type CpuModelName, type RunOptions } from './run.js';

export const USAGE = `usage: switchsim run [options] [--] <program> [guest args...]

Runs a static x86-64 Linux program in syscall-emulation mode.

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

export interface ParsedRun {
  options: RunOptions;
  quiet: boolean;
}

export function parseRunArgs(argv: string[]): ParsedRun {
  const opts: Partial<RunOptions> & { allowRead: string[] } = { cpu: 'kvm', allowRead: [] };
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
        break;
      }
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
  const program = argv[i];
  if (program === undefined) throw new ConfigError('program', 'missing: switchsim run [options] <program> [args...]');
  env ??= Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
  const names = new Set([...unsetEnv, ...setEnv.map((e) => e.slice(0, e.indexOf('=')))]);
  env = [...env.filter((e) => !names.has(e.slice(0, e.indexOf('=')))), ...setEnv];
  return {
    options: { ...(opts as RunOptions), program, args: argv.slice(i + 1), env },
    quiet,
  };
}

