/** KVM tests run wherever /dev/kvm can be opened and skip, saying why, everywhere else. */
import { accessSync, constants, existsSync } from 'node:fs';
import { describe } from 'vitest';

function probe(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `KVM tests need Linux x86-64 (this is ${process.platform}/${process.arch})`;
  if (!existsSync('/dev/kvm')) return '/dev/kvm does not exist on this machine';
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/kvm exists but this user cannot open it read-write (add the user to the kvm group)';
  }
  return null;
}

export const kvmSkipReason = probe();
export const kvmAvailable = kvmSkipReason === null;

/** Marks suites that need KVM, wherever their file is: the CI reporter counts them. */
export const KVM_SUITE_MARK = '[kvm]';

/** `describe` for tests that need real KVM. */
export function describeKvm(name: string, fn: () => void): void {
  if (kvmAvailable) {
    describe(`${name} ${KVM_SUITE_MARK}`, fn);
  } else {
    console.warn(`skipping KVM tests '${name}': ${kvmSkipReason}`);
    describe.skip(`${name} ${KVM_SUITE_MARK} [skipped: ${kvmSkipReason}]`, fn);
  }
}
