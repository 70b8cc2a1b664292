#!/usr/bin/env node
// Builds the guest workloads listed in workloads/workloads.json into workloads/build/<name>.
//
//   node scripts/build-workloads.mjs [--force] [name...]
//
// Kinds (the manifest's "kind" field):
//   freestanding, fault, bench  workloads/src/<name>.c linked with our runtime (workloads/runtime/),
//                        no libc: gcc -static -nostdlib -ffreestanding ...
//   glibc                workloads/src/<name>.c with plain `gcc -static -O2`
//   musl                 workloads/src/<name>.c with `musl-gcc -static -O2`; skipped with a
//                        note when musl-gcc is not installed (Debian: musl-tools)
//
// Incremental: a target is rebuilt only if its output is missing or older than one of its
// inputs (its source and every header gcc reports via -MMD, the runtime objects, this
// script), or if its compile command changed. Plain Node, no dependencies.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SCRIPT), '..');
const WL = path.join(ROOT, 'workloads');
const SRC = path.join(WL, 'src');
const RUNTIME = path.join(WL, 'runtime');
const BUILD = path.join(WL, 'build');
const OBJ = path.join(BUILD, '.obj'); // runtime objects, dependency files, command stamps
const MANIFEST = path.join(WL, 'workloads.json');

const RUNTIME_SOURCES = ['start.S', 'print.c', 'mem.c', 'rt.c'];

const WARN = ['-Wall', '-Wextra'];
// Freestanding user-mode code: no libc, no PIE, no stack protector (it needs TLS set up by
// libc), no builtins. The red zone stays: this is ordinary user-mode code.
const FREESTANDING = [
  '-static', '-O2', '-fno-pie', '-no-pie', '-nostdlib', '-ffreestanding',
  '-fno-stack-protector', '-fno-builtin', ...WARN, `-I${RUNTIME}`,
];
// The runtime's own mem*/str* loops must not be turned back into calls to mem*.
const RUNTIME_EXTRA = ['-fno-tree-loop-distribute-patterns'];
const LIBC = ['-static', '-O2', ...WARN];

function die(msg) {
  process.stderr.write(`build-workloads: ${msg}\n`);
  process.exit(1);
}

function rel(p) {
  return path.relative(ROOT, p) || '.';
}

/** Whether `tool` can be executed (found on PATH and runs `--version`). */
function haveTool(tool) {
  const r = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Prerequisites listed in a gcc -MMD dependency file, or undefined if it is missing. */
function readDeps(depFile) {
  let text;
  try {
    text = readFileSync(depFile, 'utf8');
  } catch {
    return undefined;
  }
  const body = text.replace(/\\\r?\n/g, ' ');
  const colon = body.indexOf(': ');
  if (colon < 0) return undefined;
  return body
    .slice(colon + 2)
    .replace(/\\ /g, '\0')
    .split(/\s+/)
    .filter(Boolean)
    .map((d) => path.resolve(ROOT, d.replace(/\0/g, ' ')));
}

/**
 * Whether `job.out` must be rebuilt: missing output, missing or changed dependency info,
 * a changed command line, or any input newer than the output.
 */
function isStale(job) {
  const outTime = mtime(job.out);
  if (outTime === undefined) return true;
  let stamp;
  try {
    stamp = readFileSync(job.cmdFile, 'utf8');
  } catch {
    return true;
  }
  if (stamp !== JSON.stringify(job.argv)) return true;
  const deps = readDeps(job.depFile);
  if (deps === undefined) return true;
  for (const input of [...deps, ...job.extraInputs, SCRIPT]) {
    const t = mtime(input);
    if (t === undefined || t >= outTime) return true;
  }
  return false;
}

function run(job) {
  return new Promise((resolve) => {
    const child = spawn(job.argv[0], job.argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (err) => resolve({ ok: false, output: `${err.message}\n` }));
    child.on('close', (code, signal) => {
      const ok = code === 0;
      if (!ok && signal) output += `(${job.argv[0]} killed by ${signal})\n`;
      resolve({ ok, output });
    });
  });
}

/** Runs the stale jobs with bounded parallelism; returns the failures. */
async function runAll(jobs, built, force) {
  const queue = jobs.filter((j) => force || isStale(j));
  const failures = [];
  const width = Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 8));
  async function worker() {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const t0 = Date.now();
      const { ok, output } = await run(job);
      if (ok) {
        writeFileSync(job.cmdFile, JSON.stringify(job.argv));
        if (job.label) {
          const secs = ((Date.now() - t0) / 1000).toFixed(2);
          process.stdout.write(`built ${rel(job.out)} (${job.kind}, ${secs} s)\n`);
          built.push(job);
        }
        // Warnings do not fail the build, but should not go unseen either.
        if (output.trim()) process.stdout.write(output);
      } else {
        failures.push({ job, output });
      }
    }
  }
  await Promise.all(Array.from({ length: width }, worker));
  return failures;
}

