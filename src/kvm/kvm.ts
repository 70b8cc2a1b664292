/**
 * KVM's fd hierarchy as three types: `Kvm` (/dev/kvm), `VmFd` (one VM), `VcpuFd` (one vCPU and
 * its mmap'ed kvm_run). Every ioctl goes through one place per fd that reads errno right after
 * the call and turns a failure into a KvmIoctlError naming the ioctl. Struct arguments live in
 * Buffers allocated once per fd: the hot path (run, regs, sregs, sync regs) allocates nothing
 * but the decoded result.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import {
  decodeKvmCpuid2,
  decodeKvmMsrEntries,
  decodeXsaveLegacy,
  encodeKvmCpuid2,
  encodeKvmMsrs,
  encodeXsaveLegacy,
  KVM_FPU_CODEC,
  KVM_FPU_LAYOUT,
  KVM_GUEST_DEBUG_CODEC,
  KVM_GUEST_DEBUG_LAYOUT,
  KVM_REGS_CODEC,
  KVM_REGS_LAYOUT,
  KVM_RUN_LAYOUT,
  KVM_SREGS_CODEC,
  KVM_SREGS_LAYOUT,
  KVM_USERSPACE_MEMORY_REGION_CODEC,
  KVM_USERSPACE_MEMORY_REGION_LAYOUT,
  KVM_XCRS_CODEC,
  KVM_XCRS_LAYOUT,
  KVM_XSAVE_LAYOUT,
  kvmCpuid2Size,
  kvmMsrsSize,
  readSyncReg,
  writeSyncReg,
  type KvmCpuidEntry2,
  type KvmFpu,
  type KvmMsrEntry,
  type KvmRegName,
  type KvmRegs,
  type KvmSregs,
  type KvmXcr,
  type XsaveLegacyState,
} from './abi.js';
import { KvmCapabilityError, KvmClosedError, KvmIoctlError, KvmMsrError, KvmUnavailableError } from './errors.js';
import { decodeExit, INTR_EXIT, type KvmExit } from './exits.js';
import {
  KVM_API_VERSION,
  KVM_CAP,
  KVM_IOCTL,
  KVM_SYNC_X86_REGS,
  KVM_SYNC_X86_SREGS,
  kvmCapName,
  type KvmIoctl,
} from './ioctls.js';
import { libc, MAP_FAILED, MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE, type Libc } from '../native/libc.js';

export const KVM_DEVICE = '/dev/kvm';

const EINTR = os.constants.errno.EINTR;
const E2BIG = os.constants.errno.E2BIG;

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

function allocStruct(size: number): { buf: Buffer; view: DataView } {
  const buf = Buffer.alloc(size);
  return { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.byteLength) };
}

/**
 * Every ioctl but KVM_RUN is restarted when a signal interrupts it (EINTR: a profiler's SIGPROF
 * made KVM_CREATE_VM fail under --cpu-prof). KVM_RUN's EINTR is a kick, and is its caller's.
 */
const MAX_EINTR_RETRIES = 1000;

/** Calls `ioctl` until it does not fail with EINTR; returns its result and, when negative, errno. */
function restarting(c: Libc, ioctl: () => number): { r: number; errno: number } {
  for (let tries = 0; ; tries++) {
    const r = ioctl();
    if (r >= 0) return { r, errno: 0 };
    const errno = c.errno();
    if (errno !== EINTR || tries >= MAX_EINTR_RETRIES) return { r, errno };
  }
}

/** ioctl with an integer argument; returns the non-negative result or throws with errno. */
export function ioctlInt(c: Libc, fd: number, io: KvmIoctl, arg: bigint, detail?: () => string): number {
  const { r, errno } = restarting(c, () => c.ioctlInt(fd, io.request, arg));
  if (r < 0) throw new KvmIoctlError(io.name, errno, detail?.());
  return r;
}

/** ioctl with a pointer argument; returns the non-negative result or throws with errno. */
export function ioctlPtr(c: Libc, fd: number, io: KvmIoctl, arg: Buffer, detail?: () => string): number {
  const { r, errno } = restarting(c, () => c.ioctlPtr(fd, io.request, arg));
  if (r < 0) throw new KvmIoctlError(io.name, errno, detail?.());
  return r;
}

