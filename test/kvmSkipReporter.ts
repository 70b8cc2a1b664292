/**
 * Counts the KVM tests (those under test/kvm/ and any suite made with describeKvm, marked
 * '[kvm]') and writes `.vitest-kvm-summary.json`, so `.ci/run` can fail when /dev/kvm exists
 * but KVM tests were skipped (a silent skip would hide the oracle).
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

export default class KvmSkipReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const skippedNames: string[] = [];
    for (const m of modules) {
      const kvmModule = m.moduleId.includes('/test/kvm/');
      for (const t of m.children.allTests()) {
        if (!kvmModule && !t.fullName.includes('[kvm]')) continue;
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else {
          skipped++;
          skippedNames.push(t.fullName);
        }
      }
    }
    const summary = { kvmDevice: existsSync('/dev/kvm'), passed, failed, skipped, skippedNames };
    writeFileSync('.vitest-kvm-summary.json', JSON.stringify(summary, null, 2) + '\n');
    process.stderr.write(
      `KVM tests: ${passed} passed, ${failed} failed, ${skipped} skipped` +
        (summary.kvmDevice ? '' : ' (no /dev/kvm on this machine)') +
        '\n',
    );
  }
}
