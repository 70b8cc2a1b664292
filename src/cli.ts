#!/usr/bin/env node
/**
 * switchsim command line, shaped like valgrind / qemu-x86_64: options first, then the program,
 * then everything after it goes to the guest unchanged.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, SwitchsimError } from './errors.js';
import { formatFaultReport } from './guest/faults.js';
import { runProgram } from './run.js';
import { parseRunArgs, parseSampleArgs, SAMPLE_USAGE, USAGE, type CliCommand } from './cliArgs.js';

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return command === undefined ? 2 : 0;
  }
  if (command === '--version') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`switchsim ${pkg.version}\n`);
    return 0;
  }
  if (command === 'sample') {
    const programAt = rest.findIndex((a) => !a.startsWith('-'));
    const opts = programAt < 0 ? rest : rest.slice(0, programAt);
    if (opts.includes('-h') || opts.includes('--help')) {
      process.stdout.write(SAMPLE_USAGE + '\n');
      return 0;
    }
    const parsed = parseSampleArgs(rest);
    // Loaded on demand, like the switching runs (iced-x86's wasm, cli-progress).
    const { runSampleCommand } = await import('./sample/command.js');
    return runSampleCommand(parsed);
  }
  if (command !== 'run' && command !== 'checkpoint' && command !== 'restore') {
    throw new ConfigError('command', `unknown command '${command}' (available: run, checkpoint, restore, sample)`);
  }
  if (rest.includes('-h') && rest.indexOf('-h') < (rest.findIndex((a) => !a.startsWith('-')) + 1 || rest.length)) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const parsed = parseRunArgs(rest, command as CliCommand);
  const { options, quiet } = parsed;
  const info = (m: string) => {
    if (!quiet) process.stderr.write(`switchsim: ${m}\n`);
  };
  if (parsed.switching) {
    // Loaded on demand: the JS models (iced-x86's wasm) cost ~0.2 s to import.
    const { runSwitched } = await import('./switch/runSwitched.js');
    const r = await runSwitched({
      options: { ...options, onInfo: info, onWarning: (m) => process.stderr.write(`switchsim: warning: ${m}\n`) },
      switching: parsed.switching,
      ...(parsed.checkpoint ? { checkpoint: parsed.checkpoint } : {}),
      ...(parsed.restoreFile ? { restoreFile: parsed.restoreFile } : {}),
    });
    for (const m of r.messages) info(m);
    if (r.end.kind === 'faulted') process.stderr.write(`switchsim: ${formatFaultReport(r.end.report)}\n`);
    if (r.end.kind === 'timeLimit') {
      process.stderr.write(`switchsim: stopped: --max-seconds ${r.end.seconds} reached after ${r.drive.wallSeconds.toFixed(2)} s; the guest had not exited\n`);
    }
    if (options.statsDir) info(`stats written to ${options.statsDir}/stats.txt and stats.json`);
    return r.exitCode;
  }
  const result = await runProgram({
    ...options,
    onInfo: info,
    onWarning: (m) => process.stderr.write(`switchsim: warning: ${m}\n`),
  });
  const { end } = result;
  if (end.kind === 'faulted') process.stderr.write(`switchsim: ${formatFaultReport(end.report)}\n`);
  if (end.kind === 'timeLimit') {
    process.stderr.write(
      `switchsim: stopped: --max-seconds ${end.seconds} reached after ${result.wallSeconds.toFixed(2)} s; the guest had not exited\n`,
    );
  }
  if (options.statsDir) info(`stats written to ${options.statsDir}/stats.txt and stats.json`);
  return result.exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof SwitchsimError && e.userFault) {
      process.stderr.write(`switchsim: error: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`switchsim: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 70;
    }
  },
);