function describeOpenFailure(errno: number): string {
  const e = os.constants.errno;
  switch (errno) {
    case e.ENOENT:
      return 'does not exist (no KVM on this host: the kvm module is not loaded, or this machine is a VM without nested virtualization)';
    case e.EACCES:
    case e.EPERM:
      return 'permission denied (add the user to the device\'s group, usually "kvm", or run with access to it)';
    case e.ENXIO:
    case e.ENODEV:
      return 'no KVM driver behind the device';
    default: {
      const name = Object.entries(e).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
      return `open failed: ${name}`;
    }
  }
}

/** /dev/kvm. */
export class Kvm {
  private readonly c: Libc;
  private closed = false;
  private readonly caps = new Map<number, number>();
  private mmapSize = 0;

  private constructor(
    readonly fd: number,
    readonly path: string,
    readonly apiVersion: number,
    c: Libc,
  ) {
    this.c = c;
  }

  /** Opens /dev/kvm (O_RDWR|O_CLOEXEC) and checks the API version; KvmUnavailableError says why not. */
  static open(path: string = KVM_DEVICE): Kvm {
    if (!existsSync(path)) throw new KvmUnavailableError(path, describeOpenFailure(os.constants.errno.ENOENT), os.constants.errno.ENOENT);
    const c = libc();
    const fd = c.open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      const errno = c.errno();
      throw new KvmUnavailableError(path, describeOpenFailure(errno), errno);
    }
    const { r: version, errno: versionErrno } = restarting(c, () => c.ioctlInt(fd, KVM_IOCTL.GET_API_VERSION.request, 0n));
    if (version !== KVM_API_VERSION) {
      const errno = version < 0 ? versionErrno : undefined;
      c.close(fd);
      const got = version < 0 ? `KVM_GET_API_VERSION failed (errno ${errno})` : `API version ${version}`;
      throw new KvmUnavailableError(path, `${got}, switchsim needs API version ${KVM_API_VERSION}`, errno);
    }
    return new Kvm(fd, path, version, c);
  }

  /** Whether KVM can be used here, and if not, why (the message of the KvmUnavailableError). */
  static probe(path: string = KVM_DEVICE): { available: true } | { available: false; reason: string } {
    try {
      Kvm.open(path).close();
      return { available: true };
    } catch (e) {
      if (e instanceof KvmUnavailableError) return { available: false, reason: e.message };
      throw e;
    }
  }

  private live(): void {
    if (this.closed) throw new KvmClosedError('Kvm');
  }

  /** KVM_CHECK_EXTENSION: 0 = absent, otherwise capability-specific (often 1). Cached. */
  checkExtension(cap: number): number {
    this.live();
    let v = this.caps.get(cap);
    if (v === undefined) {
      v = ioctlInt(this.c, this.fd, KVM_IOCTL.CHECK_EXTENSION, BigInt(cap), () => kvmCapName(cap));
      this.caps.set(cap, v);
    }
    return v;
  }

  /** Throws KvmCapabilityError unless checkExtension(cap) >= minimum; returns its value. */
  requireExtension(cap: number, purpose: string, minimum = 1): number {
    const v = this.checkExtension(cap);
    if (v < minimum) throw new KvmCapabilityError(kvmCapName(cap), purpose, v);
    return v;
  }

  /** Size of a vCPU's kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE). */
  get vcpuMmapSize(): number {
    this.live();
    if (this.mmapSize === 0) this.mmapSize = ioctlInt(this.c, this.fd, KVM_IOCTL.GET_VCPU_MMAP_SIZE, 0n);
    return this.mmapSize;
  }

  /** KVM_GET_SUPPORTED_CPUID: the CPUID leaves KVM can present to a guest. */
  supportedCpuid(): KvmCpuidEntry2[] {
    this.live();
    this.requireExtension(KVM_CAP.EXT_CPUID, 'reading the supported CPUID table');
    for (let n = 128; n <= 8192; n *= 2) {
      const { buf, view } = allocStruct(kvmCpuid2Size(n));
      view.setUint32(0, n, true); // nent: capacity in, count out
      const { r, errno } = restarting(this.c, () => this.c.ioctlPtr(this.fd, KVM_IOCTL.GET_SUPPORTED_CPUID.request, buf));
      if (r < 0) {
        if (errno === E2BIG) continue;
        throw new KvmIoctlError(KVM_IOCTL.GET_SUPPORTED_CPUID.name, errno, `room for ${n} entries`);
      }
      return decodeKvmCpuid2(view, 0);
    }
    throw new KvmIoctlError(KVM_IOCTL.GET_SUPPORTED_CPUID.name, E2BIG, 'more than 8192 entries');
  }

  /** KVM_CREATE_VM (default machine type). */
  createVm(): VmFd {
    this.live();
    const fd = ioctlInt(this.c, this.fd, KVM_IOCTL.CREATE_VM, 0n);
    return new VmFd(this, fd, this.c);
  }

  /** Closes /dev/kvm; VMs already created stay usable. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.c.close(this.fd);
  }
}

/** A VM: memory slots and vCPUs. */
export class VmFd {
  private closed = false;
  private readonly vcpus = new Set<VcpuFd>();
  private readonly region = allocStruct(KVM_USERSPACE_MEMORY_REGION_LAYOUT.size);
  private readonly u64 = allocStruct(8);

