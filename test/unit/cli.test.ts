/** `switchsim run` argument parsing and the errors a user gets for bad input (no KVM needed). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRunArgs } from '../../src/cliArgs.js';
import { ConfigError } from '../../src/errors.js';
import { switchsim } from '../support/cli.js';

describe('parseRunArgs', () => {
  it('takes options before the program and passes everything after it to the guest', () => {
    const { options } = parseRunArgs(['--host-factor', '1.5', '--max-seconds=3', 'prog', '--host-factor', '-x', 'y']);
    expect(options.program).toBe('prog');
    expect(options.args).toEqual(['--host-factor', '-x', 'y']);
    expect(options.hostFactor).toBe(1.5);
    expect(options.maxSeconds).toBe(3);
  });

  it('accepts -- before a program whose name starts with a dash', () => {
    const { options } = parseRunArgs(['--', '-odd-name', 'a']);
    expect(options.program).toBe('-odd-name');
    expect(options.args).toEqual(['a']);
  });

  it('parses sizes, frequencies, repeatable directories, seeds and the environment edits', () => {
    const { options } = parseRunArgs([
      '--mem-size', '512M', '--host-freq', '2.5GHz', '--allow-read', '/a', '--allow-read', '/b', '--seed', '42',
      '--clear-env', '--env', 'A=1', '--env', 'B=x=y', '--unset-env', 'A', '--no-glibc-baseline', '--quantum-ms', '5', 'p',
    ]);
    expect(options.memSize).toBe(512 * 1024 * 1024);
    expect(options.hostFreqHz).toBe(2.5e9);
    expect(options.allowRead).toEqual(['/a', '/b']);
    expect(options.seed).toBe(42n);
    expect(options.env).toEqual(['A=1', 'B=x=y']);
    expect(options.glibcBaseline).toBe(false);
    expect(options.quantumMs).toBe(5);
  });

  it.each([
    [['--cpu', 'o9', 'p'], '--cpu'],
    [['--host-factor', '0', 'p'], '--host-factor'],
    [['--host-freq', 'fast', 'p'], '--host-freq'],
    [['--mem-size', 'lots', 'p'], '--mem-size'],
    [['--seed', '-1', 'p'], '--seed'],
    [['--env', 'NOEQUALS', 'p'], '--env'],
    [['--max-seconds'], '--max-seconds'],
    [['--frobnicate', 'p'], '--frobnicate'],
    [[], 'program'],
  ])('rejects %j naming %s', (argv, option) => {
    let err: unknown;
    try {
      parseRunArgs(argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).option).toBe(option);
  });
});

describe('switchsim CLI errors (no VM is created)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchsim-cli-'));

  it('a file that is not ELF is refused naming the field, exit 2', () => {
    const f = path.join(dir, 'not-elf');
    writeFileSync(f, 'hello world, not an executable at all; long enough for a header...............');
    const r = switchsim(['run', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^switchsim: error: invalid ELF \(e_ident\[EI_MAG\]\)/);
    expect(r.stdout).toBe('');
  });

  it('a dynamically linked program is refused with the reason', () => {
    const r = switchsim(['run', '/bin/sh']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/PT_INTERP.*link with -static/);
  });

  it('a missing program and an unknown option are clear errors', () => {
    expect(switchsim(['run', path.join(dir, 'nope')]).stderr).toMatch(/cannot read .*nope.*ENOENT/);
    const r = switchsim(['run', '--turbo', 'x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('switchsim: error: --turbo: unknown option (see switchsim --help)\n');
  });

  it('--help prints the usage and exits 0; no command prints it and exits 2', () => {
    const help = switchsim(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: switchsim run \[options\] \[--\] <program>/);
    expect(switchsim([]).status).toBe(2);
    expect(switchsim(['frob']).stderr).toMatch(/unknown command 'frob'/);
  });
});
