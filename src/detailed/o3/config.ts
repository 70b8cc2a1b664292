/**
 * The detailed CPU's configuration: one object with three sections — `cpu` (pipeline, see
 * params.ts), `bpred` (bpred/branchUnit.ts) and `mem` (mem/hierarchy.ts) — each overriding
 * defaults that carry a one-line description. JSON files may add `_comment`/`_sources` keys
 * (documentation); any other unknown key, or a value of the wrong type, is a ConfigError.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../errors.js';
import { BranchPredictorParamSpecs, type BranchPredictorParams } from './bpred/branchUnit.js';
import type { MemSystemConfig } from './mem/hierarchy.js';
import { O3ParamSpecs, o3Defaults, type O3Params } from './params.js';
import type { ParamSpecs } from './types.js';

export interface O3Config {
  cpu: O3Params;
  bpred: Partial<BranchPredictorParams>;
  mem: MemSystemConfig;
}

const DOC_KEYS = new Set(['_comment', '_sources', '_name']);

function checkSection(specs: ParamSpecs, section: unknown, where: string): Record<string, unknown> {
  if (section === undefined) return {};
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    throw new ConfigError('--config', `${where} must be an object`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(section)) {
    if (DOC_KEYS.has(k)) continue;
    const spec = specs[k];
    if (!spec) throw new ConfigError('--config', `${where}.${k}: unknown parameter (known: ${Object.keys(specs).join(', ')})`);
    if (typeof v !== typeof spec.default) {
      throw new ConfigError('--config', `${where}.${k}: expected a ${typeof spec.default}, got ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  return out;
}

function stripDocs(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).filter(([k]) => !DOC_KEYS.has(k)).map(([k, x]) => [k, stripDocs(x)]));
}

/** Validates a parsed config object (the memory section is validated when the MemSystem is built). */
export function o3Config(raw: unknown, where = 'config'): O3Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError('--config', `${where}: not a JSON object`);
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!DOC_KEYS.has(k) && k !== 'cpu' && k !== 'bpred' && k !== 'mem') {
      throw new ConfigError('--config', `${where}: unknown section '${k}' (sections: cpu, bpred, mem)`);
    }
  }
  return {
    cpu: o3Defaults(checkSection(O3ParamSpecs, r.cpu, `${where}.cpu`) as Partial<O3Params>),
    bpred: checkSection(BranchPredictorParamSpecs, r.bpred, `${where}.bpred`) as Partial<BranchPredictorParams>,
    mem: (stripDocs(r.mem) ?? {}) as MemSystemConfig,
  };
}

export function loadO3Config(file: string): O3Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('--config', `cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('--config', `'${file}' is not valid JSON: ${(e as Error).message}`);
  }
  return o3Config(raw, file);
}
