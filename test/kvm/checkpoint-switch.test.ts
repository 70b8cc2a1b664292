/**
 * Checkpoints across models, and the switching CLI: taken on KVM (and atomic), restored on
 * atomic, o3 and KVM, each finishing with the native output; restore-then-run-N twice gives
 * identical state; damaged files fail clearly and touch nothing; --roi and the triggers.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { System } from '../../src/switch/system.js';
import { switchsim } from '../support/cli.js';
import { runNative, workloadPath } from '../support/workloads.js';
import { describeKvm } from './support.js';

const ENV = { LANG: 'C' };
const dir = mkdtempSync(path.join(os.tmpdir(), 'switchsim-ckpt-'));
const CHECKSUM_ARGS = ['100000'];

describeKvm('checkpoints across CPU models', () => {
  const native = runNative('checksum', CHECKSUM_ARGS, ENV).stdout.toString();
  let kvmCkpt = '';
  let firstPart = '';

  it('a checkpoint taken on KVM (at m5 work_begin, before the loop) restores on atomic, o3 and KVM with the native output', async () => {
    kvmCkpt = path.join(dir, 'kvm.ckpt');
    const sys = await System.create({ models: ['kvm'], program: workloadPath('checksum'), args: [...CHECKSUM_ARGS, '--m5=inst'], capture: true, env: ['LANG=C'] });
    try {
      await sys.start('kvm');
      const out = await sys.run();
      expect(out.kind === 'm5op' && out.call.name).toBe('work_begin');
      const info = await sys.checkpoint(kvmCkpt);
      expect(info.pages).toBeGreaterThan(0);
      firstPart = sys.output().stdout.toString();
    } finally {
      await sys.close();
    }
    for (const cpu of ['atomic', 'o3', 'kvm']) {
      const r = switchsim(['restore', '-q', '--cpu', cpu, kvmCkpt], ENV);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(firstPart + r.stdout).toBe(native);
    }
  });

  it('switchsim checkpoint --at insts:N on atomic stops exactly there; restores finish the run on every model', () => {
    const file = path.join(dir, 'atomic.ckpt');
    const r = switchsim(['checkpoint', '--cpu', 'atomic', '--out', file, '--at', 'insts:400000', '--clear-env', '--env', 'LANG=C', workloadPath('checksum'), ...CHECKSUM_ARGS], ENV);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/checkpoint written: .*atomic\.ckpt \(\d+ non-zero pages, [\d.]+ [km]B\) on atomic/);
    for (const cpu of ['kvm', 'atomic', 'o3']) {
      const q = switchsim(['restore', '-q', '--cpu', cpu, file], ENV);
      expect(q.status).toBe(0);
      expect(r.stdout + q.stdout).toBe(native);
    }
  });

  it('restoring and running N instructions on atomic twice gives identical state hashes', async () => {
    const hashes: string[] = [];
    for (let k = 0; k < 2; k++) {
      const { system } = await System.fromCheckpoint(kvmCkpt, { models: ['atomic'], capture: true });
      try {
        await system.start('atomic');
        const atomic = system.model('atomic');
        // The checkpoint sits at work_begin: the reset_stats op right after it stops the run once.
        let out = await system.run({ insts: 250_000 });
        while (out.kind === 'm5op') out = await system.run({ insts: 250_000 - atomic.instructions() });
        expect(out.kind).toBe('limit');
        expect(atomic.instructions()).toBe(250_000);
        hashes.push((await system.stateHash()).hash);
      } finally {
        await system.close();
      }
    }
    expect(hashes[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(hashes[1]).toBe(hashes[0]);
  });

  it('a truncated or corrupted checkpoint fails with a clear error, exit 2, and writes nothing', () => {
    const good = readFileSync(kvmCkpt);
    const cases: [string, Buffer, RegExp][] = [
      ['truncated', good.subarray(0, good.length - 100), /truncated|checksum|shorter/i],
      ['bad magic', Buffer.concat([Buffer.from('NOTACKPT'), good.subarray(8)]), /magic|not a switchsim checkpoint/i],
      ['flipped byte', Buffer.from(good.map((b, i) => (i === Math.floor(good.length / 2) ? b ^ 0xff : b))), /checksum|sha256|corrupt/i],
    ];
    for (const [name, bytes, re] of cases) {
      const f = path.join(dir, `${name.replace(' ', '_')}.ckpt`);
      writeFileSync(f, bytes);
      const before = new Set(readdirSync(dir));
      const r = switchsim(['restore', '--cpu', 'atomic', f], ENV);
      expect(r.status, name).toBe(2);
      expect(r.stderr, name).toMatch(re);
      expect(r.stdout, name).toBe('');
      expect(new Set(readdirSync(dir)), name).toEqual(before);
      expect(statSync(f).size).toBe(bytes.length);
    }
  });

  it('switchsim checkpoint --at roi stops at m5 work_begin; restored on o3, the region is measured from there', () => {
    const file = path.join(dir, 'roi.ckpt');
    const r = switchsim(['checkpoint', '--out', file, '--at', 'roi', '--clear-env', '--env', 'LANG=C', workloadPath('checksum'), ...CHECKSUM_ARGS, '--m5=addr'], ENV);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/checkpoint written: .* on kvm/);
    const stats = path.join(dir, 'roi-restored');
    const q = switchsim(['restore', '--cpu', 'o3', '--stats', stats, file], ENV);
    expect(q.status).toBe(0);
    expect(r.stdout + q.stdout).toBe(native);
    const json = JSON.parse(readFileSync(path.join(stats, 'stats.json'), 'utf8')) as { dumps: Record<string, { value: number }>[] };
    expect(json.dumps[0]!['system.o3_cpu.committedInsts']!.value).toBeGreaterThan(1_000_000);
  });

  it('switchsim checkpoint never reached: the guest ended first, no file, exit 3', () => {
    const file = path.join(dir, 'never.ckpt');
    const r = switchsim(['checkpoint', '--cpu', 'atomic', '--out', file, '--at', 'insts:900000000', workloadPath('checksum'), ...CHECKSUM_ARGS], ENV);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/ended before the checkpoint point \(900000000 instructions\): no checkpoint written/);
    expect(readdirSync(dir)).not.toContain('never.ckpt');
  });
});

describeKvm('switchsim run with switch policies (the CLI)', () => {
  it('--roi with an m5-annotated workload: KVM until work_begin, o3 for the region, KVM after; stats dumps from the region', () => {
    const stats = path.join(dir, 'roi');
    for (const form of ['--m5=inst', '--m5=addr']) {
      const r = switchsim(['run', '--roi', '--stats', stats, '--clear-env', '--env', 'LANG=C', workloadPath('checksum'), ...CHECKSUM_ARGS, form], ENV);
      expect(r.status, form).toBe(0);
      expect(r.stdout, form).toBe(runNative('checksum', CHECKSUM_ARGS, ENV).stdout.toString());
      expect(r.stderr, form).toMatch(/2 switches/);
      const txt = readFileSync(path.join(stats, 'stats.txt'), 'utf8');
      expect(txt.match(/Begin Simulation Statistics/g)?.length, form).toBe(2); // the m5 dump, then the final stats
      const json = JSON.parse(readFileSync(path.join(stats, 'stats.json'), 'utf8')) as Record<string, { value: number }> & { dumps: Record<string, { value: number }>[] };
      const region = json.dumps[0]!;
      // The region ran on o3 only: its committed instructions are the loop's, measured from reset_stats.
      expect(region['system.o3_cpu.committedInsts']!.value).toBeGreaterThan(1_000_000);
      expect(region['system.o3_cpu.ipc']!.value).toBeGreaterThan(0.2);
      expect(json['system.switches']!.value).toBe(2);
    }
  });

  it('--roi-exit stops at work_end', () => {
    // checksum prints only after the region: nothing is printed when the run stops at work_end.
    const r = switchsim(['run', '--roi-exit', workloadPath('checksum'), ...CHECKSUM_ARGS, '--m5=inst'], ENV);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/region of interest done \(--roi-exit\): the guest was stopped at m5 work_end/);
  });

  it('--cpu-sequence with --switch-at-insts moves along the sequence and says how KVM counts', () => {
    const r = switchsim(['run', '--cpu-sequence', 'atomic,o3,kvm', '--switch-at-insts', '300000,200000', '--clear-env', '--env', 'LANG=C', workloadPath('checksum'), ...CHECKSUM_ARGS], ENV);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(runNative('checksum', CHECKSUM_ARGS, ENV).stdout.toString());
    expect(r.stderr).toMatch(/KVM cannot count guest instructions on this host \(no PMU\)/);
    expect(r.stderr).toMatch(/2 switches/);
  });

  it('bad switching options are refused before anything runs', () => {
    expect(switchsim(['run', '--cpu-sequence', 'kvm,x86', workloadPath('checksum')], ENV).stderr).toMatch(/--cpu-sequence: unknown CPU model 'x86'/);
    expect(switchsim(['run', '--switch-at-insts', '10', '--switch-at-seconds', '1', workloadPath('checksum')], ENV).status).toBe(2);
    expect(switchsim(['checkpoint', workloadPath('checksum')], ENV).stderr).toMatch(/needs --out FILE/);
    expect(switchsim(['checkpoint', '--out', '/tmp/x', '--at', 'soon', workloadPath('checksum')], ENV).stderr).toMatch(/--at: expected m5, roi, insts:N or seconds:S/);
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));