function loadManifest() {
  let list;
  try {
    list = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  } catch (err) {
    die(`cannot read ${rel(MANIFEST)}: ${err.message}`);
  }
  if (!Array.isArray(list)) die(`${rel(MANIFEST)} must be a JSON array`);
  for (const w of list) {
    if (typeof w?.name !== 'string' || !/^[a-z0-9_]+$/.test(w.name))
      die(`${rel(MANIFEST)}: bad workload name ${JSON.stringify(w?.name)}`);
    if (!['freestanding', 'fault', 'bench', 'glibc', 'musl'].includes(w.kind))
      die(`${rel(MANIFEST)}: ${w.name}: unknown kind ${JSON.stringify(w.kind)}`);
  }
  return list;
}

async function main() {
  const args = process.argv.slice(2);
  const force = args.includes('--force') || args.includes('-B');
  const names = args.filter((a) => !a.startsWith('-'));
  const unknownFlag = args.find((a) => a.startsWith('-') && a !== '--force' && a !== '-B');
  if (unknownFlag) die(`unknown option ${unknownFlag} (usage: build-workloads.mjs [--force] [name...])`);

  const manifest = loadManifest();
  for (const n of names) {
    if (!manifest.some((w) => w.name === n)) die(`no workload named ${n} in ${rel(MANIFEST)}`);
  }
  const selected = names.length ? manifest.filter((w) => names.includes(w.name)) : manifest;

  if (!haveTool('gcc')) {
    die("'gcc' was not found on PATH (or does not run); it is needed to build the workloads. " +
      'On Debian/Ubuntu: apt-get install gcc');
  }
  mkdirSync(OBJ, { recursive: true });

  // Runtime objects: shared by every freestanding program.
  const runtimeObjs = RUNTIME_SOURCES.map((f) => {
    const base = path.join(OBJ, `runtime-${f.replace(/\.[cS]$/, '')}`);
    const out = `${base}.o`;
    const depFile = `${base}.d`;
    return {
      out, depFile, cmdFile: `${base}.cmd`, extraInputs: [], label: false, kind: 'runtime',
      argv: ['gcc', ...FREESTANDING, ...RUNTIME_EXTRA, '-MMD', '-MF', depFile, '-c', path.join(RUNTIME, f), '-o', out],
    };
  });

  const jobs = [];
  const skipped = [];
  for (const w of selected) {
    const src = path.join(SRC, `${w.name}.c`);
    if (!existsSync(src)) die(`${w.name}: source ${rel(src)} is missing`);
    const out = path.join(BUILD, w.name);
    const depFile = path.join(OBJ, `${w.name}.d`);
    const common = { out, depFile, cmdFile: path.join(OBJ, `${w.name}.cmd`), label: true, kind: w.kind };
    if (w.kind === 'freestanding' || w.kind === 'fault' || w.kind === 'bench') {
      jobs.push({
        ...common,
        extraInputs: runtimeObjs.map((o) => o.out),
        // libgcc last, for any helper gcc may call; the runtime objects provide mem*.
        argv: ['gcc', ...FREESTANDING, '-MMD', '-MF', depFile, src, ...runtimeObjs.map((o) => o.out), '-lgcc', '-o', out],
      });
    } else if (w.kind === 'glibc') {
      jobs.push({ ...common, extraInputs: [], argv: ['gcc', ...LIBC, '-MMD', '-MF', depFile, src, '-o', out] });
    } else if (w.kind === 'musl') {
      if (!haveTool('musl-gcc')) {
        skipped.push(w.name);
        process.stdout.write(`skip ${w.name}: musl-gcc not found (Debian: apt-get install musl-tools)\n`);
        continue;
      }
      jobs.push({ ...common, extraInputs: [], argv: ['musl-gcc', ...LIBC, '-MMD', '-MF', depFile, src, '-o', out] });
    }
  }

  const built = [];
  const needRuntime = jobs.some((j) => j.kind === 'freestanding' || j.kind === 'fault' || j.kind === 'bench');
  // --force with names rebuilds just those programs; the runtime only when nothing is named.
  let failures = needRuntime ? await runAll(runtimeObjs, built, force && names.length === 0) : [];
  if (failures.length === 0) failures = await runAll(jobs, built, force);

  if (failures.length) {
    for (const { job, output } of failures) {
      process.stderr.write(`\nbuild-workloads: building ${rel(job.out)} failed:\n$ ${job.argv.map(rel2).join(' ')}\n${output}`);
    }
    die(`${failures.length} target(s) failed`);
  }
  const upToDate = jobs.length - built.length;
  process.stdout.write(
    `build-workloads: ${built.length} built, ${upToDate} up to date` +
      (skipped.length ? `, ${skipped.length} skipped (${skipped.join(', ')})` : '') + '\n',
  );
}

/** Shortens absolute paths under the project root in a printed command line. */
function rel2(a) {
  return a.replaceAll(`${ROOT}/`, '');
}

main().catch((err) => die(err.stack ?? String(err)));