  /** @internal use Kvm.createVm() */
  constructor(
    readonly kvm: Kvm,
    readonly fd: number,
    private readonly c: Libc,
  ) {}

  private live(): void {
    if (this.closed) throw new KvmClosedError('VmFd');
  }

  /** KVM_CHECK_EXTENSION on the VM fd (answers for this VM; needs KVM_CAP_CHECK_EXTENSION_VM). */
  checkExtension(cap: number): number {
    this.live();
    return ioctlInt(this.c, this.fd, KVM_IOCTL.CHECK_EXTENSION, BigInt(cap), () => kvmCapName(cap));
  }

  /**
   * KVM_SET_USER_MEMORY_REGION: maps `size` bytes of host memory at `hostAddress` to guest physical
   * `guestPhys` as `slot` (size 0 deletes the slot). Page alignment is KVM's to check (EINVAL).
   */
  setUserMemoryRegion(slot: number, guestPhys: bigint, size: number | bigint, hostAddress: bigint, flags = 0): void {
    this.live();
    const memorySize = BigInt(size);
    KVM_USERSPACE_MEMORY_REGION_CODEC.encode(this.region.view, 0, {
      slot,
      flags,
      guestPhysAddr: guestPhys,
      memorySize,
      userspaceAddr: hostAddress,
    });
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_USER_MEMORY_REGION, this.region.buf, () =>
      `slot ${slot}, guest ${hex(guestPhys)}, ${memorySize} bytes at host ${hex(hostAddress)}, flags ${flags}`);
  }

  /** KVM_SET_TSS_ADDR: three pages of guest physical space KVM may use (Intel real-mode emulation). */
  setTssAddr(address: number | bigint): void {
    this.live();
    ioctlInt(this.c, this.fd, KVM_IOCTL.SET_TSS_ADDR, BigInt(address), () => `address ${hex(address)}`);
  }

  /** KVM_SET_IDENTITY_MAP_ADDR: one page of guest physical space for KVM's identity map (Intel EPT). */
  setIdentityMapAddr(address: bigint): void {
    this.live();
    this.u64.view.setBigUint64(0, address, true);
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_IDENTITY_MAP_ADDR, this.u64.buf, () => `address ${hex(address)}`);
  }

  /** KVM_CREATE_VCPU, then maps its kvm_run. */
  createVcpu(id: number): VcpuFd {
    this.live();
    const size = this.kvm.vcpuMmapSize;
    const fd = ioctlInt(this.c, this.fd, KVM_IOCTL.CREATE_VCPU, BigInt(id), () => `vcpu id ${id}`);
    const address = this.c.mmap(0n, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
    if (address === MAP_FAILED || address === 0n) {
      const errno = this.c.errno();
      this.c.close(fd);
      throw new KvmIoctlError('mmap(kvm_run)', errno, `vcpu ${id}, ${size} bytes`);
    }
    const vcpu = new VcpuFd(this, id, fd, address, size, this.c);
    this.vcpus.add(vcpu);
    return vcpu;
  }

  /** @internal */
  forget(vcpu: VcpuFd): void {
    this.vcpus.delete(vcpu);
  }

  /** Closes this VM's vCPUs, then the VM. Idempotent. */
  close(): void {
    if (this.closed) return;
    for (const v of [...this.vcpus]) v.close();
    this.closed = true;
    this.c.close(this.fd);
  }
}

/** Initial capacity of the preallocated kvm_msrs buffer (grown when a call needs more). */
const MSR_CAPACITY = 32;

