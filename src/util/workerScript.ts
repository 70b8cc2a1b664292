import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The compiled script of a worker that lives next to the module at `moduleUrl` (src/<area>/).
 * Built, it is that module's sibling; run from TypeScript sources (vitest), it is the copy under
 * dist/, which must have been built (`missing` says so otherwise).
 */
export function workerScript(moduleUrl: string, file: string, missing: (builtPath: string) => Error): string {
  const here = fileURLToPath(moduleUrl);
  if (!here.endsWith('.ts')) return path.join(path.dirname(here), file);
  const root = path.resolve(path.dirname(here), '../..');
  const built = path.join(root, 'dist', path.relative(root, path.dirname(here)), file);
  if (!existsSync(built)) throw missing(built);
  return built;
}