/** A vCPU: its registers and its kvm_run. One thread runs it; others may only poke immediate_exit. */
export class VcpuFd {
  /** kvm_run, mapped from the vCPU fd (a view of native memory; invalid after close()). */
  readonly kvmRun: DataView;
  private closed = false;
  private syncMask = 0n;
  private readonly regs = allocStruct(KVM_REGS_LAYOUT.size);
  private readonly sregs = allocStruct(KVM_SREGS_LAYOUT.size);
  private readonly fpu = allocStruct(KVM_FPU_LAYOUT.size);
  private readonly xsave = allocStruct(KVM_XSAVE_LAYOUT.size);
  private readonly xcrs = allocStruct(KVM_XCRS_LAYOUT.size);
  private readonly guestDebug = allocStruct(KVM_GUEST_DEBUG_LAYOUT.size);
  private msrs = allocStruct(kvmMsrsSize(MSR_CAPACITY));
  private readonly runRequest = KVM_IOCTL.RUN.request;

  /** @internal use VmFd.createVcpu() */
  constructor(
    readonly vm: VmFd,
    readonly id: number,
    readonly fd: number,
    /** Native address of kvm_run: another thread can view it with attachKvmRun(). */
    readonly kvmRunAddress: bigint,
    readonly kvmRunSize: number,
    private readonly c: Libc,
  ) {
    this.kvmRun = new DataView(c.view(kvmRunAddress, kvmRunSize));
  }

  private live(): void {
    if (this.closed) throw new KvmClosedError(`VcpuFd ${this.id}`);
  }

  /**
   * KVM_RUN once. Returns the decoded exit; `{reason:'intr'}` when KVM_RUN fails with EINTR
   * (immediate_exit was set, or a signal arrived). immediate_exit is left as it is: clear it with
   * setImmediateExit(false) before running again. Any other errno throws KvmIoctlError.
   */
  run(): KvmExit {
    if (this.closed) throw new KvmClosedError(`VcpuFd ${this.id}`);
    const run = this.kvmRun;
    if (this.syncMask !== 0n) run.setBigUint64(KVM_RUN_LAYOUT.kvmValidRegs, this.syncMask, true);
    const r = this.c.ioctlInt(this.fd, this.runRequest, 0n);
    if (r < 0) {
      const errno = this.c.errno();
      if (errno === EINTR) return INTR_EXIT;
      throw new KvmIoctlError(KVM_IOCTL.RUN.name, errno, `vcpu ${this.id}`);
    }
    return decodeExit(run);
  }

  /** Sets kvm_run.immediate_exit: the next (or current, once signalled) KVM_RUN returns EINTR. */
  setImmediateExit(on: boolean): void {
    this.kvmRun.setUint8(KVM_RUN_LAYOUT.immediateExit, on ? 1 : 0);
  }

  getRegs(): KvmRegs {
    this.live();
    ioctlPtr(this.c, this.fd, KVM_IOCTL.GET_REGS, this.regs.buf);
    return KVM_REGS_CODEC.decode(this.regs.view, 0);
  }

  setRegs(regs: KvmRegs): void {
    this.live();
    KVM_REGS_CODEC.encode(this.regs.view, 0, regs);
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_REGS, this.regs.buf);
  }

  getSregs(): KvmSregs {
    this.live();
    ioctlPtr(this.c, this.fd, KVM_IOCTL.GET_SREGS, this.sregs.buf);
    return KVM_SREGS_CODEC.decode(this.sregs.view, 0);
  }

  setSregs(sregs: KvmSregs): void {
    this.live();
    KVM_SREGS_CODEC.encode(this.sregs.view, 0, sregs);
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_SREGS, this.sregs.buf);
  }

  /**
   * KVM_GET_FPU. Beware (upstream KVM, measured here too): kvm_fpu.mxcsr is never filled (reads 0),
   * and the fxsave bytes may be stale when the guest's XSTATE_BV says x87/SSE are in their init
   * state. Use getXsaveLegacy() for the state the guest really sees.
   */
  getFpu(): KvmFpu {
    this.live();
    ioctlPtr(this.c, this.fd, KVM_IOCTL.GET_FPU, this.fpu.buf);
    return KVM_FPU_CODEC.decode(this.fpu.view, 0);
  }

  /**
   * KVM_SET_FPU. Beware: KVM drops kvm_fpu.mxcsr, and the write does not reach the guest while
   * XSTATE_BV lacks FP/SSE (e.g. on a fresh vCPU). Use setXsaveLegacy() to load x87/SSE state.
   */
  setFpu(fpu: KvmFpu): void {
    this.live();
    KVM_FPU_CODEC.encode(this.fpu.view, 0, fpu);
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_FPU, this.fpu.buf);
  }

  private msrBuffer(n: number): { buf: Buffer; view: DataView } {
    if (this.msrs.buf.length < kvmMsrsSize(n)) this.msrs = allocStruct(kvmMsrsSize(Math.max(n, 2 * MSR_CAPACITY)));
    return this.msrs;
  }

  /** KVM_GET_MSRS for these indices, in order; KvmMsrError names the first one KVM refused. */
  getMsrs(indices: readonly number[]): KvmMsrEntry[] {
    this.live();
    const { buf, view } = this.msrBuffer(indices.length);
    encodeKvmMsrs(view, 0, indices.map((index) => ({ index, data: 0n })));
    const done = ioctlPtr(this.c, this.fd, KVM_IOCTL.GET_MSRS, buf, () => `MSRs ${indices.map(hex).join(', ')}`);
    if (done < indices.length) throw new KvmMsrError(KVM_IOCTL.GET_MSRS.name, indices[done] ?? -1, done, indices.length);
    return decodeKvmMsrEntries(view, 0, indices.length);
  }

  /** KVM_SET_MSRS; KvmMsrError names the first one KVM refused. */
  setMsrs(entries: readonly KvmMsrEntry[]): void {
    this.live();
    const { buf, view } = this.msrBuffer(entries.length);
    encodeKvmMsrs(view, 0, entries);
    const done = ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_MSRS, buf, () => `MSRs ${entries.map((e) => hex(e.index)).join(', ')}`);
    if (done < entries.length) throw new KvmMsrError(KVM_IOCTL.SET_MSRS.name, entries[done]?.index ?? -1, done, entries.length);
  }

  /** KVM_SET_CPUID2 (before the first KVM_RUN: later changes are refused by recent kernels). */
  setCpuid2(entries: readonly KvmCpuidEntry2[]): void {
    this.live();
    const { buf, view } = allocStruct(kvmCpuid2Size(entries.length));
    encodeKvmCpuid2(view, 0, entries);
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_CPUID2, buf, () => `${entries.length} entries`);
  }

  /** KVM_GET_XSAVE: a copy of the 4096-byte XSAVE image (layout: XSAVE_AREA_LAYOUT). */
  getXsave(): Uint8Array {
    this.live();
    ioctlPtr(this.c, this.fd, KVM_IOCTL.GET_XSAVE, this.xsave.buf);
    return new Uint8Array(this.xsave.buf); // a copy, as a plain Uint8Array
  }

  setXsave(image: Uint8Array): void {
    this.live();
    if (image.length !== KVM_XSAVE_LAYOUT.size) throw new RangeError(`kvm_xsave is ${KVM_XSAVE_LAYOUT.size} bytes, got ${image.length}`);
    this.xsave.buf.set(image);
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_XSAVE, this.xsave.buf);
  }

  /** x87/SSE state (incl. MXCSR) as the guest sees it, from KVM_GET_XSAVE. */
  getXsaveLegacy(): XsaveLegacyState {
    this.live();
    ioctlPtr(this.c, this.fd, KVM_IOCTL.GET_XSAVE, this.xsave.buf);
    return decodeXsaveLegacy(this.xsave.buf);
  }

  /** Loads x87/SSE state (incl. MXCSR) with GET_XSAVE + SET_XSAVE, keeping the other components. */
  setXsaveLegacy(state: XsaveLegacyState): void {
    this.live();
    ioctlPtr(this.c, this.fd, KVM_IOCTL.GET_XSAVE, this.xsave.buf);
    encodeXsaveLegacy(this.xsave.buf, state);
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_XSAVE, this.xsave.buf);
  }

  getXcrs(): KvmXcr[] {
    this.live();
    ioctlPtr(this.c, this.fd, KVM_IOCTL.GET_XCRS, this.xcrs.buf);
    return KVM_XCRS_CODEC.decode(this.xcrs.view, 0);
  }

  setXcrs(xcrs: readonly KvmXcr[]): void {
    this.live();
    KVM_XCRS_CODEC.encode(this.xcrs.view, 0, [...xcrs]);
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_XCRS, this.xcrs.buf);
  }

  /** KVM_SET_GUEST_DEBUG (control: KVM_GUESTDBG_* flags). On kvm_pvm single-step does not exit to the host. */
  setGuestDebug(control: number, debugreg: readonly bigint[] = []): void {
    this.live();
    KVM_GUEST_DEBUG_CODEC.encode(this.guestDebug.view, 0, { control, debugreg: [...debugreg] });
    ioctlPtr(this.c, this.fd, KVM_IOCTL.SET_GUEST_DEBUG, this.guestDebug.buf, () => `control ${hex(control)}`);
  }

  // --- sync regs (KVM_CAP_SYNC_REGS): registers travel in kvm_run instead of GET/SET ioctls

  /**
   * From now on every KVM_RUN asks KVM to store these register classes (KVM_SYNC_X86_*) into
   * kvm_run.s.regs on exit. Throws KvmCapabilityError when the host does not support them all.
   */
  enableSyncRegs(mask: number = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS): void {
    this.live();
    const supported = this.vm.kvm.checkExtension(KVM_CAP.SYNC_REGS);
    if ((supported & mask) !== mask) {
      throw new KvmCapabilityError(kvmCapName(KVM_CAP.SYNC_REGS), `sync regs mask ${hex(mask)}`, supported);
    }
    this.syncMask = BigInt(mask);
    this.kvmRun.setBigUint64(KVM_RUN_LAYOUT.kvmValidRegs, this.syncMask, true);
  }

  disableSyncRegs(): void {
    this.syncMask = 0n;
    this.kvmRun.setBigUint64(KVM_RUN_LAYOUT.kvmValidRegs, 0n, true);
  }

  /** The classes enabled with enableSyncRegs (0 = off). */
  get syncRegsMask(): number {
    return Number(this.syncMask);
  }

  /** Tells KVM to load these classes from kvm_run.s.regs on the next KVM_RUN (it clears the bits). */
  markDirty(mask: number): void {
    const L = KVM_RUN_LAYOUT.kvmDirtyRegs;
    this.kvmRun.setBigUint64(L, this.kvmRun.getBigUint64(L, true) | BigInt(mask), true);
  }

  /** One GPR as of the last exit (sync REGS must be enabled). */
  syncReg(name: KvmRegName): bigint {
    return readSyncReg(this.kvmRun, name);
  }

  /** Sets one GPR for the next KVM_RUN (marks REGS dirty). GET_REGS does not see it before then. */
  setSyncReg(name: KvmRegName, value: bigint): void {
    writeSyncReg(this.kvmRun, name, value);
    this.markDirty(KVM_SYNC_X86_REGS);
  }

  /** All GPRs as of the last exit. */
  syncRegs(): KvmRegs {
    return KVM_REGS_CODEC.decode(this.kvmRun, KVM_RUN_LAYOUT.syncRegs);
  }

  setSyncRegs(regs: KvmRegs): void {
    KVM_REGS_CODEC.encode(this.kvmRun, KVM_RUN_LAYOUT.syncRegs, regs);
    this.markDirty(KVM_SYNC_X86_REGS);
  }

  /** Special registers as of the last exit (sync SREGS must be enabled). */
  syncSregs(): KvmSregs {
    return KVM_SREGS_CODEC.decode(this.kvmRun, KVM_RUN_LAYOUT.syncSregs);
  }

  setSyncSregs(sregs: KvmSregs): void {
    KVM_SREGS_CODEC.encode(this.kvmRun, KVM_RUN_LAYOUT.syncSregs, sregs);
    this.markDirty(KVM_SYNC_X86_SREGS);
  }

  /** Unmaps kvm_run and closes the vCPU fd (kvmRun must not be touched afterwards). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.c.munmap(this.kvmRunAddress, this.kvmRunSize);
    this.c.close(this.fd);
    this.vm.forget(this);
  }
}

/** A view of a vCPU's kvm_run from another thread (address and size from VcpuFd). */
export function attachKvmRun(address: bigint, size: number): DataView {
  return new DataView(libc().view(address, size));
}

/** Sets immediate_exit in a kvm_run view (e.g. from attachKvmRun, before signalling the vCPU thread). */
export function setImmediateExitFlag(kvmRun: DataView, on: boolean): void {
  kvmRun.setUint8(KVM_RUN_LAYOUT.immediateExit, on ? 1 : 0);
}
